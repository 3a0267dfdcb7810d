-- Depot metadata schema: the truth. Numbered migrations in migrations/ must
-- build exactly this (tests/metadata/test_schema_equals_migrations.py compares the two).

CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    -- sha256 of the migration file as applied (db.py adds the column to
    -- older databases itself; NULL: applied before checksums were recorded).
    checksum text
);

-- A user, team or org. Users own API keys; teams and orgs have members.
CREATE TABLE entities (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('user', 'team', 'org')),
    superuser boolean NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT now(),
    -- A team may belong to an org; org admins administer its teams.
    org_id bigint REFERENCES entities (id) ON DELETE SET NULL,
    -- Team settings: the TTL of versions that inherit it (NULL: forever) and
    -- who may set TTLs.
    -- Bounded as the API bounds it (validate.MAX_TTL): commit_time + ttl
    -- must stay a date PostgreSQL can compute.
    default_ttl interval CONSTRAINT entities_default_ttl_range
        CHECK (default_ttl BETWEEN interval '1 second' AND interval '36525 days'),
    ttl_policy text NOT NULL DEFAULT 'members' CHECK (ttl_policy IN ('members', 'admins'))
);

CREATE TABLE memberships (
    entity_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    PRIMARY KEY (entity_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Keys are stored as SHA-256 of the secret part; the secret is shown once.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    secret_sha256 bytea NOT NULL,
    description text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    revoke_time timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
    id bigserial PRIMARY KEY,
    entity_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    name text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_id, name)
);

CREATE TABLE runs (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    job_type text NOT NULL DEFAULT '',
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'failed')),
    config jsonb NOT NULL DEFAULT '{}',
    create_time timestamptz NOT NULL DEFAULT now(),
    finish_time timestamptz,
    UNIQUE (project_id, name)
);

-- An artifact collection: a name with a type fixed at creation.
-- next_index is the gap-free version counter; committing locks this row.
CREATE TABLE collections (
    id bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL,
    type text NOT NULL,
    next_index integer NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE versions (
    id bigserial PRIMARY KEY,
    uid uuid NOT NULL UNIQUE,
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    -- NULL while pending; assigned from collections.next_index on commit.
    index integer,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'committed', 'deleted')),
    digest text,
    digest_algorithm text,
    manifest_id text,
    size bigint NOT NULL DEFAULT 0,
    file_count bigint NOT NULL DEFAULT 0,
    description text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    producer_run_id bigint REFERENCES runs (id) ON DELETE SET NULL,
    -- 1 second .. 100 years, as entities.default_ttl.
    ttl interval CONSTRAINT versions_ttl_range CHECK (ttl BETWEEN interval '1 second' AND interval '36525 days'),
    create_time timestamptz NOT NULL DEFAULT now(),
    commit_time timestamptz,
    delete_time timestamptz,
    -- The version follows its entity's default_ttl (and ttl is NULL).
    ttl_inherit boolean NOT NULL DEFAULT false,
    tags text[] NOT NULL DEFAULT '{}',
    -- Deleted versions (issue 12): removed for good by the GC at purge_time
    -- (delete_time + the grace period); restorable until then, with the
    -- aliases they held (deleted_aliases) that nobody took meanwhile.
    purge_time timestamptz,
    delete_reason text CHECK (delete_reason IN ('user', 'ttl')),
    deleted_aliases text[] NOT NULL DEFAULT '{}',
    UNIQUE (collection_id, index),
    CHECK ((state = 'pending') = (index IS NULL)),
    CONSTRAINT versions_deleted_purge
        CHECK ((state = 'deleted') = (purge_time IS NOT NULL AND delete_reason IS NOT NULL))
);

-- Dedup lookup: a live version of the collection with the same digest.
CREATE INDEX versions_digest ON versions (collection_id, digest) WHERE state = 'committed';
CREATE INDEX versions_tags ON versions USING gin (tags);
CREATE INDEX versions_metadata ON versions USING gin (metadata jsonb_path_ops);
CREATE INDEX versions_producer ON versions (producer_run_id);
-- The GC's purge scan and its scan for abandoned pending versions.
CREATE INDEX versions_purge ON versions (purge_time) WHERE state = 'deleted';
CREATE INDEX versions_pending ON versions (create_time) WHERE state = 'pending';

-- An alias names at most one version of a collection.
CREATE TABLE aliases (
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    alias text NOT NULL,
    version_id bigint NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    PRIMARY KEY (collection_id, alias)
);
CREATE INDEX aliases_version ON aliases (version_id);

