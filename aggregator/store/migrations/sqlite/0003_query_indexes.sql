-- 0003: an index for the query command's page (SQLiteStore._page_ids). Item rows are
-- large (summary and HTML, often spilling to overflow pages) and published comes after
-- them, so sorting the items of a tag or a search by date read every row's overflow; this
-- index answers "published of item N" from a few small pages. With items_published
-- (published, id) it covers every filter the query applies (they read only id and
-- published), so the page's ids come from indexes alone.
CREATE INDEX items_id_published ON items (id, published);
