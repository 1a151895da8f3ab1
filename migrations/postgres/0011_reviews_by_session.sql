-- A session activating looks for its own pending review; without this index that
-- scanned every pending review of the tenant.
CREATE INDEX reviews_by_session ON reviews (tenant_id, session_key, status, created_at);
