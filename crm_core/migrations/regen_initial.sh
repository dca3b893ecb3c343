#!/usr/bin/env bash
# Development only, before the first release: regenerate revision 0001 from the models.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
mv crm_core/migrations/versions/0002_search_index.py "$tmp/"
rm -f crm_core/migrations/versions/0001_initial_schema.py
CRM_DATABASE_URL="sqlite:///$tmp/gen.sqlite3" .venv/bin/alembic revision --autogenerate --rev-id 0001 -m "initial schema" >/dev/null
mv "$tmp/0002_search_index.py" crm_core/migrations/versions/
.venv/bin/ruff format -q crm_core/migrations/versions
.venv/bin/ruff check -q --fix --unsafe-fixes crm_core/migrations/versions || true
rm -rf "$tmp"
