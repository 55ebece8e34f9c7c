"""What both stores share: row mapping, filters, stories, feeds, tags, labels, digests, meta.

SQLite and PostgreSQL differ in how they connect, run transactions, migrate, mark
parameters, type times and JSON, search, and in the statements where each engine has its
own fast way (storing a feed's entries, claiming feeds, SQLite's page planner). Everything
else is written once, here, in SQL both understand, with ``?`` for a parameter: the
PostgreSQL engine rewrites the marks (``qmark``) and its types come in through the hooks
at the top of ``StoreCore``.

A store is ``StoreCore`` plus an engine class supplying those hooks; ``Query`` composes
the filters (after lemon24/reader's ``_sql_utils.Query``). One module a concern, as reader
splits its storage: ``feeds``, ``items`` (filters, views, stories), ``tags`` (and labels),
``digests``, ``meta``; ``sql`` holds the statements' parts and ``base`` the hooks.
"""

from __future__ import annotations

from aggregator.store.core.base import CoreBase, bad_search, fingerprint_columns, split_entries
from aggregator.store.core.digests import Digests
from aggregator.store.core.feeds import Feeds
from aggregator.store.core.items import Items, best_tags
from aggregator.store.core.meta import Meta
from aggregator.store.core.sql import (
    FEED_COLUMNS,
    PRECEDENCE,
    STORY_WINDOW,
    VIEW_COLUMNS,
    VIEW_SELECT,
    Query,
)
from aggregator.store.core.tags import Tags

__all__ = ["FEED_COLUMNS", "PRECEDENCE", "STORY_WINDOW", "VIEW_COLUMNS", "VIEW_SELECT", "CoreBase",
           "Items", "Query", "StoreCore", "bad_search", "best_tags",
           "fingerprint_columns", "split_entries"]


class StoreCore(Feeds, Tags, Digests, Meta):
    """The shared half of a store: an engine class adds its hooks (see ``base.CoreBase``)."""
