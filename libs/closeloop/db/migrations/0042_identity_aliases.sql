-- Identity aliases: every name one identity goes by across systems (canonical references such as
-- okta:user:alice@example.com, okta:user:00u1abc, github:user:alice-gh, aws:user:<arn>, and email:<address>),
-- each mapped to one identity id. Fed by connectors from the names a record carries together, and by the
-- operator's mapping file (origin 'config', which wins over observations).

CREATE TABLE identity_aliases (
    alias       text        PRIMARY KEY,
    identity_id text        NOT NULL,
    origin      text        NOT NULL,  -- 'config' or '<source>' of the record that showed the link
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX identity_aliases_identity ON identity_aliases (identity_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON identity_aliases TO closeloop_app;
