#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 (user postgres, database test):
# start the installed cluster when it is down, install one where it is missing.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if command -v pg_isready >/dev/null 2>&1 && ready; then
  :
else
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "installing the PostgreSQL server" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(pg_lsclusters --no-header | awk 'NR==1 {print $1}')
  if [[ -z "$version" ]]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    $sudo pg_createcluster "$version" main
  fi
  echo "starting PostgreSQL $version" >&2
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
# local connections without a password (the machines of this project use trust auth);
# make sure the test database exists. The last line printed is the URL for the tests.
psql_cmd=(psql -h 127.0.0.1 -U postgres -d postgres -tAc)
if ! "${psql_cmd[@]}" "select 1" >/dev/null 2>&1; then
  # TCP asks for a password: give the postgres role a known one through the local socket
  runuser -u postgres -- psql -tAc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
  export PGPASSWORD=postgres
fi
auth=""
[[ -n "${PGPASSWORD:-}" ]] && auth=":${PGPASSWORD}"
if [[ "$("${psql_cmd[@]}" "select 1 from pg_database where datname='test'")" != "1" ]]; then
  "${psql_cmd[@]}" "create database test" >/dev/null
fi
echo "postgresql+psycopg://postgres${auth}@127.0.0.1:5432/test"
