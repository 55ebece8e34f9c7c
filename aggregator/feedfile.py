"""config/feeds.toml as text: read it cheaply, and edit it without losing a comment.

The file is the one truth about which feeds are followed, and people write it by hand, so
the commands that change it (``feeds add``, ``feeds import``, ``feeds remove``) edit its
text rather than re-serialize it: everything outside the table added or removed stays
byte for byte. New tables are rendered by tomlkit (so quoting is right) and appended at the
end; a removed table goes with the comment lines touching it from above (no blank line
between), which by convention document that feed. Every edit is checked by parsing the
result and comparing the feeds with what was meant, so a layout we do not understand
fails loudly instead of corrupting the file.

The read side (``read_feeds``) uses tomllib only: ``feeds list`` runs in shell loops and
must not pay for pydantic. On anything unusual it defers to ``aggregator.config.load_feeds``
for the precise one-line error.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator.instance import Instance, read_toml
from aggregator.timeutil import format_duration, parse_duration
from aggregator.views import FeedConfig

_FEED_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*feed[ \t]*\]\][ \t]*(#.*)?$")
# The same rules as config.py (NAME_PATTERN, _FeedEntry.url), repeated because importing
# config means importing pydantic; a test keeps the two equal.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_URL = re.compile(r"^https?://\S+$")
_KEYS = {"name", "url", "tags", "interval"}
MAX_NAME = 48

# Host labels and path segments that say nothing about which feed it is.
_HOST_NOISE = {"www", "www2", "feeds", "feed", "rss", "rss2", "m", "api"}
_SECOND_LEVEL = {"co", "com", "org", "net", "gov", "ac", "edu", "or", "ne", "go"}
_PATH_NOISE = {"rss", "rss2", "feed", "feeds", "atom", "xml", "index", "rss-feed", "feed-rss",
               "api", "syndication", "export", "default", "all"}
_EXTENSIONS = re.compile(r"\.(xml|rss|atom|php|aspx?|jsp|cfm|html?|json)$")


class FeedFileError(ValueError):
    """The feeds file cannot be edited as asked (unusual layout, or the edit did not hold).

    Carries ConfigError's parts, so the CLI says what it expected and what it found.
    """

    def __init__(self, expected: str, found: str) -> None:
        self.expected, self.found = expected, found
        super().__init__(f"expected {expected}, found {found}")


# -- reading -------------------------------------------------------------------------


def read_feeds(instance: Instance) -> tuple[FeedConfig, ...]:
    """The declared feeds, in file order, read with tomllib only.

    Anything the cheap read does not recognise is handed to the full pydantic loader,
    which raises the precise ConfigError (file, key, expected, found).
    """
    data = read_toml(instance.feeds_file, instance)
    feeds = _light_feeds(data)
    if feeds is None:
        from aggregator.config import load_feeds

        return load_feeds(instance)
    return feeds


def _light_feeds(data: dict[str, Any]) -> tuple[FeedConfig, ...] | None:
    raw = data.get("feed", [])
    if set(data) - {"feed"} or not isinstance(raw, list):
        return None
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) - _KEYS:
            return None
        name, url = entry.get("name"), entry.get("url")
        tags, interval = entry.get("tags", []), entry.get("interval")
        if not (isinstance(name, str) and NAME_RE.match(name) and isinstance(url, str)
                and _URL.match(url)
                and name not in seen and isinstance(tags, list)
                and all(isinstance(t, str) for t in tags)):
            return None
        seen.add(name)
        delta = None
        if interval is not None:
            try:
                delta = parse_duration(interval)
            except ValueError:
                return None
        feeds.append(FeedConfig(name, url, tuple(tags), delta))
    return tuple(feeds)


# -- editing (pure: text in, text out) -----------------------------------------------


def feed_table(feed: FeedConfig) -> dict[str, Any]:
    """A feed as the plain dict its [[feed]] table parses to (empty keys left out)."""
    table: dict[str, Any] = {"name": feed.name, "url": feed.url}
    if feed.tags:
        table["tags"] = list(feed.tags)
    if feed.interval is not None:
        table["interval"] = format_duration(feed.interval)
    return table


def append_feeds(text: str, feeds: Sequence[FeedConfig], comment: str | None = None) -> str:
    """``text`` with one [[feed]] table per feed added at the end, after a blank line.

    ``comment`` (one or more lines) goes just above the first new table, so an import
    says where its feeds came from.
    """
    import tomlkit

    if not feeds:
        return text
    blocks = [tomlkit.dumps({"feed": [feed_table(f)]}) for f in feeds]
    # A blank line after the comment: it heads the group, it is not the first feed's own
    # (remove_feed takes a touching comment with its table).
    lead = "".join(f"# {line}".rstrip() + "\n" for line in (comment or "").splitlines())
    lead += "\n" if lead else ""
    head = text.rstrip("\n")
    new = (head + "\n\n" if head.strip() else "") + lead + "\n".join(blocks)
    _expect(new, _tables(text) + [feed_table(f) for f in feeds])
    return new


def remove_feed(text: str, name: str) -> str:
    """``text`` without the [[feed]] table named ``name`` (and its own comment lines).

    Raises KeyError when no table has that name.
    """
    tables = _tables(text)
    index = next((i for i, t in enumerate(tables) if t.get("name") == name), None)
    if index is None:
        raise KeyError(name)
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if _FEED_HEADER.match(line)]
    if len(headers) != len(tables):
        raise FeedFileError("each feed as a [[feed]] table with its header on a line of its own "
                            "(edit the file by hand)",
                            f"{len(headers)} such headers for {len(tables)} feeds")
    start = headers[index]
    limit = headers[index + 1] if index + 1 < len(headers) else len(lines)
    # The table ends at its last key line: comments and blank lines after it introduce
    # what follows (a section heading, the next feed) and stay.
    end = start
    for j in range(start + 1, limit):
        stripped = lines[j].strip()
        if stripped and not stripped.startswith("#"):
            end = j
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    del lines[start:end + 1]
    # Do not leave two blank lines where the table was, nor blank lines at the end.
    if start < len(lines) and not lines[start].strip() and (start == 0 or not lines[start - 1].strip()):
        del lines[start]
    if start >= len(lines):
        while lines and not lines[-1].strip():
            lines.pop()
    new = "".join(lines)
    _expect(new, tables[:index] + tables[index + 1:])
    return new


def _tables(text: str) -> list[dict[str, Any]]:
    try:
        raw = tomllib.loads(text).get("feed", [])
    except tomllib.TOMLDecodeError as e:
        raise FeedFileError("valid TOML", str(e)) from None
    if not isinstance(raw, list):
        raise FeedFileError("feeds as [[feed]] tables", f"'feed' as a {type(raw).__name__}")
    return raw


def _expect(new: str, tables: list[dict[str, Any]]) -> None:
    if _tables(new) != tables:
        raise FeedFileError("a layout this command can edit safely (edit the file by hand)",
                            "an edit that would have changed other feeds")


# -- writing (the edge) --------------------------------------------------------------


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold a lock on the file's directory: one edit (and the sync after it) at a time.

    Two ``feeds add`` run at once (a shell loop with ``&``) would otherwise both read the
    old text, and the second write would drop the first feed; or the first sync, run after
    the second write, would deactivate the second feed. The lock is on the directory, not
    the file, because the file is replaced, not rewritten in place.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, each replace is still atomic
        yield
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except FileNotFoundError:  # no config dir: the read that follows says so properly
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def edit_file(path: Path, edit: Callable[[str], str]) -> None:
    """Replace the file with ``edit`` of its text, in one atomic step (call under ``locked``)."""
    write_text_atomically(path, edit(path.read_text(encoding="utf-8")))


def write_text_atomically(path: Path, text: str) -> None:
    """Replace the file in one step: a daemon reading it sees the old or the new, never half."""
    import tempfile  # here, not at the top: it costs `feeds list` ~3 ms of imports

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            # A new file gets the usual mode, not mkstemp's private 0600.
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- names ---------------------------------------------------------------------------


def slugify(text: str) -> str:
    """A feed name from free text: lower-case ASCII letters and digits joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:MAX_NAME].rstrip("-")


