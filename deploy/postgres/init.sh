#!/bin/sh
# PostgreSQL's first start (compose.yaml mounts this into /docker-entrypoint-initdb.d): the
# role provisor connects as and its database, both named by the URL provisor reads
# (postgresql://ROLE:PASSWORD@HOST/DATABASE). The role is no superuser and cannot bypass
# row-level security, so the tenants' policies apply to it (docs/security.md).
set -eu
url=$(cat "${DATABASE_URL_FILE:-/run/secrets/database_url}")
rest=${url#*://}
credentials=${rest%%@*}
role=${credentials%%:*}
password=${credentials#*:}
database=${rest##*/}
database=${database%%\?*}
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v role="$role" -v password="$password" -v database="$database" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
SQL
