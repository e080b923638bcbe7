#!/bin/sh
# PostgreSQL's image runs this once, on the first start with an empty data volume: a role and a
# database of lobe-quota's own beside LobeHub's (lobe-quota creates its tables on start).
# The names can be changed for a shared server; the password comes from the environment.
set -eu
role="${LOBE_QUOTA_DB_USER:-lobe_quota}"
database="${LOBE_QUOTA_DB_NAME:-lobe_quota}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v role="$role" -v database="$database" -v password="$LOBE_QUOTA_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
SQL
