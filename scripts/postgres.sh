# Sourced by test.sh: a throwaway PostgreSQL server for the store's tests, started on a free port in a temporary
# folder and stopped by postgres_stop. Exports CNNBENCH_TEST_POSTGRES_URL (a superuser's URL; the tests make and drop a
# database per test), or CNNBENCH_TEST_POSTGRES_SKIP saying why there is none (those tests then skip with that reason).
# As root with apt, Debian's postgresql is installed when missing; initdb refuses root, so the server runs as the
# package's user 'postgres'. The server's port and socket folder are in its own postgresql.conf, so that
# `postgres_ctl stop` and `postgres_ctl start` (a test's own server, stopped mid-run: tests/conftest.py) bring the
# same server down and up again.

postgres_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
    return 0
}

postgres_skip() {
    export CNNBENCH_TEST_POSTGRES_SKIP="$1"
    echo "setup: no PostgreSQL server for the tests: $1" >&2
}

postgres_start() {
    local bin port password as_pg=()
    bin="$(postgres_bindir)"
    if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's postgresql for the store's tests" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bin="$(postgres_bindir)"
    fi
    [ -n "$bin" ] || { postgres_skip "no initdb (Debian's postgresql; installed by scripts/test.sh as root)"; return 0; }
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || { postgres_skip "running as root and there is no user 'postgres' to run initdb as"; return 0; }
        as_pg=(runuser -u postgres --)
    fi
    CNNBENCH_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cnnbench-pg.XXXXXX")"
    port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    password="$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(12))')"
    echo "$password" > "$CNNBENCH_PG_DIR/password"
    [ "$(id -u)" = 0 ] && chown -R postgres "$CNNBENCH_PG_DIR"
    if ! "${as_pg[@]}" "$bin/initdb" -D "$CNNBENCH_PG_DIR/data" -U cnnbench --pwfile="$CNNBENCH_PG_DIR/password" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$CNNBENCH_PG_DIR/initdb.log" 2>&1; then
        postgres_skip "initdb failed: $(tail -n 1 "$CNNBENCH_PG_DIR/initdb.log")"; return 0
    fi
    # fsync off: a test server's data is thrown away, and durability is PostgreSQL's job, not these tests'
    printf "port = %s\nunix_socket_directories = '%s'\nlisten_addresses = '127.0.0.1'\nfsync = off\n" \
        "$port" "$CNNBENCH_PG_DIR" >> "$CNNBENCH_PG_DIR/data/postgresql.conf"
    if ! postgres_ctl start >/dev/null 2>&1; then
        postgres_skip "the server did not start: $(tail -n 1 "$CNNBENCH_PG_DIR/server.log" 2>/dev/null)"; return 0
    fi
    CNNBENCH_PG_STARTED=1
    export CNNBENCH_TEST_POSTGRES_URL="postgresql://cnnbench:$password@127.0.0.1:$port/postgres"
    echo "setup: PostgreSQL $("$bin/postgres" -V | awk '{print $3}') for the tests on 127.0.0.1:$port" >&2
}

# pg_ctl on the server in $CNNBENCH_PG_DIR as the user that owns it, waiting up to 60 s: postgres_ctl start,
# postgres_ctl stop -m immediate (its settings are in its postgresql.conf, so a stopped server starts as it was).
postgres_ctl() {
    local as_pg=()
    [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
    "${as_pg[@]}" "$(postgres_bindir)/pg_ctl" -D "$CNNBENCH_PG_DIR/data" -l "$CNNBENCH_PG_DIR/server.log" -w -t 60 "$@"
}

postgres_stop() {
    if [ -n "${CNNBENCH_PG_STARTED:-}" ]; then
        postgres_ctl -m fast stop >/dev/null 2>&1 || postgres_ctl -m immediate stop >/dev/null 2>&1
    fi
    if [ -n "${CNNBENCH_PG_DIR:-}" ]; then rm -rf "$CNNBENCH_PG_DIR"; fi
    unset CNNBENCH_PG_STARTED CNNBENCH_PG_DIR
    return 0
}
