-- Bootstrap of the local cluster, run by deploy/local/postgres.sh as the superuser on every `up`.
-- Idempotent. Passwords come from the environment (\getenv), never from the command line.
--   closeloop_migrator: owns database closeloop and schema public, CREATEROLE; runs migrations.
--   closeloop_app:      plain LOGIN role any service may use; migrations GRANT it what they all need.
--   closeloop_intake, closeloop_connectors, closeloop_provisioning, closeloop_expiry: one LOGIN role per
--                       service; migration 0343 grants each only what its service does.
\set ON_ERROR_STOP on
\getenv migrator_password CLOSELOOP_PG_MIGRATOR_PASSWORD
\getenv app_password CLOSELOOP_PG_APP_PASSWORD
\getenv intake_password CLOSELOOP_PG_INTAKE_PASSWORD
\getenv connectors_password CLOSELOOP_PG_CONNECTORS_PASSWORD
\getenv provisioning_password CLOSELOOP_PG_PROVISIONING_PASSWORD
\getenv expiry_password CLOSELOOP_PG_EXPIRY_PASSWORD
SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';

SELECT 'CREATE ROLE closeloop_migrator'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_migrator') \gexec
ALTER ROLE closeloop_migrator WITH LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'migrator_password';

SELECT 'CREATE ROLE closeloop_app'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'closeloop_app') \gexec
ALTER ROLE closeloop_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';

-- One LOGIN role per service (passwords from the environment, like the others).
SELECT format('CREATE ROLE %I', name)
FROM (VALUES ('closeloop_intake'), ('closeloop_connectors'), ('closeloop_provisioning'), ('closeloop_expiry')) AS r(name)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r.name) \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              name, password)
FROM (VALUES ('closeloop_intake', :'intake_password'), ('closeloop_connectors', :'connectors_password'),
             ('closeloop_provisioning', :'provisioning_password'), ('closeloop_expiry', :'expiry_password'))
     AS r(name, password) \gexec

SELECT 'CREATE DATABASE closeloop OWNER closeloop_migrator ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'closeloop') \gexec
ALTER DATABASE closeloop OWNER TO closeloop_migrator;

\connect closeloop
SET client_min_messages = warning;
ALTER SCHEMA public OWNER TO closeloop_migrator;
