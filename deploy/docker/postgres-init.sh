#!/bin/sh
# Creates the least-privilege service role; migrations (run by the `init` job) grant it what it needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$CLOSELOOP_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE closeloop_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
