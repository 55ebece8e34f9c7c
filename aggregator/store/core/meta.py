"""Settings kept in the database, and leases on jobs one daemon of several runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from aggregator.store.core.base import CoreBase


class Meta(CoreBase):
    # -- key/value ----------------------------------------------------------------------

    def delete_meta(self, key: str) -> None:
        self._write(lambda c: c.execute("DELETE FROM meta WHERE key = ?", (key,)))

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return {k: v for k, v in self._rows(
            "SELECT key, value FROM meta WHERE key LIKE ? ESCAPE '\\'", (escaped + "%",))}

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value", (key, value)))

    def claim_lease(self, name: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """A lease in the meta table, as '<until, ISO> <owner>' (ISO times sort as text; the
        same text on both engines, so 'db migrate' copies it as is); one statement, so two
        daemons cannot both win."""
        from aggregator.timeutil import to_iso

        return bool(self._write(lambda c: c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value WHERE substr(meta.value, 1, 20) <= ? "
            "OR substr(meta.value, 22) = ?",
            (f"lease:{name}", f"{to_iso(now + lease)} {owner}", to_iso(now), owner)).rowcount))
