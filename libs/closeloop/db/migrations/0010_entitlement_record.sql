-- The entitlement record: identities, entitlements, break-glass exceptions, recertification evidence,
-- the last grant state observed at each source, and the append-only hash-chained audit log.
-- Owned by provisioning (libs/closeloop/record is the only code that writes these tables); the expiry
-- service changes entitlements through the same library.

-- Identities: people and non-human identities (service accounts, API tokens, bots, agents, ...).
CREATE TABLE identities (
    principal         text        PRIMARY KEY,              -- canonical <system>:<type>:<id>
    kind              text        NOT NULL DEFAULT 'unknown'
        CHECK (kind IN ('human', 'service_account', 'api_token', 'application', 'bot', 'workload', 'ai_agent', 'unknown')),
    status            text        NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended', 'deactivated', 'deleted')),
    owner             text,                                 -- accountable owner; required for NHIs by policy
    display_name      text,
    source_system     text,
    status_changed_at timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identities_owner_idx ON identities (owner) WHERE owner IS NOT NULL;

-- Other names of an identity (an email in the ITSM tool, an Okta user id, a GitHub login).
CREATE TABLE identity_aliases (
    alias      text        PRIMARY KEY,
    principal  text        NOT NULL REFERENCES identities (principal),
    source     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_aliases_principal_idx ON identity_aliases (principal);

-- One row per entitlement key (principal|resource|privilege): its current state. Its history is the
-- audit log, which holds the whole record after every change.
CREATE TABLE entitlements (
    key                      text        PRIMARY KEY,       -- str(EntitlementKey)
    principal                text        NOT NULL,
    resource                 text        NOT NULL,
    privilege                text        NOT NULL,
    source_system            text        NOT NULL,
    principal_kind           text        NOT NULL DEFAULT 'unknown',
    owner                    text,
    tickets                  jsonb       NOT NULL DEFAULT '[]'::jsonb,  -- [TicketRef], approving ticket first
    status                   text        NOT NULL
        CHECK (status IN ('pending', 'active', 'revoking', 'revoked', 'expired', 'refused')),
    last_change              text        NOT NULL,
    reason                   text,
    granted_at               timestamptz,
    expires_at               timestamptz,
    revocation_triggers      text[]      NOT NULL DEFAULT '{}',
    project                  text,
    verified_at              timestamptz,
    last_recertified_at      timestamptz,
    recertification_interval interval,
    recertification_due_at   timestamptz,
    exception_window_end     timestamptz,
    revoke_requested_at      timestamptz,
    revoke_confirm_by        timestamptz,
    version                  bigint      NOT NULL DEFAULT 1,  -- +1 per change; event ids derive from it
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (principal, resource, privilege)
);
-- Sweeps only look at live rows.
CREATE INDEX entitlements_principal_idx ON entitlements (principal);
CREATE INDEX entitlements_owner_live_idx ON entitlements (owner) WHERE status IN ('pending', 'active', 'revoking');
CREATE INDEX entitlements_project_live_idx ON entitlements (project) WHERE status IN ('pending', 'active', 'revoking');
CREATE INDEX entitlements_expiry_live_idx ON entitlements (expires_at) WHERE status IN ('pending', 'active');
CREATE INDEX entitlements_revoke_due_idx ON entitlements (revoke_confirm_by) WHERE status IN ('revoking', 'expired');
CREATE INDEX entitlements_recert_due_idx ON entitlements (recertification_due_at) WHERE status = 'active';
CREATE INDEX entitlements_exception_end_idx ON entitlements (exception_window_end) WHERE status IN ('pending', 'active');
CREATE INDEX entitlements_tickets_idx ON entitlements USING gin (tickets jsonb_path_ops);

-- Break-glass / exception access: explicit, time-bound, tied to an incident and a reviewer.
CREATE TABLE entitlement_exceptions (
    id              bigserial   PRIMARY KEY,
    entitlement_key text        NOT NULL REFERENCES entitlements (key),
    reason          text        NOT NULL,
    incident_ticket text,
    ticket          jsonb       NOT NULL,                   -- TicketRef of the exception ticket
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL CHECK (window_end > window_start),
    reviewer        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entitlement_key, ticket)
);

-- Recertification evidence: who decided what, when, under which ticket.
CREATE TABLE recertifications (
    id              bigserial   PRIMARY KEY,
    entitlement_key text        NOT NULL REFERENCES entitlements (key),
    decision        text        NOT NULL CHECK (decision IN ('certified', 'revoked', 'modified')),
    reviewer        text        NOT NULL,
    decided_at      timestamptz NOT NULL,
    ticket          jsonb,                                  -- TicketRef, when the decision came from a ticket
    notes           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recertifications_key_idx ON recertifications (entitlement_key, decided_at);

-- The last grant/revoke each source reported per entitlement key, approved or not. Lets an approval that
-- arrives after the grant (the topics are not ordered with each other) activate at once.
CREATE TABLE observed_grants (
    key             text        PRIMARY KEY,
    live            boolean     NOT NULL,
    source_system   text        NOT NULL,
    observed_at     timestamptz NOT NULL,                   -- occurred_at of the grant event
    vendor_event_id text        NOT NULL,
    command_id      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit log; each row is hash-chained to the previous one:
--   hash = sha256(canonical JSON of the row's fields including prev_hash)  (see closeloop.record.audit).
CREATE TABLE audit_log (
    seq            bigint      PRIMARY KEY CHECK (seq > 0),
    recorded_at    timestamptz NOT NULL,
    entity_type    text        NOT NULL,                    -- entitlement, identity, exception, recertification
    entity_key     text        NOT NULL,
    action         text        NOT NULL,                    -- the change (EntitlementChange value, ...)
    actor          text        NOT NULL,                    -- the service or operator that made it
    cause_event_id text,                                    -- input event that caused it
    correlation_id text,
    payload        jsonb       NOT NULL,                    -- the entity after the change
    prev_hash      text        NOT NULL,
    hash           text        NOT NULL UNIQUE
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_key, seq);
CREATE INDEX audit_log_recorded_idx ON audit_log (recorded_at);

-- The head of the chain; appenders lock this single row FOR UPDATE, which serializes appends, and the
-- verifier checks it against the last row (so deleting the tail is detected too).
CREATE TABLE audit_chain_head (
    id   smallint PRIMARY KEY CHECK (id = 1),
    seq  bigint   NOT NULL,
    hash text     NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, repeat('0', 64));

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Least privilege for the service role: no DELETE anywhere, and the audit log is INSERT + SELECT only.
GRANT SELECT, INSERT, UPDATE ON identities, identity_aliases, entitlements, observed_grants TO closeloop_app;
GRANT SELECT, INSERT ON entitlement_exceptions, recertifications TO closeloop_app;
GRANT USAGE ON SEQUENCE entitlement_exceptions_id_seq, recertifications_id_seq TO closeloop_app;
GRANT SELECT, INSERT ON audit_log TO closeloop_app;
GRANT SELECT, UPDATE ON audit_chain_head TO closeloop_app;
