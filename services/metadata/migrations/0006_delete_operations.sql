-- 0006: bulk deletes by filter (issue 12), run by the metadata service in
-- batches as long-running operations. One row per operation: its filter,
-- its progress, and a lease so that exactly one runner works on it; a
-- runner that dies leaves its lease to expire and the next one continues
-- from the cursor (each batch commits with its cursor, so none runs twice).
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
