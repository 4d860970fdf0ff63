-- Provisioning command executions: what each executor did with each command (executors deduplicate on
-- command_id here), and the attestations of the manual executor (who did it, when, with what evidence).

CREATE TABLE command_executions (
    command_id      text        PRIMARY KEY,
    entitlement_key text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('grant', 'revoke')),
    target_system   text        NOT NULL,
    executor        text        NOT NULL,                   -- okta, github, manual
    attempt         integer     NOT NULL DEFAULT 1,
    status          text        NOT NULL
        CHECK (status IN ('succeeded', 'failed', 'awaiting_attestation', 'attested')),
    detail          text,
    ticket          jsonb,                                  -- TicketRef carried by the command
    correlation_id  text,
    confirm_by      timestamptz,
    attested_by     text,
    attested_at     timestamptz,
    evidence        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_executions_waiting_idx ON command_executions (created_at) WHERE status = 'awaiting_attestation';
CREATE INDEX command_executions_key_idx ON command_executions (entitlement_key);

GRANT SELECT, INSERT, UPDATE ON command_executions TO closeloop_app;
