-- 0005: deletion with a grace period (issue 12). A deleted version keeps its
-- row until purge_time (delete_time + the server's grace period); until then
-- UndeleteArtifactVersion restores it, with the aliases it held
-- (deleted_aliases) that nobody took meanwhile. Then the GC removes the row.
ALTER TABLE versions ADD COLUMN purge_time timestamptz;
ALTER TABLE versions ADD COLUMN delete_reason text CHECK (delete_reason IN ('user', 'ttl'));
ALTER TABLE versions ADD COLUMN deleted_aliases text[] NOT NULL DEFAULT '{}';

-- Versions deleted before this release (TTL expiry) get the default grace.
UPDATE versions SET purge_time = coalesce(delete_time, now()) + interval '7 days', delete_reason = 'ttl'
WHERE state = 'deleted';

ALTER TABLE versions ADD CONSTRAINT versions_deleted_purge
    CHECK ((state = 'deleted') = (purge_time IS NOT NULL AND delete_reason IS NOT NULL));

-- The GC's purge scan and its scan for abandoned pending versions.
CREATE INDEX versions_purge ON versions (purge_time) WHERE state = 'deleted';
CREATE INDEX versions_pending ON versions (create_time) WHERE state = 'pending';
