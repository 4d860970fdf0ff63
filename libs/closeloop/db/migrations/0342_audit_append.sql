-- Audit rows are appended only through audit_append(entries jsonb), a SECURITY DEFINER function owned by
-- closeloop_audit_writer (NOLOGIN), the one role that may INSERT into audit_log and UPDATE
-- audit_chain_head. The function computes seq, prev_hash and hash itself (hash_version 2) and records
-- the login role that called it (appended_by), so a service role can neither write a row with a hash
-- of its choosing nor move the chain head, nor pass its rows off as another role's.
--
-- Version 2 hash (mirrored by closeloop.record.audit.chain_hash_v2):
--   sha256(utf8(jsonb_build_array(2, seq, recorded_at as YYYY-MM-DDTHH:MI:SS.ffffffZ, entity_type,
--          entity_key, action, actor, appended_by, cause_event_id, correlation_id, payload, prev_hash)::text))
-- jsonb's text form is deterministic, so the verifier recomputes it from the stored columns.
-- Rows written before this migration keep their version 1 hash (closeloop.record.audit.chain_hash_v1).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_audit_writer') THEN
        CREATE ROLE closeloop_audit_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another schema
END
$$;

ALTER TABLE audit_log
    ADD COLUMN hash_version smallint NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2)),
    ADD COLUMN appended_by  text;                           -- login role that called audit_append
-- Names this chain in signed checkpoints, so a checkpoint of another database or schema never applies.
ALTER TABLE audit_chain_head ADD COLUMN chain_id uuid NOT NULL DEFAULT gen_random_uuid();

CREATE FUNCTION audit_append(entries jsonb)
RETURNS TABLE (out_seq bigint, out_prev_hash text, out_hash text, out_appended_by text)
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    allowed  CONSTANT text[] := ARRAY['recorded_at', 'entity_type', 'entity_key', 'action', 'actor',
                                      'cause_event_id', 'correlation_id', 'payload'];
    strings  CONSTANT text[] := ARRAY['recorded_at', 'entity_type', 'entity_key', 'action', 'actor'];
    appender CONSTANT text := session_user;
    head_seq  bigint;
    head_hash text;
    entry     jsonb;
    at        timestamptz;
    digest    text;
BEGIN
    IF jsonb_typeof(entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'audit_append takes a JSON array of entries' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_chain_head AS h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_chain_head is missing its row' USING ERRCODE = 'data_exception';
    END IF;
    FOR entry IN SELECT e.value FROM jsonb_array_elements(entries) AS e LOOP
        IF jsonb_typeof(entry) IS DISTINCT FROM 'object'
           OR EXISTS (SELECT FROM jsonb_object_keys(entry) AS k WHERE k <> ALL (allowed))
           OR EXISTS (SELECT FROM unnest(strings) AS f WHERE jsonb_typeof(entry -> f) IS DISTINCT FROM 'string')
           OR coalesce(jsonb_typeof(entry -> 'cause_event_id'), 'null') NOT IN ('string', 'null')
           OR coalesce(jsonb_typeof(entry -> 'correlation_id'), 'null') NOT IN ('string', 'null')
           OR jsonb_typeof(entry -> 'payload') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'audit entry must be an object of exactly %: the chain fields are computed here', allowed
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        at := (entry ->> 'recorded_at')::timestamptz;
        IF NOT isfinite(at) THEN
            RAISE EXCEPTION 'audit entry recorded_at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        head_seq := head_seq + 1;
        digest := encode(sha256(convert_to(jsonb_build_array(
            2, head_seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            entry ->> 'entity_type', entry ->> 'entity_key', entry ->> 'action', entry ->> 'actor', appender,
            entry ->> 'cause_event_id', entry ->> 'correlation_id', entry -> 'payload', head_hash)::text, 'UTF8')), 'hex');
        INSERT INTO audit_log (seq, recorded_at, entity_type, entity_key, action, actor, cause_event_id,
                               correlation_id, payload, prev_hash, hash, hash_version, appended_by)
        VALUES (head_seq, at, entry ->> 'entity_type', entry ->> 'entity_key', entry ->> 'action', entry ->> 'actor',
                entry ->> 'cause_event_id', entry ->> 'correlation_id', entry -> 'payload', head_hash, digest, 2,
                appender);
        out_seq := head_seq;
        out_prev_hash := head_hash;
        out_hash := digest;
        out_appended_by := appender;
        RETURN NEXT;
        head_hash := digest;
    END LOOP;
    UPDATE audit_chain_head SET seq = head_seq, hash = head_hash WHERE id = 1;
END
$fn$;

-- Functions are executable by PUBLIC unless revoked; only the service roles get EXECUTE.
REVOKE ALL ON FUNCTION audit_append(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(jsonb) TO closeloop_app;

-- The writer reaches the tables only through the function; nobody else writes them.
GRANT SELECT, INSERT ON audit_log TO closeloop_audit_writer;
GRANT SELECT, UPDATE ON audit_chain_head TO closeloop_audit_writer;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log, audit_chain_head FROM closeloop_app;

-- A fixed search_path (pg_temp last) so a caller's temporary tables cannot stand in for the real ones;
-- then hand the function to its owner (ALTER OWNER needs membership and CREATE on the schema, for a moment).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_append(jsonb) SET search_path = pg_catalog, %I, pg_temp', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO closeloop_audit_writer', current_schema());
    IF NOT pg_has_role(current_user, 'closeloop_audit_writer', 'MEMBER') THEN
        EXECUTE format('GRANT closeloop_audit_writer TO %I', current_user);
    END IF;
    EXECUTE format('GRANT CREATE ON SCHEMA %I TO closeloop_audit_writer', current_schema());
    ALTER FUNCTION audit_append(jsonb) OWNER TO closeloop_audit_writer;
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM closeloop_audit_writer', current_schema());
END
$$;
