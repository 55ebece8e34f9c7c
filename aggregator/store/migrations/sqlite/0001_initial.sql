-- 0001: feeds with their fetch state, items and the feeds that carried them, tags, labels,
-- fetch attempts, digest deliveries. Times are ISO 8601 UTC strings ('2026-11-20T08:00:00Z'),
-- which sort as text.

CREATE TABLE feeds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,                           -- where we fetch it now (follows confirmed 301s)
    declared_url TEXT NOT NULL,                  -- as written in feeds.toml
    tags TEXT NOT NULL DEFAULT '[]',            -- JSON list: tags the source implies
    interval_s INTEGER,                          -- NULL: the default from settings
    active INTEGER NOT NULL DEFAULT 1,           -- 0 once removed from feeds.toml (items kept)
    disabled_at TEXT,
    disabled_reason TEXT,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    body_hash TEXT,
    last_fetched_at TEXT,
    last_success_at TEXT,
    last_full_fetch_at TEXT,
    next_fetch_at TEXT,                          -- NULL: due now
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since TEXT,
    last_error TEXT,
    malformed INTEGER NOT NULL DEFAULT 0,
    pending_redirect_url TEXT,
    pending_redirect_count INTEGER NOT NULL DEFAULT 0,
    new_items_rate REAL,                         -- new items per hour, smoothed
    ttl_s INTEGER,                               -- the feed's own refresh hint, kept for 304s
    lease_owner TEXT,                            -- several daemons: who is fetching it
    lease_until TEXT
);
CREATE INDEX feeds_due ON feeds (next_fetch_at) WHERE active = 1 AND disabled_at IS NULL;

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES feeds (id),   -- the feed that carried it first
    canonical_url TEXT,
    url TEXT,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    content_html TEXT NOT NULL,
    published TEXT NOT NULL,
    date_is_fetch_time INTEGER NOT NULL DEFAULT 0,
    authors TEXT NOT NULL DEFAULT '[]',
    categories TEXT NOT NULL DEFAULT '[]',
    language TEXT,
    content_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    needs_classify INTEGER NOT NULL DEFAULT 1,
    story_id INTEGER
);
-- One item per canonical URL, whichever feeds carry it.
CREATE UNIQUE INDEX items_canonical_url ON items (canonical_url) WHERE canonical_url IS NOT NULL;
CREATE INDEX items_published ON items (published);
CREATE INDEX items_needs_classify ON items (id) WHERE needs_classify = 1;

-- Each feed's own entry for an item: identity within a feed is (feed_id, entry_key).
CREATE TABLE item_sources (
    feed_id INTEGER NOT NULL REFERENCES feeds (id),
    entry_key TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    url TEXT,
    title TEXT NOT NULL,
    published TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (feed_id, entry_key)
);
CREATE INDEX item_sources_item ON item_sources (item_id);

-- The effective tags of an item: one row per tag; a user's label outranks a rule, a rule the model.
CREATE TABLE item_tags (
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    score REAL NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('model', 'rule', 'user')),
    model_version TEXT,
    reasons TEXT NOT NULL DEFAULT '[]',
    tagged_at TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
) WITHOUT ROWID;
CREATE INDEX item_tags_tag ON item_tags (tag, score);

-- What users said: value 1 = the item has the tag, 0 = it has not. Survives retraining.
CREATE TABLE labels (
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (0, 1)),
    labelled_at TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
) WITHOUT ROWID;

CREATE TABLE fetch_attempts (
    id INTEGER PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    status INTEGER,
    duration_ms INTEGER,
    bytes INTEGER,
    error TEXT,
    event TEXT,
    new_items INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX fetch_attempts_feed ON fetch_attempts (feed_id, id);

-- The ledger: an item goes to a recipient once, ever.
CREATE TABLE deliveries (
    recipient TEXT NOT NULL,
    item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    subscription TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    message_id TEXT,
    PRIMARY KEY (recipient, item_id)
) WITHOUT ROWID;

-- One row per digest sent (or claimed for sending), so a period is never sent twice.
CREATE TABLE digest_runs (
    subscription TEXT NOT NULL,
    period_end TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    claimed_by TEXT,
    claimed_at TEXT NOT NULL,
    sent_at TEXT,
    items INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    PRIMARY KEY (subscription, period_end)
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Full-text search over title and summary, kept current by triggers (never rebuilt).
CREATE VIRTUAL TABLE items_fts USING fts5 (
    title, summary, content = 'items', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF title, summary ON items BEGIN
    INSERT INTO items_fts (items_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary);
    INSERT INTO items_fts (rowid, title, summary) VALUES (new.id, new.title, new.summary);
END;
