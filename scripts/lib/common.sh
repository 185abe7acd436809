# shellcheck shell=bash
# Shared helpers for scripts/test, scripts/demo and later benchmark scripts.
# Source it; it defines functions and a few variables and has no side effects of its own
# beyond putting the Swift and PostgreSQL tool directories on PATH.

P64_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
P64_PG_BIN="${P64_PG_BIN:-/usr/lib/postgresql/15/bin}"
P64_SWIFT_BIN="${P64_SWIFT_BIN:-/opt/swift/usr/bin}"
export PATH="$P64_SWIFT_BIN:$P64_PG_BIN:$PATH"

# Packages every pool64 script may need on a fresh Debian 12 machine.
P64_DEBIAN_PACKAGES=(
    postgresql-15 postgresql-client-15 libpq-dev libssl-dev pgbouncer
    python3 python3-psycopg python3-asyncpg python3-pytest python3-yaml python3-prometheus-client
    libpostgresql-jdbc-java default-jdk-headless
    tayga unbound iproute2 pkg-config prometheus-pgbouncer-exporter
    # systemd-analyze verify of deploy/systemd/pool64@.service (test_systemd_notify.py); installing starts nothing
    systemd
    # driver compatibility tests (tests/integration/test_drivers.py); pg8000 comes from PyPI through pip
    ruby-pg libdbd-pg-perl php-cli php-pgsql golang-go golang-github-jackc-pgx-v4-dev python3-pip
    # the container image test (tests/integration/test_container_image.py): podman builds docker/Dockerfile on base
    # images mmdebstrap makes from Debian packages; runc because crun rejects hybrid cgroup hierarchies; netavark
    # and iptables for podman networks
    podman buildah mmdebstrap debian-archive-keyring runc netavark aardvark-dns iptables uidmap
)

p64_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
p64_die() { p64_log "error: $*"; exit 1; }

# p64_install_missing PKG... — apt-get install only the packages dpkg does not report as installed.
# Runs `apt-get update` at most once per process.
p64_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        p64_die "missing packages (${missing[*]}) and not root; install them first"
    fi
    p64_log "installing missing packages: ${missing[*]}"
    if [[ -z "${P64_APT_UPDATED:-}" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
        P64_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    # The postgresql-15 package starts a cluster on 5432 on a fresh install; tests never use it,
    # but leave it alone: it is the machine's, not ours.
}

# p64_port_free PORT — true when nothing listens on PORT (TCP, any address).
p64_port_free() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -z "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

# p64_free_port — print a TCP port in 20000..59999 that nothing listens on.
p64_free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if p64_port_free "$port"; then
            echo "$port"
            return 0
        fi
    done
    p64_die "no free TCP port found"
}

# p64_pg_start DIR PORT — initdb a throwaway PostgreSQL 15 cluster in DIR (created, owned by postgres),
# listening on loopback only (127.0.0.1 and ::1) and a Unix socket in DIR, with role app/app-secret
# and database appdb. Sets P64_PG_DIR, P64_PG_PORT, P64_PG_SOCKET_DIR and P64_DATABASE_URL.
p64_pg_start() {
    local dir=$1 port=$2 listen="127.0.0.1"
    if [[ -n "$(ip -6 addr show dev lo 2>/dev/null | grep '::1')" ]]; then
        listen="127.0.0.1,::1"
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    p64_as_postgres "$dir" initdb -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; p64_die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$dir'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
EOF
    p64_as_postgres "$dir" pg_ctl -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 start >/dev/null ||
        { cat "$dir/postgresql.log" >&2; p64_die "PostgreSQL failed to start"; }
    p64_as_postgres "$dir" psql -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'EOF' >/dev/null
CREATE ROLE app LOGIN CREATEDB PASSWORD 'app-secret';
CREATE DATABASE appdb OWNER app;
EOF
    P64_PG_DIR=$dir
    P64_PG_PORT=$port
    P64_PG_SOCKET_DIR=$dir
    P64_DATABASE_URL="postgresql://app:app-secret@127.0.0.1:$port/appdb"
    export P64_PG_DIR P64_PG_PORT P64_PG_SOCKET_DIR P64_DATABASE_URL
}

# p64_pg_stop DIR — stop a cluster started by p64_pg_start (immediate: it is throwaway).
p64_pg_stop() {
    local dir=$1
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        p64_as_postgres "$dir" pg_ctl -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
}

# p64_as_postgres DIR CMD... — run CMD as the postgres user with DIR as working directory
# (postgres cannot read root's working directories).
p64_as_postgres() {
    local dir=$1
    shift
    (cd "$dir" && runuser -u postgres -- env PATH="$PATH" "$@")
}

# p64_wait_for_sql URL TIMEOUT_SECONDS [PID] — wait until `psql URL -c 'SELECT 1'` succeeds.
# Fails early when PID (the server being waited for) has exited.
p64_wait_for_sql() {
    local url=$1 timeout=$2 pid=${3:-} deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if PGCONNECT_TIMEOUT=3 psql -X -At -c 'SELECT 1' "$url" </dev/null >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.3
    done
    return 1
}

# p64_stop_pid PID [GRACE_SECONDS] — SIGTERM, then SIGKILL after the grace period.
p64_stop_pid() {
    local pid=$1 grace=${2:-10} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    p64_log "pid $pid did not stop after ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
