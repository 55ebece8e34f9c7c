-- 0005: what the parser reads and the store used to drop. enclosures: a JSON list of
-- {"url", "type", "length"} (NULL: none, most entries); updated: when the feed says the
-- entry last changed (ISO, NULL when it does not say). In step with PostgreSQL's 0005.
ALTER TABLE items ADD COLUMN enclosures TEXT;
ALTER TABLE items ADD COLUMN updated TEXT;
-- Several classifiers share the pending items (on PostgreSQL: daemons on several machines):
-- each takes a batch under a lease, so an item is classified once; a dead one's batch is
-- pending again when its lease runs out.
ALTER TABLE items ADD COLUMN classify_owner TEXT;
ALTER TABLE items ADD COLUMN classify_until TEXT;
