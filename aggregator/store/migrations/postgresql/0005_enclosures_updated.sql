-- 0005: what the parser reads and the store used to drop (see SQLite's 0005).
ALTER TABLE items ADD COLUMN enclosures JSONB;
ALTER TABLE items ADD COLUMN updated TIMESTAMPTZ;
-- Pending items claimed for classification under a lease (see SQLite's 0005).
ALTER TABLE items ADD COLUMN classify_owner TEXT;
ALTER TABLE items ADD COLUMN classify_until TIMESTAMPTZ;
