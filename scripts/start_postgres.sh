#!/usr/bin/env bash
# Installs (Debian `postgresql`, only if missing) and starts a local PostgreSQL server for the
# storage tests, makes a `fitroom` role that may create databases (each test module makes and drops
# its own), and prints the URL for FITROOM_TEST_POSTGRES_URL on stdout (everything else on stderr).
# Safe to run again: it only installs, creates or starts what is missing. Needs root or sudo.
#   export FITROOM_TEST_POSTGRES_URL=$(bash scripts/start_postgres.sh)
set -euo pipefail

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PORT=${FITROOM_PG_PORT:-5432}
PASSWORD=fitroom-test  # a throwaway server for tests, listening on localhost only

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres: installing Debian's postgresql" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi
VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)

# Debian's package makes a `main` cluster; a machine where it was removed gets one again.
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "$VERSION main"; then
    echo "postgres: creating cluster $VERSION/main" >&2
    $SUDO pg_createcluster "$VERSION" main --port "$PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    echo "postgres: starting cluster $VERSION/main" >&2
    # pg_ctlcluster runs the server as the postgres user, with or without systemd.
    $SUDO pg_ctlcluster "$VERSION" main start >&2
fi
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $3}')

for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || { echo "postgres: the server did not come up" >&2; exit 1; }

# As the postgres superuser: through sudo, or through su when already root (sudo may be missing).
psql_admin() {
    if [ -n "$SUDO" ]; then sudo -u postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"
    else su postgres -s /bin/sh -c "psql -p $PORT -v ON_ERROR_STOP=1 -qtA $(printf '%q ' "$@")"; fi
}
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'fitroom'")" != "1" ]; then
    psql_admin -c "CREATE ROLE fitroom LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'fitroom_test'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE fitroom_test OWNER fitroom" >&2
fi
echo "postgresql://fitroom:$PASSWORD@127.0.0.1:$PORT/fitroom_test"
