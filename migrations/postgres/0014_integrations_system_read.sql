-- The scheduler reads every tenant's scheduled jobs (integrations of kind `cron_job`)
-- in one query instead of one per tenant: a read across tenants, admitted for SELECT
-- only when the transaction says so (see 0003_audit.sql).
CREATE POLICY integrations_system_read ON integrations FOR SELECT
    USING (current_setting('facio.system', true) = 'read');
