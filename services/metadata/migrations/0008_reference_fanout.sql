-- 0008: reference fan-out across manifest replicas (issue 14, docs/fanout.md).
-- A large s3:// reference is planned by the replica the caller reached (the
-- coordinator) into consecutive key ranges, one item each; every replica
-- with DEPOT_DATABASE_URL claims pending items (FOR UPDATE SKIP LOCKED),
-- lists its range into a sorted segment in the blob store (~fanout/...) and
-- records it. A claim is a lease: a replica that dies stops renewing it and
-- another claims the item again. The coordinator merges the segments in item
-- order and deletes the job (its items go with it).
CREATE TABLE reference_fanout_jobs (
    id uuid PRIMARY KEY,
    -- uri, bucket, prefix, path_prefix, versioned, max_objects.
    spec jsonb NOT NULL,
    coordinator text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Renewed by the coordinator while it waits: a job whose coordinator
    -- died is cleaned up by any replica once this is old.
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE reference_fanout_items (
    job_id uuid NOT NULL REFERENCES reference_fanout_jobs (id) ON DELETE CASCADE,
    item integer NOT NULL,
    -- [["p", prefix] | ["k", key], ...]: a run of the plan's units, in key order.
    units jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    claimed_by text,
    -- Names this claim's segment, so a replica whose lease expired never
    -- overwrites the segment of the one that took the item over.
    claim uuid,
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    segment_key text,
    objects bigint,
    bytes bigint,
    -- 'too_many' (more than max_objects) or the failure's message.
    error text,
    PRIMARY KEY (job_id, item)
);
CREATE INDEX reference_fanout_items_pending ON reference_fanout_items (lease_until) WHERE state = 'pending';
