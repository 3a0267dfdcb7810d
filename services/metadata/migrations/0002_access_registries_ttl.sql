-- 0002: orgs and team settings, tags, TTL inheritance, registries and links.

-- A team may belong to an org; org admins administer its teams.
ALTER TABLE entities ADD COLUMN org_id bigint REFERENCES entities (id) ON DELETE SET NULL;
-- Team settings: the TTL of versions that inherit it (NULL: forever) and who
-- may set TTLs.
ALTER TABLE entities ADD COLUMN default_ttl interval;
ALTER TABLE entities ADD COLUMN ttl_policy text NOT NULL DEFAULT 'members'
    CHECK (ttl_policy IN ('members', 'admins'));
CREATE INDEX memberships_user ON memberships (user_id);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- ttl_inherit: the version follows its entity's default_ttl (and ttl is NULL).
ALTER TABLE versions ADD COLUMN ttl_inherit boolean NOT NULL DEFAULT false;
ALTER TABLE versions ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
CREATE INDEX versions_tags ON versions USING gin (tags);
CREATE INDEX versions_metadata ON versions USING gin (metadata jsonb_path_ops);
CREATE INDEX versions_producer ON versions (producer_run_id);

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