def name_from_url(url: str) -> str:
    """A readable name from a feed URL: the site, then what the path says.

    https://feeds.bbci.co.uk/news/world/rss.xml -> bbci-news-world,
    https://en.irna.ir/rss -> irna-en, https://news.un.org/feed/... -> un-news.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    words: list[str] = []
    for segment in parts.path.split("/"):
        segment = _EXTENSIONS.sub("", segment.lower())
        if segment and segment not in _PATH_NOISE and segment not in words:
            words.append(segment)
    if _is_address(host):
        # 127.0.0.1 or localhost says nothing: name it after the path alone.
        return slugify("-".join(words[:3]) or host) or "feed"
    labels = [label for label in host.split(".") if label]
    while len(labels) > 2 and labels[0] in _HOST_NOISE:
        labels = labels[1:]
    if len(labels) > 1:
        labels = labels[:-1]  # the top-level domain
    if len(labels) > 1 and labels[-1] in _SECOND_LEVEL:
        labels = labels[:-1]  # co.uk, com.au
    site = [labels[-1], *reversed(labels[:-1])] if labels else []
    words = [w for w in words if w not in site]
    return slugify("-".join(site + words[:3])) or "feed"


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "." not in host
    return True


def unique_name(base: str, taken: Collection[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... whichever is free."""
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[:MAX_NAME - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def valid_url(url: str) -> bool:
    return bool(_URL.match(url))
