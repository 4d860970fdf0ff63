-- request-intake: the last state seen per ITSM ticket.
-- ServiceNow records do not carry their previous state; the intake diffs each record against this row to
-- derive the transition, and orders deliveries by `version` (ServiceNow sys_mod_count, Jira changelog id)
-- or, without one, by `vendor_updated_at`, so duplicates and out-of-order deliveries are dropped.
-- Written after the ticket event is acknowledged by Kafka, under a per-ticket advisory lock.

CREATE TABLE intake_ticket_state (
    system            text        NOT NULL,              -- servicenow, jira, generic
    ticket_key        text        NOT NULL,              -- sys_id, Jira issue id, `<ce source>#<ticket id>`
    ticket_number     text        NOT NULL,              -- RITM0010001, ACC-42 (for operators)
    phase             text        NOT NULL,              -- canonical status after the last published transition
    vendor_state      text        NOT NULL,              -- the vendor's state as last seen
    version           bigint,                            -- vendor revision of the last seen record
    vendor_updated_at timestamptz,                       -- vendor update time of the last seen record
    last_event_id     text,                              -- event id of the last published transition
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, ticket_key)
);

GRANT SELECT, INSERT, UPDATE ON intake_ticket_state TO closeloop_app;
