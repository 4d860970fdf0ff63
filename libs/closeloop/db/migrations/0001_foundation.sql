-- Foundation: the service role, processed-event ids (idempotent consumers) and the transactional outbox.
-- Numbering: 0001-0009 foundation, 0010-0019 provisioning, 0020-0029 expiry, 0030-0039 request-intake,
-- 0040-0049 connectors, 0050-0059 reconciliation.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_app') THEN
        CREATE ROLE closeloop_app NOLOGIN;
    END IF;
END
$$;

-- Inputs each consumer has already applied; inserted in the same transaction as the effect.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Events to publish, written in the same transaction as the state change they announce;
-- the relay deletes a row once the broker has acknowledged it.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    key          bytea,
    value        bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, DELETE ON processed_events TO closeloop_app;
GRANT SELECT, INSERT, DELETE ON outbox TO closeloop_app;
GRANT USAGE ON SEQUENCE outbox_id_seq TO closeloop_app;
