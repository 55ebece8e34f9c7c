-- 0003, PostgreSQL twin of migrations/sqlite/0003_query_indexes.sql: published by item
-- id from the index alone (an index-only scan), for sorting the items of a tag or a
-- search by date without visiting their rows.
CREATE INDEX items_id_published ON items (id) INCLUDE (published);
