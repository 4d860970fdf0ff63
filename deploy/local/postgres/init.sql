-- Bootstrap of the local cluster, run by deploy/local/postgres.sh as the superuser on every `up`.
-- Idempotent. Passwords come from the environment (\getenv), never from the command line.
--   closeloop_migrator: owns database closeloop and schema public, CREATEROLE; runs migrations.
--   closeloop_app:      plain LOGIN role for the services; migrations GRANT it what it needs.
\set ON_ERROR_STOP on
\getenv migrator_password CLOSELOOP_PG_MIGRATOR_PASSWORD
\getenv app_password CLOSELOOP_PG_APP_PASSWORD
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

SELECT 'CREATE DATABASE closeloop OWNER closeloop_migrator ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'closeloop') \gexec
ALTER DATABASE closeloop OWNER TO closeloop_migrator;

\connect closeloop
SET client_min_messages = warning;
ALTER SCHEMA public OWNER TO closeloop_migrator;
