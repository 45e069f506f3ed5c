#!/usr/bin/env bash
# Installs (Debian `redis-server`, only if missing) and starts a local Redis server for the rooms'
# cross-process tests, and prints its URL for FITROOM_TEST_REDIS_URL on stdout (everything else on
# stderr). Safe to run again: when a server already answers on the port it is only reported.
# Listens on 127.0.0.1 only, no persistence (a throwaway server for tests). Needs root or sudo to install.
#   export FITROOM_TEST_REDIS_URL=$(bash scripts/start_redis.sh)
set -euo pipefail

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PORT=${FITROOM_REDIS_PORT:-6379}
URL="redis://127.0.0.1:$PORT/0"

if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis: installing Debian's redis-server" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >&2
fi

ping_redis() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]
    else  # bash's /dev/tcp, should redis-cli be missing
        { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
        printf 'PING\r\n' >&3
        local answer; read -r -t 2 answer <&3 || true; exec 3<&- 3>&-
        [ "${answer%$'\r'}" = "+PONG" ]
    fi
}

if ping_redis; then
    echo "redis: a server already answers on 127.0.0.1:$PORT" >&2
else
    # Not Debian's service (systemd may be absent, e.g. in containers): our own daemon, its files in
    # a folder of its own, no persistence.
    DIR=${FITROOM_REDIS_DIR:-${TMPDIR:-/tmp}/fitroom-redis-$PORT}
    mkdir -p "$DIR"
    echo "redis: starting redis-server on 127.0.0.1:$PORT (files in $DIR)" >&2
    redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" \
        --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" >&2
    for _ in $(seq 1 50); do
        ping_redis && break
        sleep 0.1
    done
    ping_redis || { echo "redis: the server did not come up (see $DIR/redis.log)" >&2; exit 1; }
fi
echo "$URL"
