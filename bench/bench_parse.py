"""Parse-step benchmark: lxml's tree build vs the fast path vs feedparser.

For realistic ~50 KB feeds (the demo feeds with their items repeated to ~50 KB, and the
largest real captures in shared/), prints per-feed median times of a bare
``lxml.etree.fromstring``; a bare walk (the tree built and each entry's children read into
a dict, no rules: the floor for any reader written in Python over lxml); the fast path
alone; the fast path with normalization (``parse_feed(reader="fast")``); and feedparser
(``feedparser.parse`` alone), with ratios to lxml; then the fast path's acceptance rate
over the shared corpora (every file). "fast" uses the compiled entry reader
(``parse/_walk.pyx``) when it is built; "py reader" is the fast path with it switched
off. Each feed's contenders run in turn within every round, so that a busy machine slows
them alike and the ratios hold.
Goal: fast path <= 3x lxml.etree.fromstring.

    .venv/bin/python bench/bench_parse.py [--repeat N]
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import feedparser
from lxml import etree

from aggregator.parse import fast
from aggregator.parse.fast import fast_parse
from aggregator.parse.feeds import parse_feed

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "aggregator" / "demo" / "feeds"
SHARED = ROOT.parent / "shared" / "data" / "feeds"
URL = "https://feeds.example.org/world/rss.xml"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TARGET = 50_000
_ITEM = re.compile(rb"<(item|entry)[\s>].*?</\1>", re.DOTALL)


def grow(body: bytes, target: int = TARGET) -> bytes:
    """The feed with its items repeated (identities suffixed) until it is ~target bytes."""
    items = [m.group(0) for m in _ITEM.finditer(body)]
    if not items:
        return body
    end = body.rindex(items[-1]) + len(items[-1])
    extra: list[bytes] = []
    n = 0
    while len(body) + sum(map(len, extra)) < target:
        item = items[n % len(items)]
        suffix = f"-copy{n}".encode()
        item = item.replace(b"</guid>", suffix + b"</guid>").replace(b"</id>", suffix + b"</id>")
        item = item.replace(b"</link>", suffix + b"</link>")
        extra.append(item)
        n += 1
    return body[:end] + b"".join(extra) + body[end:]


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          remove_comments=True, remove_pis=True)


def bare_walk(body: bytes) -> list[dict[str, object]]:
    """The floor for any lxml-based reader written in Python: the tree built, and each
    entry's children read into a dict (tag -> text, attributes), with no rule applied."""
    root = etree.fromstring(body, _PARSER)
    parent = root[0] if root.tag == "rss" else root
    out = []
    for item in parent:
        d: dict[str, object] = {}
        for c in item:
            d[c.tag] = c.text
            if len(c.attrib):
                d[f"{c.tag}@"] = dict(c.attrib)
        out.append(d)
    return out


def side_by_side_us(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median microseconds of each function, run in turn within every round, so that
    whatever else the machine is doing weighs on all of them alike."""
    for fn in fns:
        fn()  # warm caches (names, regexes) as a long-running fetcher would have them
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t)
    return [statistics.median(spent) * 1e6 for spent in times]




def feeds() -> list[tuple[str, bytes]]:
    out = [(f"demo/{p.name} x", grow(p.read_bytes())) for p in sorted(DEMO.glob("*.xml"))]
    miniflux = SHARED / "miniflux-testdata"
    if miniflux.is_dir():
        largest = sorted(miniflux.glob("*.xml"), key=lambda p: p.stat().st_size, reverse=True)[:4]
        out += [(f"miniflux/{p.name}", p.read_bytes()) for p in largest]
    return out


def acceptance() -> None:
    print("\nfast-path acceptance (documents the fast path reads; the rest go to feedparser)")
    for name, folder in (("demo", DEMO), ("miniflux-testdata", SHARED / "miniflux-testdata"),
                         ("feedparser-tests", SHARED / "feedparser-tests" / "tests")):
        files = sorted(folder.rglob("*.xml")) if folder.is_dir() else []
        if not files:
            print(f"  {name:20} (absent)")
            continue
        accepted = sum(fast_parse(p.read_bytes(), URL) is not None for p in files)
        print(f"  {name:20} {accepted:5}/{len(files):<5} {100 * accepted / len(files):5.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    compiled = fast._walk is not None
    print(f"compiled entry reader: {'built' if compiled else 'NOT BUILT (fast = Python reader)'}")
    head = (f"{'feed':44} {'KB':>5} {'lxml':>7} {'walk':>6} {'fast':>7} {'py reader':>9}"
            f" {'fast+norm':>9} {'feedparser':>10} {'walk/lxml':>9} {'fast/lxml':>9}"
            f" {'py/lxml':>8} {'+norm/lxml':>10} {'fp/lxml':>8}")
    print("median microseconds per parse, measured side by side\n" + head)
    ratios = []
    for name, body in feeds():
        assert fast_parse(body, URL) is not None, f"fast path declined {name}"
        lx, walk, fst, py, norm = side_by_side_us([
            functools.partial(etree.fromstring, body), functools.partial(bare_walk, body),
            functools.partial(fast_parse, body, URL),
            functools.partial(fast_parse, body, URL, compiled=False),
            functools.partial(parse_feed, body, NOW, url=URL, reader="fast")], args.repeat)
        lx_fp, fp = side_by_side_us([
            functools.partial(etree.fromstring, body),
            functools.partial(feedparser.parse, body, sanitize_html=False,
                              response_headers={"content-location": URL})],
            max(3, args.repeat // 6))
        ratios.append(fst / lx)
        print(f"{name:44} {len(body) / 1000:5.0f} {lx:7.0f} {walk:6.0f} {fst:7.0f} {py:9.0f}"
              f" {norm:9.0f} {fp:10.0f} {walk / lx:8.2f}x {fst / lx:8.2f}x {py / lx:7.2f}x"
              f" {norm / lx:9.2f}x {fp / lx_fp:7.0f}x")
    print(f"\ngoal: fast path <= 3x lxml.etree.fromstring; worst {max(ratios):.2f}x, "
          f"median {statistics.median(ratios):.2f}x -> {'MET' if max(ratios) <= 3 else 'NOT MET'}")
    acceptance()


if __name__ == "__main__":
    main()
