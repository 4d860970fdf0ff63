-- request-intake: webhook deliveries already accepted, so a replayed delivery is rejected across restarts
-- and across instances. Standard Webhooks deliveries are keyed by `webhook-id`; Jira, which has no
-- delivery id, by `<issue id>:<changelog id>`.
-- A delivery is first `claimed` with a short lease (so a crash mid-processing does not block the sender's
-- retry for long), then `done` until it can no longer pass the signature's timestamp check; expired rows
-- are purged and may be claimed again.

CREATE TABLE intake_webhook_deliveries (
    source       text        NOT NULL,                  -- servicenow, jira, generic
    delivery_id  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('claimed', 'done')),
    claim_token  uuid        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (source, delivery_id)
);

CREATE INDEX intake_webhook_deliveries_expires_at ON intake_webhook_deliveries (expires_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON intake_webhook_deliveries TO closeloop_app;
