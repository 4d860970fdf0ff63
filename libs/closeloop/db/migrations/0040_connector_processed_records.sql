-- Connectors: vendor records already published (hooks deliver at least once; hook, raw topic and replay
-- may carry the same record). A record is claimed in the same transaction that is committed only after
-- its grant events are acknowledged by the broker. Rows older than the retention are purged by the service.

CREATE TABLE connector_processed_records (
    source       text        NOT NULL,  -- connector source: okta, entra, cloudtrail, github, k8s, vault
    record_key   text        NOT NULL,  -- "<vendor event type>|<vendor record id>" (or a content hash)
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, record_key)
);

CREATE INDEX connector_processed_records_age ON connector_processed_records (processed_at);

GRANT SELECT, INSERT, DELETE ON connector_processed_records TO closeloop_app;
