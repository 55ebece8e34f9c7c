"""Text from feeds made safe for where it is printed: a terminal, a spreadsheet, a link.

Normalization strips control characters from what it stores, but rows stored before it did
(and anything a future parser lets through) are cleaned again here, at output: a title must
not clear a screen, plant an OSC 8 hyperlink, ring the bell or run as a spreadsheet formula.

Only ``re``: the read commands import this on their fast path.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a read command ~5 ms of its start
    from typing import Any

# Whole escape sequences first, so their parameters go with them (an OSC 8 hyperlink's URL,
# a colour's numbers), then any control character left: C0 but tab and newline, DEL, C1.
_SEQUENCE = re.compile(
    r"(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: title, hyperlink
    r"|(?:\x1b[P_^X]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, APC, PM, SOS
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: colours, cursor moves, clearing
    r"|\x1b[ -/]*[0-~]?"  # any other escape
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f]")  # json.dumps escapes C0, not DEL and C1
# OWASP's list for CSV injection: a spreadsheet takes these as the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: str) -> str:
    """``text`` without escape sequences and control characters (tab and newline kept)."""
    if not _CONTROL.search(text):  # nearly always: no copy, one scan
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def http_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL (cleaned), else None: a feed's ``javascript:`` or
    ``data:`` link is never printed, in any format."""
    if not url:
        return None
    url = clean(url).strip()
    head = url[:8].lower()
    if not (head.startswith("http://") or head.startswith("https://")) or len(url) <= 8:
        return None
    return url


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading
    ``'`` (OWASP), control characters go. Numbers pass as they are."""
    if not isinstance(value, str):
        return value
    value = clean(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON with the text unchanged but every control character escaped (``\\u009b``; C0
    already is), so it is safe to print on a terminal and reads back as the same value."""
    import json

    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if _RAW_IN_JSON.search(text):
        text = _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def json_line(value: Any) -> str:
    return json_text(value) + "\n"
