"""Where an instance keeps things: ``config/`` and ``var/`` under one home directory.

Kept free of heavy imports: the query path resolves the database from here without
loading pydantic, ``typing`` or ``pathlib`` (``import pathlib`` pulls in ``urllib.parse`` and
``ipaddress``: about 5 ms of a ~55 ms query). The paths it hands out are ``Path`` objects,
made when asked for; the read path itself works on the home directory's string.
"""

from __future__ import annotations

import contextlib
import os

from aggregator.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path

# Where things are under home; the read path joins them as strings (see the module's doc).
CONFIG_DIR, VAR_DIR, SETTINGS_FILE = "config", "var", "aggregator.toml"
DEFAULT_DATABASE_URL = "sqlite:///var/aggregator.db"
_URL_MEMO = ".database-url"  # in var/: see Instance._remembered_url


def shipped_config() -> Path:
    """The project's own shipped config (the repository root is an instance too)."""
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "config"


class Instance:
    """A directory holding config/ and var/. A plain class over the directory's name, not a
    dataclass nor a ``Path``: every command starts by locating one (see the module's doc)."""

    __slots__ = ("root",)

    def __init__(self, home: str | PathLike[str]) -> None:
        self.root = os.fspath(home)

    def __repr__(self) -> str:
        return f"Instance({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Instance) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def locate(cls, home: str | PathLike[str] | None = None) -> Instance:
        """--home DIR, else $AGGREGATOR_HOME, else the current directory."""
        chosen = home or os.environ.get("AGGREGATOR_HOME") or os.getcwd()
        # As Path(chosen).expanduser().resolve(), which is realpath in non-strict mode.
        return cls(os.path.realpath(os.path.expanduser(os.fspath(chosen))))

    @property
    def home(self) -> Path:
        from pathlib import Path

        return Path(self.root)

    @property
    def config_dir(self) -> Path:
        return self.home / CONFIG_DIR

    @property
    def var_dir(self) -> Path:
        return self.home / VAR_DIR

    @property
    def settings_file(self) -> Path:
        return self.config_dir / SETTINGS_FILE

    @property
    def feeds_file(self) -> Path:
        return self.config_dir / "feeds.toml"

    @property
    def taxonomy_file(self) -> Path:
        return self.config_dir / "taxonomy.toml"

    @property
    def queries_file(self) -> Path:
        return self.config_dir / "queries.toml"

    @property
    def templates_dir(self) -> Path:
        return self.config_dir / "templates"

    def display(self, path: Path) -> str:
        """A path as the user should read it in a message: relative to home when inside it."""
        try:
            return str(path.relative_to(self.home))
        except ValueError:
            return str(path)

    def resolve(self, path: str) -> Path:
        from pathlib import Path

        p = Path(path).expanduser()
        return p if p.is_absolute() else self.home / p

    def database_url(self) -> str:
        """The database URL: $AGGREGATOR_DATABASE_URL, else [database] url, else the default.

        A light read (tomllib only, and not even that while the file is unchanged) so that
        fast commands need not validate all settings.
        """
        url = os.environ.get("AGGREGATOR_DATABASE_URL")
        if not url:
            url = self._remembered_url()
        if not url:
            data = read_toml(self.settings_file, self)
            section = data.get("database", {})
            url = section.get("url", DEFAULT_DATABASE_URL) if isinstance(section, dict) else None
            if not isinstance(url, str) or not url:
                raise ConfigError(
                    self.display(self.settings_file), "database.url",
                    "a database URL (sqlite:///var/aggregator.db or postgresql://...)", repr(url),
                )
            self._remember_url(url)
        return self.absolute_database_url(url)

    # The URL read from aggregator.toml, kept beside the file's identity (inode, size and
    # nanosecond times): a query reads it back instead of importing tomllib and parsing the
    # file (~5 ms of a ~50 ms command). Any write to the file changes its ctime.
    def _settings_stamp(self) -> str | None:
        try:
            st = os.stat(os.path.join(self.root, CONFIG_DIR, SETTINGS_FILE))
        except OSError:
            return None  # read_toml reports it
        return f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"

    def _remembered_url(self) -> str | None:
        stamp = self._settings_stamp()
        try:
            with open(os.path.join(self.root, VAR_DIR, _URL_MEMO), encoding="utf-8") as f:
                saved, _, url = f.read().partition("\n")
        except (OSError, ValueError):
            return None
        return url if stamp is not None and saved == stamp and url else None

    def _remember_url(self, url: str) -> None:
        stamp = self._settings_stamp()
        if stamp is None or not self.var_dir.is_dir():  # a read creates no directory
            return
        tmp = self.var_dir / f"{_URL_MEMO}.{os.getpid()}"
        try:
            tmp.write_text(f"{stamp}\n{url}", encoding="utf-8")
            os.replace(tmp, self.var_dir / _URL_MEMO)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def absolute_database_url(self, url: str) -> str:
        """sqlite URLs with a relative path are relative to the instance home."""
        from aggregator.store import absolute_url

        return absolute_url(url, self.root)


def read_toml(path: Path, instance: Instance | None = None) -> dict:
    import tomllib  # here: a query that finds its database URL remembered never needs it

    shown = instance.display(path) if instance else str(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        if instance is not None and not instance.config_dir.is_dir():
            # Not an instance at all: say which directory was looked in, and how it was chosen.
            raise ConfigError(
                str(instance.home), "", "an instance (a directory holding config/ and var/; "
                "create one with 'aggregator init DIR', or pass --home DIR or set "
                "AGGREGATOR_HOME)", "no config/ there") from None
        raise ConfigError(
            shown, "", "the file to exist (create an instance with 'aggregator init DIR' "
            "or pass --home)", "no such file",
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(shown, "", "valid TOML", str(e)) from None
    except OSError as e:
        raise ConfigError(shown, "", "a readable file", e.strerror or str(e)) from None
