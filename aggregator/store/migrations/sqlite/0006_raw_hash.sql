-- 0006: each feed entry's raw hash (aggregator.parse.feeds.raw_hash), so that a changed
-- feed's entries already stored are skipped before they are normalized again.
ALTER TABLE item_sources ADD COLUMN raw_hash TEXT;
