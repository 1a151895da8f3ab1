-- The PostgreSQL store adds a read policy across tenants on `integrations` here (the
-- scheduler reads every tenant's scheduled jobs at once). SQLite has no row-level
-- security; this migration keeps the two stores' versions in step.
SELECT 1;
