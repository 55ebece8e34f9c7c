-- 0002: stories. Near-identical items (a wire story copied by outlets, a think tank's
-- piece syndicated) are one story: items.story_id is the id of the story's first item,
-- set on every member once a second one joins (NULL: a story of its own).
-- The 64-bit SimHash of title and lead (aggregator/parse/dedupe.py) is stored signed,
-- with its four 16-bit bands: two items within 3 bits share at least one band, so the
-- candidates for a new item are four index lookups in a time window, never a scan.
ALTER TABLE items ADD COLUMN simhash INTEGER;     -- NULL: text too short to fingerprint
ALTER TABLE items ADD COLUMN simhash_b0 INTEGER;
ALTER TABLE items ADD COLUMN simhash_b1 INTEGER;
ALTER TABLE items ADD COLUMN simhash_b2 INTEGER;
ALTER TABLE items ADD COLUMN simhash_b3 INTEGER;
CREATE INDEX items_simhash_b0 ON items (simhash_b0, published) WHERE simhash_b0 IS NOT NULL;
CREATE INDEX items_simhash_b1 ON items (simhash_b1, published) WHERE simhash_b1 IS NOT NULL;
CREATE INDEX items_simhash_b2 ON items (simhash_b2, published) WHERE simhash_b2 IS NOT NULL;
CREATE INDEX items_simhash_b3 ON items (simhash_b3, published) WHERE simhash_b3 IS NOT NULL;
CREATE INDEX items_story ON items (story_id) WHERE story_id IS NOT NULL;
-- Retention prunes by age: published and first seen both before the cut-off.
CREATE INDEX items_first_seen ON items (first_seen);
