-- 0004: in step with SQLite's 0004, which moved search indexing of new items from a trigger
-- into the store. PostgreSQL computes each item's tsvector in the INSERT itself: nothing to do.
SELECT 1;
