"""Full-text search on PostgreSQL with the syntax users know from SQLite FTS5.

Users write ``tehran``, ``"a phrase"``, ``prefix*``, ``a OR b``, ``a NOT b``, ``a AND b``
(or just ``a b``), parentheses and ``title:word``. SQLite hands that to FTS5; here it is
parsed with FTS5's precedence (NOT binds tightest, then AND, then OR) and written out as a
``to_tsquery`` expression. ``websearch_to_tsquery`` is not used: it has no prefixes, and
its ``-word`` and ``or`` are not FTS5's.

Both sides of a match go through ``tokens`` here: the stored tsvector is built from text
folded the same way as the query, the way SQLite's ``unicode61 remove_diacritics 2``
tokenizer folds it (lower case, diacritics dropped, words are runs of letters and digits),
under the ``simple`` configuration (no stemming, no stop words). So the same words match
on both engines, without the unaccent extension. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+")
# What ends a bare word in a query: space and the characters with a meaning of their own.
_LEXEME = re.compile(r'\s+|"(?:[^"]|"")*"?|[()*:]|[^\s"()*:]+')
_STRING = re.compile(r'"(?:[^"]|"")*"')  # a closed "phrase" ("" inside is a quote)
_COLUMNS = {"title": "A", "summary": "B"}


class SearchSyntaxError(ValueError):
    """The expression cannot be read; the message says where."""


def tokens(text: str) -> list[str]:
    """Words as the index holds them: lower case, without diacritics, letters and digits."""
    text = text.lower()
    if not text.isascii():  # ASCII (most text) has nothing to fold
        decomposed = unicodedata.normalize("NFD", text).translate(_marks())
        text = unicodedata.normalize("NFC", decomposed)
    return _WORD.findall(text)


_MARKS: dict[int, None] = {}


def _marks() -> dict[int, None]:
    """Combining marks (category Mn) to delete, as a str.translate table: built once, on
    the first text that needs it (a per-character test is ten times slower)."""
    if not _MARKS:
        _MARKS.update((cp, None) for cp in range(0x30000)
                      if unicodedata.category(chr(cp)) == "Mn")
    return _MARKS


def document(text: str) -> str:
    """The text to index, as space-separated words: ``to_tsvector('simple', ...)`` of it
    yields exactly ``tokens(text)``, in order (positions kept for phrases)."""
    return " ".join(tokens(text))


# -- the expression tree ---------------------------------------------------------------


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    prefix: bool = False
    weight: str = ""


@dataclass(frozen=True)
class _Op:
    op: str  # & | or "not" (binary: left and not right)
    left: _Node
    right: _Node


_Node = _Phrase | _Op | None  # None: a phrase with no words, which matches nothing


def _weighted(node: _Node, weight: str) -> _Node:
    if isinstance(node, _Phrase):
        return _Phrase(node.words, node.prefix, weight)
    if isinstance(node, _Op):
        return _Op(node.op, _weighted(node.left, weight), _weighted(node.right, weight))
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = [m.group() for m in _LEXEME.finditer(text) if not m.group().isspace()]
        self.pos = 0

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> str:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def fail(self, why: str) -> SearchSyntaxError:
        near = self.peek()
        where = f'near "{near}"' if near is not None else "at the end"
        return SearchSyntaxError(f"syntax error {where}: {why}")

    def parse(self) -> _Node:
        if not self.items:
            raise self.fail("an empty search")
        node = self.or_()
        if self.peek() is not None:
            raise self.fail("unexpected here")
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.peek() == "OR":
            self.take()
            node = _combine("|", node, self.and_())
        return node

    def and_(self) -> _Node:
        node = self.not_()
        while True:
            nxt = self.peek()
            if nxt == "AND":
                self.take()
            elif nxt is None or nxt in ("OR", "NOT", ")"):
                return node
            node = _combine("&", node, self.not_())

    def not_(self) -> _Node:
        node = self.primary()
        while self.peek() == "NOT":
            self.take()
            node = _combine("not", node, self.primary())
        return node

    def primary(self) -> _Node:
        item = self.peek()
        if item is None:
            raise self.fail("a word, a \"phrase\" or a ( group ) was expected")
        if item in ("AND", "OR", "NOT", ")", "*", ":"):
            hint = " (NOT needs a term before it: 'iran NOT sports')" if item == "NOT" else ""
            raise self.fail(f"a term was expected{hint}")
        self.take()
        if item == "(":
            node = self.or_()
            if self.peek() != ")":
                raise self.fail("a ')' was expected")
            self.take()
            return node
        if self.peek() == ":" and not item.startswith('"'):
            self.take()
            column = item.lower()
            if column not in _COLUMNS:
                raise SearchSyntaxError(f"no such column: {item} (title: or summary:)")
            return _weighted(self.primary(), _COLUMNS[column])
        if item.upper() == "NEAR" and self.peek() == "(":
            raise SearchSyntaxError("NEAR(...) is not supported on PostgreSQL: use a \"phrase\" "
                                    "or AND")
        if item.startswith('"'):
            if not _STRING.fullmatch(item):
                raise SearchSyntaxError(f"unterminated string: {item}")
            body = item[1:-1].replace('""', '"')
        else:
            body = item
        prefix = False
        if self.peek() == "*":
            self.take()
            prefix = True
        words = tuple(tokens(body))
        return _Phrase(words, prefix) if words else None


def _combine(op: str, left: _Node, right: _Node) -> _Node:
    """Apply an operator, folding away phrases with no words (they match nothing)."""
    if op == "&":
        return None if left is None or right is None else _Op("&", left, right)
    if op == "|":
        if left is None:
            return right
        return left if right is None else _Op("|", left, right)
    if left is None:
        return None
    return left if right is None else _Op("not", left, right)


def _render(node: _Node) -> str:
    if isinstance(node, _Phrase):
        parts = [f"'{w}'" + (":" + node.weight if node.weight else "") for w in node.words]
        if node.prefix:
            parts[-1] = f"'{node.words[-1]}':*{node.weight}"
        return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"
    assert isinstance(node, _Op)
    if node.op == "not":
        return f"({_render(node.left)} & !{_render(node.right)})"
    return f"({_render(node.left)} {node.op} {_render(node.right)})"


def to_tsquery(expression: str) -> str | None:
    """The ``to_tsquery('simple', ...)`` text for an FTS5-style expression; None when it
    can match nothing (e.g. only punctuation). Raises SearchSyntaxError."""
    node = _Parser(expression).parse()
    return None if node is None else _render(node)
