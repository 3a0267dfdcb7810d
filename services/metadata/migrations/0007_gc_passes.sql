-- 0007: what each GC pass did (issue 12), for GcService.GetStatus and
-- `depot gc status`. One row per pass that ran (a replica that did not get
-- the collector lock stores nothing); the GC keeps the newest few hundred.
-- A row with no end_time is a pass still running, or one whose process died:
-- the next pass (holding the collector lock, so no other can be running)
-- closes such rows as interrupted.
CREATE TABLE gc_passes (
    id bigserial PRIMARY KEY,
    -- '' for all entities.
    entity text NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'run_now')),
    dry_run boolean NOT NULL,
    start_time timestamptz NOT NULL DEFAULT now(),
    end_time timestamptz,
    versions_expired bigint NOT NULL DEFAULT 0,
    versions_purged bigint NOT NULL DEFAULT 0,
    pending_purged bigint NOT NULL DEFAULT 0,
    manifests_deleted bigint NOT NULL DEFAULT 0,
    blobs_deleted bigint NOT NULL DEFAULT 0,
    bytes_freed bigint NOT NULL DEFAULT 0,
    blobs_scanned bigint NOT NULL DEFAULT 0,
    sample text[] NOT NULL DEFAULT '{}',
    -- [{"name": "expire", "duration_s": 0.01, "items": 3}, ...]
    phases jsonb NOT NULL DEFAULT '[]',
    -- ["purge: ...", ...]
    errors jsonb NOT NULL DEFAULT '[]',
    -- RunNow's request_id and its caller: a retry answers this pass's report
    -- instead of running another one.
    caller_id bigint,
    request_id text,
    UNIQUE (caller_id, request_id)
);
CREATE INDEX gc_passes_entity ON gc_passes (entity, id);
