-- 0005: what the parser reads and the store used to drop. enclosures: a JSON list of
-- {"url", "type", "length"} (NULL: none, most entries); updated: when the feed says the
-- entry last changed (ISO, NULL when it does not say). In step with PostgreSQL's 0005.
ALTER TABLE items ADD COLUMN enclosures TEXT;
ALTER TABLE items ADD COLUMN updated TEXT;
