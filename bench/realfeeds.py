"""The real feeds in ``../shared/data/realfeeds`` as items, read at run time.

5,648 snapshots of 18 outlets' feeds (2020-2021) are unpacked once, parsed with the
aggregator's own parser and normalizer (so the text is what the classifier sees in
production), and deduplicated by outlet and entry key, the last snapshot's version
winning. The result is cached as JSON lines under ``var/cache/`` (git-ignored); the
feeds' text never enters the repository, only ids derived from it.

An item's id is ``<outlet>-<first 10 hex of sha1(entry key)>``: stable across runs and
short enough to keep labels by id (``classifiers/devsets/``).

    python -m bench.realfeeds --sample 40 --seed 1      # print a sample to read
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT.parent / "shared" / "data" / "realfeeds" / "realfeeds.tar.xz"
CACHE = ROOT / "var" / "cache" / "realfeeds-items.jsonl"
FORMAT = 1  # bump when the cached fields or the id scheme change


def available() -> bool:
    return ARCHIVE.is_file()


def item_id(outlet: str, key: str) -> str:
    return f"{outlet}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _snapshots(tmp: Path) -> Iterator[tuple[str, int, bytes]]:
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(tmp, filter="data")
    base = tmp / "realfeeds"
    for outlet_dir in sorted(base.iterdir()):
        for f in sorted(outlet_dir.iterdir(), key=lambda p: int(p.stem)):
            yield outlet_dir.name, int(f.stem), f.read_bytes()


def _build() -> list[dict]:
    from aggregator.parse.feeds import parse_feed

    items: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for outlet, stamp, body in _snapshots(Path(tmp)):
            now = datetime.fromtimestamp(stamp, UTC)
            parsed = parse_feed(body, now)
            for e in parsed.entries:
                iid = item_id(outlet, e.key)
                items[iid] = {
                    "id": iid, "outlet": outlet, "title": e.title, "text": e.summary,
                    "url": e.url, "categories": list(e.categories), "authors": list(e.authors),
                    "published": e.published.isoformat(), "seen": stamp,
                }
    return sorted(items.values(), key=lambda r: r["id"])


def load() -> list[dict]:
    """Every distinct entry of the real feeds (about 69k), built once then cached."""
    if not available():
        raise FileNotFoundError(f"{ARCHIVE} is not there")
    if CACHE.is_file():
        with CACHE.open(encoding="utf-8") as f:
            head = json.loads(f.readline())
            if head.get("format") == FORMAT and head.get("archive_size") == ARCHIVE.stat().st_size:
                return [json.loads(line) for line in f]
    rows = _build()
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"format": FORMAT, "archive_size": ARCHIVE.stat().st_size}) + "\n")
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(CACHE)
    return rows


def by_id() -> dict[str, dict]:
    return {r["id"]: r for r in load()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=0, help="print N random items as JSON lines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", nargs="*", help="print these items")
    args = ap.parse_args(argv)
    rows = load()
    if args.ids:
        index = {r["id"]: r for r in rows}
        chosen = [index[i] for i in args.ids if i in index]
    elif args.sample:
        chosen = random.Random(args.seed).sample(rows, args.sample)
    else:
        print(f"{len(rows)} items from {len({r['outlet'] for r in rows})} outlets")
        return 0
    for r in chosen:
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
