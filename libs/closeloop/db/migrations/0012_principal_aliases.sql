-- The record's alias table is `principal_aliases` (an alias -> the canonical principal of an identity in
-- `identities`). It was created as `identity_aliases` in 0010; that name belongs to the connectors'
-- alias graph (0042), so it is renamed here, before 0042 runs.

ALTER TABLE identity_aliases RENAME TO principal_aliases;
ALTER INDEX identity_aliases_principal_idx RENAME TO principal_aliases_principal_idx;
ALTER TABLE principal_aliases RENAME CONSTRAINT identity_aliases_pkey TO principal_aliases_pkey;
ALTER TABLE principal_aliases RENAME CONSTRAINT identity_aliases_principal_fkey TO principal_aliases_principal_fkey;
