-- One identity graph (closeloop.identity) replaces the connectors' alias graph (`identity_aliases`, 0042) and the
-- record's alias table (`principal_aliases`, 0010/0012; their grants of 0343 go with them): every name one identity goes by across systems
-- (okta:user:alice@example.com, okta:user:00u1abc, github:user:alice-gh, aws:user:<arn>, email:<address>), each
-- mapped to one identity id; `account` marks the names a source uses as the principal of its grants.
-- And the resource catalog: per system and type, a resource's canonical id, its display name and aliases.

CREATE TABLE identity_links (
    name        text        PRIMARY KEY,
    identity_id text        NOT NULL,
    account     boolean     NOT NULL DEFAULT false,
    origin      text        NOT NULL,  -- 'operator' (alias file, CLI; wins), 'rule', or the observing source
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_links_identity ON identity_links (identity_id);

INSERT INTO identity_links (name, identity_id, origin, first_seen, last_seen)
SELECT alias, identity_id, CASE WHEN origin = 'config' THEN 'operator' ELSE origin END, first_seen, last_seen
FROM identity_aliases;

-- The record's principals and their aliases: one identity each (the graph's, when it already knows the principal).
INSERT INTO identity_links (name, identity_id, account, origin, first_seen)
SELECT DISTINCT ON (p.principal) p.principal, COALESCE(l.identity_id, p.principal), true, COALESCE(p.source, 'record'),
       p.created_at
FROM principal_aliases p LEFT JOIN identity_links l ON l.name = p.principal
ORDER BY p.principal, p.created_at
ON CONFLICT (name) DO UPDATE SET account = true;
INSERT INTO identity_links (name, identity_id, origin, first_seen)
SELECT p.alias, l.identity_id, COALESCE(p.source, 'record'), p.created_at
FROM principal_aliases p JOIN identity_links l ON l.name = p.principal
ON CONFLICT (name) DO NOTHING;

DROP TABLE principal_aliases;
DROP TABLE identity_aliases;

-- Names seen together that the graph gives to different identities: reported, never merged.
CREATE TABLE identity_link_conflicts (
    names       text[]      NOT NULL,
    identities  text[]      NOT NULL,
    origin      text        NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (names, identities)
);

CREATE TABLE catalog_resources (
    resource      text        PRIMARY KEY,  -- canonical <system>:<type>:<id>
    system        text        NOT NULL,
    resource_type text        NOT NULL,
    display_name  text,
    aliases       text[]      NOT NULL DEFAULT '{}',
    origin        text        NOT NULL,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_resources_system ON catalog_resources (system, resource_type);

-- Links move between identities only by the operator's word (a merge is an UPDATE); nothing is deleted.
-- closeloop_app keeps the union; each service role (0343) gets what it does with the graph and the catalog:
-- the connectors feed both, provisioning and expiry link a record's identities and read both.
GRANT SELECT, INSERT, UPDATE ON identity_links, identity_link_conflicts, catalog_resources TO closeloop_app;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_connectors') THEN
        GRANT SELECT, INSERT, UPDATE ON identity_links, identity_link_conflicts, catalog_resources
            TO closeloop_connectors;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_provisioning') THEN
        GRANT SELECT, INSERT, UPDATE ON identity_links, identity_link_conflicts TO closeloop_provisioning;
        GRANT SELECT ON catalog_resources TO closeloop_provisioning;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_expiry') THEN
        GRANT SELECT, INSERT, UPDATE ON identity_links, identity_link_conflicts TO closeloop_expiry;
        GRANT SELECT ON catalog_resources TO closeloop_expiry;
    END IF;
END
$$;