-- Consumers: runs that used a version.
CREATE TABLE run_inputs (
    run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    version_id bigint NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    use_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, version_id)
);
CREATE INDEX run_inputs_version ON run_inputs (version_id);

-- Results of mutating calls by request_id, so a retry returns the first result.
CREATE TABLE idempotency (
    caller_id bigint NOT NULL,
    method text NOT NULL,
    request_id text NOT NULL,
    -- NULL while the first call is still running.
    response bytea,
    create_time timestamptz NOT NULL DEFAULT now(),
    -- sha256 of the request with its request_id cleared: the id is bound to
    -- it. NULL only in rows written before migration 0003.
    fingerprint bytea,
    -- The access checks the first call passed, [[kind, id, role], ...],
    -- re-run before a replay.
    grants jsonb,
    PRIMARY KEY (caller_id, method, request_id)
);

-- Registries belong to an org; `model` and `dataset` are its core registries.
-- accepted_types empty means any type.
CREATE TABLE registries (
    id bigserial PRIMARY KEY,
    org_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    name text NOT NULL,
    core boolean NOT NULL DEFAULT false,
    accepted_types text[] NOT NULL DEFAULT '{}',
    visibility text NOT NULL DEFAULT 'org' CHECK (visibility IN ('org', 'restricted')),
    description text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

CREATE TABLE registry_members (
    registry_id bigint NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    PRIMARY KEY (registry_id, user_id)
);

-- A collection inside a registry; its type is fixed by the first link.
-- next_index is the gap-free link counter; linking locks this row.
CREATE TABLE registry_collections (
    id bigserial PRIMARY KEY,
    registry_id bigint NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    name text NOT NULL,
    type text NOT NULL,
    next_index integer NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (registry_id, name)
);

-- A version linked into a registry collection, with its own index there.
CREATE TABLE links (
    id bigserial PRIMARY KEY,
    collection_id bigint NOT NULL REFERENCES registry_collections (id) ON DELETE CASCADE,
    version_id bigint NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    index integer NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, index),
    UNIQUE (collection_id, version_id)
);
CREATE INDEX links_version ON links (version_id);

-- An alias names at most one link of a registry collection.
CREATE TABLE link_aliases (
    collection_id bigint NOT NULL REFERENCES registry_collections (id) ON DELETE CASCADE,
    alias text NOT NULL,
    link_id bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
    PRIMARY KEY (collection_id, alias)
);
CREATE INDEX link_aliases_link ON link_aliases (link_id);

-- Bulk deletes by filter (issue 12): long-running operations run in batches
-- by the metadata service; a lease makes one runner work on each, and a
-- runner that dies leaves it to the next, which continues from the cursor.
CREATE TABLE delete_operations (
    -- operations/{id}: random, so that names do not count operations.
    id text PRIMARY KEY,
    caller_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    -- The same request_id from the same caller names the same operation.
    request_id text NOT NULL,
    -- sha256 of the request without its request_id: the id is bound to it.
    fingerprint bytea NOT NULL,
    entity_id bigint NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    -- The parent and filters as asked ({"parent", "type", "created_before",
    -- "without_aliases", "tag", "metadata_key", "metadata_value_json"}).
    filter jsonb NOT NULL,
    delete_aliases boolean NOT NULL,
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    -- NULL until the runner counted the matches.
    matched bigint,
    deleted bigint NOT NULL DEFAULT 0,
    skipped_aliased bigint NOT NULL DEFAULT 0,
    skipped_linked bigint NOT NULL DEFAULT 0,
    -- Keyset cursor: the last (collection id, version index) done.
    cursor_collection bigint NOT NULL DEFAULT 0,
    cursor_index integer NOT NULL DEFAULT -1,
    sample text[] NOT NULL DEFAULT '{}',
    error text NOT NULL DEFAULT '',
    -- The runner working on it, until when (renewed with every batch).
    lease_owner text,
    lease_until timestamptz,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (caller_id, request_id)
);
-- A runner's scan for operations nobody holds.
CREATE INDEX delete_operations_running ON delete_operations (lease_until) WHERE state = 'running';

-- What each GC pass did (GcService.GetStatus); no end_time: running, or
-- interrupted (closed by the next pass). The GC keeps the newest few hundred.
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

-- Reference fan-out work items (manifest replicas; docs/fanout.md).
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
