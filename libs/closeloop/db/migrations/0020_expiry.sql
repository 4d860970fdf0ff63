-- Expiry bookkeeping the entitlement record does not hold: which owner notices and recertification stages
-- went out, the follow-up of unconfirmed revokes (retry schedule), and revocation triggers (offboarding,
-- project end) until every matching entitlement was handled. The record itself (status, revoke deadline)
-- changes only through closeloop.record.

-- One row per (entitlement, expiry date, offset): the notice was sent, or superseded by a nearer one
-- after downtime. A new expiry date starts a new series.
CREATE TABLE expiry_notices (
    entitlement_key text        NOT NULL REFERENCES entitlements (key),
    expires_at      timestamptz NOT NULL,
    offset_s        bigint      NOT NULL CHECK (offset_s > 0),
    outcome         text        NOT NULL CHECK (outcome IN ('sent', 'superseded')),
    record_version  bigint,                                 -- record version whose event carried the notice
    handled_at      timestamptz NOT NULL,
    PRIMARY KEY (entitlement_key, expires_at, offset_s)
);

-- One row per (entitlement, due date, stage) of the recertification cycle.
CREATE TABLE expiry_recert_stages (
    entitlement_key text        NOT NULL REFERENCES entitlements (key),
    due_at          timestamptz NOT NULL,
    stage           text        NOT NULL CHECK (stage IN ('due', 'overdue', 'revoke')),
    outcome         text        NOT NULL CHECK (outcome IN ('announced', 'superseded')),
    record_version  bigint,
    handled_at      timestamptz NOT NULL,
    PRIMARY KEY (entitlement_key, due_at, stage)
);

-- A revoke that missed its confirmation deadline: raised once as REVOKE_UNCONFIRMED, then resent with
-- backoff under the same command id until the source confirms or the attempts are used up.
CREATE TABLE expiry_revoke_followups (
    entitlement_key     text        NOT NULL REFERENCES entitlements (key),
    revoke_requested_at timestamptz NOT NULL,               -- identifies the revoke (entitlements.revoke_requested_at)
    command_id          text        NOT NULL,
    trigger             text        NOT NULL,
    attempts            integer     NOT NULL CHECK (attempts >= 1),
    unconfirmed_at      timestamptz NOT NULL,
    exception_ended_at  timestamptz,
    last_attempt_at     timestamptz,
    next_attempt_at     timestamptz,                        -- NULL: no further attempt
    PRIMARY KEY (entitlement_key, revoke_requested_at)
);
CREATE INDEX expiry_revoke_followups_next_idx ON expiry_revoke_followups (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

-- Revocation triggers, kept until every matching entitlement was revoked (or flagged), so a crash in the
-- middle of a large offboarding is finished by the next sweep.
CREATE TABLE expiry_triggers (
    id              bigserial   PRIMARY KEY,
    kind            text        NOT NULL,                   -- offboarding, project_end
    subject         text        NOT NULL,                   -- principal or project, as named by the input
    principals      text[]      NOT NULL DEFAULT '{}',      -- canonical principals that match (offboarding)
    names           text[]      NOT NULL DEFAULT '{}',      -- bare names (emails, logins) that match, lower-case
    project         text,
    ticket          jsonb,                                  -- TicketRef, when a ticket fired it
    source_event_id text        NOT NULL UNIQUE,
    correlation_id  text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    completed_at    timestamptz,
    revoked_count   integer     NOT NULL DEFAULT 0,
    flagged_count   integer     NOT NULL DEFAULT 0
);
CREATE INDEX expiry_triggers_open_idx ON expiry_triggers (id) WHERE completed_at IS NULL;

-- Entitlements flagged because their owner was offboarded (once per entitlement and trigger).
CREATE TABLE expiry_owner_flags (
    entitlement_key text        NOT NULL REFERENCES entitlements (key),
    trigger_id      bigint      NOT NULL REFERENCES expiry_triggers (id),
    record_version  bigint,
    flagged_at      timestamptz NOT NULL,
    PRIMARY KEY (entitlement_key, trigger_id)
);

GRANT SELECT, INSERT, UPDATE ON expiry_notices, expiry_recert_stages, expiry_revoke_followups,
    expiry_triggers, expiry_owner_flags TO closeloop_app;
GRANT USAGE ON SEQUENCE expiry_triggers_id_seq TO closeloop_app;
