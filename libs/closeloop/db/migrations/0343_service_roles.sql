-- One database role per service, each with only what it does (closeloop_app keeps the union of them,
-- as the compatible default for a deployment that runs every service on one DSN). The roles are created
-- NOLOGIN when missing; the local stack (deploy/local/postgres/init.sql) or the operator gives them LOGIN
-- and a password, and each service gets its own DSN (CLOSELOOP_DATABASE_<SERVICE>_URL).
-- reconciliation keeps its state in Kafka (changelog topics) and has no database role.
-- No role may write audit_log or audit_chain_head; provisioning and expiry append through audit_append.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['closeloop_intake', 'closeloop_connectors', 'closeloop_provisioning', 'closeloop_expiry'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another schema
            END;
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO closeloop_intake, closeloop_connectors, closeloop_provisioning,'
                   ' closeloop_expiry', current_schema());
END
$$;

-- request-intake: its ticket state and the webhook delivery ledger (it purges old deliveries).
GRANT SELECT, INSERT, UPDATE ON intake_ticket_state TO closeloop_intake;
GRANT SELECT, INSERT, UPDATE, DELETE ON intake_webhook_deliveries TO closeloop_intake;

-- connectors: the processed-records ledger (purged after its window), the state cache, the alias graph.
GRANT SELECT, INSERT, DELETE ON connector_processed_records TO closeloop_connectors;
GRANT SELECT, INSERT, UPDATE, DELETE ON connector_state_cache, identity_aliases TO closeloop_connectors;

-- provisioning and expiry both change the entitlement record through closeloop.record: processed inputs,
-- the outbox (their relays delete what they published), the record tables, audit reads and appends.
GRANT SELECT, INSERT ON processed_events TO closeloop_provisioning, closeloop_expiry;
GRANT SELECT, INSERT, DELETE ON outbox TO closeloop_provisioning, closeloop_expiry;
GRANT USAGE ON SEQUENCE outbox_id_seq TO closeloop_provisioning, closeloop_expiry;
GRANT SELECT, INSERT, UPDATE ON identities, principal_aliases, entitlements, observed_grants
    TO closeloop_provisioning, closeloop_expiry;
GRANT SELECT, INSERT ON entitlement_exceptions, recertifications TO closeloop_provisioning, closeloop_expiry;
GRANT USAGE ON SEQUENCE entitlement_exceptions_id_seq, recertifications_id_seq
    TO closeloop_provisioning, closeloop_expiry;
GRANT SELECT ON audit_log, audit_chain_head TO closeloop_provisioning, closeloop_expiry;
GRANT EXECUTE ON FUNCTION audit_append(jsonb) TO closeloop_provisioning, closeloop_expiry;

-- provisioning alone runs the executors.
GRANT SELECT, INSERT, UPDATE ON command_executions TO closeloop_provisioning;

-- expiry alone keeps notices, recertification stages, revoke follow-ups, triggers and owner flags.
GRANT SELECT, INSERT, UPDATE ON expiry_notices, expiry_recert_stages, expiry_revoke_followups, expiry_triggers,
    expiry_owner_flags TO closeloop_expiry;
GRANT USAGE ON SEQUENCE expiry_triggers_id_seq TO closeloop_expiry;
