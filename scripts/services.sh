#!/usr/bin/env bash
# Backing services for Labwright development and tests: PostgreSQL and RabbitMQ,
# listening on 127.0.0.1 only, with all data under a project-local state dir.
#
# Usage: scripts/services.sh {install|up|down|status|clean|durable on|off}
#
#   install  Install missing Debian packages (postgresql, rabbitmq-server,
#            pkg-config, libpq-dev and $LABWRIGHT_EXTRA_PACKAGES).
#   up       Start the services unless already running (PostgreSQL, RabbitMQ, and a
#            Docker engine: the machine's own if one answers, else a dockerd with its
#            data under $STATE/docker); apply the sandbox egress rules
#            (scripts/sandbox-egress, as root); create the role,
#            database and AMQP user on first use; write $STATE/env.
#   down     Stop both services (no error if they are not running).
#   status   Report whether each service is running (exit 0 if both are, 3 if not).
#   clean    down, then delete all service data, secrets and $STATE/env.
#   durable  on: PostgreSQL flushes WAL at every commit (fsync, synchronous_commit),
#            as a production server does; off: back to the fast dev/test default.
#            For benchmarks that must show both.
#
# Sourcing is also supported and exports the connection variables into the
# calling shell:  `. scripts/services.sh up`  (plain `. scripts/services.sh`
# means `up`, unless the sourcing script has positional parameters of its own:
# bash hands those on, so pass the command explicitly there). The work itself
# always runs in a child bash process.
#
# Settings (environment):
#   LABWRIGHT_STATE_DIR       state root (default: <repo>/.labwright)
#   LABWRIGHT_PG_PORT         PostgreSQL TCP port (default: 55432)
#   LABWRIGHT_AMQP_PORT       AMQP port (default: 55672)
#   LABWRIGHT_AMQP_DIST_PORT  Erlang distribution port (default: AMQP port + 10;
#                             rabbitmqctl uses the 10 ports after it)
#   LABWRIGHT_AMQP_NODE       RabbitMQ node name (default: labwright@localhost;
#                             must be unique among nodes on this machine's epmd)
#   LABWRIGHT_EXTRA_PACKAGES  extra Debian packages for `install`
#
# $STATE/env (mode 600) exports LABWRIGHT_DATABASE_URL,
# LABWRIGHT_TEST_DATABASE_URL, LABWRIGHT_AMQP_URL and LABWRIGHT_DOCKER_HOST (= DOCKER_HOST).

# ---------------------------------------------------------------------------
# Sourced: run the real work in a child process, then import the env file.
# ---------------------------------------------------------------------------
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    _lw_cmd="${1:-up}"
    case "$_lw_cmd" in
        install | up | down | status | clean) ;;
        *)
            echo "services.sh: unknown command '$_lw_cmd' (use install|up|down|status|clean)" >&2
            unset _lw_cmd
            return 2
            ;;
    esac
    _lw_state="${LABWRIGHT_STATE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.labwright}"
    if bash "${BASH_SOURCE[0]}" "$_lw_cmd"; then
        _lw_rc=0
    else
        _lw_rc=$?
    fi
    if [[ "$_lw_rc" -eq 0 && "$_lw_cmd" == up && -r "$_lw_state/env" ]]; then
        # shellcheck source=/dev/null
        . "$_lw_state/env"
    elif [[ "$_lw_cmd" == down || "$_lw_cmd" == clean ]]; then
        unset LABWRIGHT_DATABASE_URL LABWRIGHT_TEST_DATABASE_URL LABWRIGHT_AMQP_URL
    fi
    unset _lw_cmd _lw_state
    return "$_lw_rc"
fi

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
STATE="${LABWRIGHT_STATE_DIR:-$REPO_ROOT/.labwright}"

PG_PORT="${LABWRIGHT_PG_PORT:-55432}"
AMQP_PORT="${LABWRIGHT_AMQP_PORT:-55672}"
AMQP_DIST_PORT="${LABWRIGHT_AMQP_DIST_PORT:-$((AMQP_PORT + 10))}"

PG_DIR="$STATE/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCK="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
PG_DB=labwright
PG_ROLE=labwright

RMQ_DIR="$STATE/rabbitmq"
RMQ_NODE="${LABWRIGHT_AMQP_NODE:-labwright@localhost}"
RMQ_USER=labwright
RMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid"
RMQ_STARTUP_LOG="$RMQ_DIR/log/startup.log"
# Inside the node's Mnesia dir, so it disappears whenever the broker data does.
RMQ_PROVISIONED="$RMQ_DIR/mnesia/$RMQ_NODE/labwright-provisioned"

SECRETS="$STATE/secrets"
ENV_FILE="$STATE/env"

START_TIMEOUT=60
# libclang-dev (v4l's bindgen), libudev-dev (serialport) and libasound2-dev (alsa) build the
# host-agent's hardware drivers (crates/drivers).
REQUIRED_PACKAGES=(postgresql rabbitmq-server pkg-config libpq-dev docker.io git libclang-dev libudev-dev libasound2-dev)

DOCKER_DIR="$STATE/docker"
DOCKER_SOCK="$DOCKER_DIR/run/docker.sock"
DOCKER_PID_FILE="$DOCKER_DIR/run/dockerd.pid"
SYSTEM_DOCKER_SOCK=/var/run/docker.sock

log() { printf '[services] %s\n' "$*" >&2; }
die() {
    printf '[services] error: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

check_port() {
    local name=$1 value=$2
    if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
        die "$name must be a TCP port number, got '$value'"
    fi
}

# Can something accept a TCP connection on 127.0.0.1:$1?
tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialise concurrent invocations. The lock fd is closed for daemons we start.
take_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
}

# Print N random bytes as lowercase hex.
random_hex() {
    local value
    if command -v openssl >/dev/null 2>&1; then
        value="$(openssl rand -hex "$1")"
    else
        value="$(head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n')"
    fi
    [[ "$value" =~ ^[0-9a-f]+$ && ${#value} -eq $(($1 * 2)) ]] || die "could not generate random data"
    printf '%s\n' "$value"
}

# Read a secret, generating it on first use.
secret() {
    local file="$SECRETS/$1"
    mkdir -p "$SECRETS"
    chmod 700 "$SECRETS"
    if [[ ! -s "$file" ]]; then
        local value
        value="$(random_hex 16)"
        (umask 077 && printf '%s\n' "$value" >"$file.tmp")
        mv "$file.tmp" "$file"
    fi
    chmod 600 "$file"
    tr -d '\n' <"$file"
}

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------
cmd_install() {
    local -a wanted missing=() sudo=()
    local pkg info
    read -r -a wanted <<<"${REQUIRED_PACKAGES[*]} ${LABWRIGHT_EXTRA_PACKAGES:-}"
    for pkg in "${wanted[@]}"; do
        info="$(dpkg -s "$pkg" 2>/dev/null)" || info=""
        if [[ $'\n'"$info"$'\n' != *$'\nStatus: install ok installed\n'* ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "all packages present: ${wanted[*]}"
        return 0
    fi
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing; cannot install: ${missing[*]}"
        sudo=(sudo)
    fi
    log "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
PG_BIN=""
PG_OS_USER=""

pg_find_bin() {
    local dir best="" best_ver=-1 ver
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || continue
        ver="${dir#/usr/lib/postgresql/}"
        ver="${ver%%/*}"
        [[ "$ver" =~ ^[0-9]+$ ]] || continue
        if ((ver > best_ver)); then
            best_ver=$ver
            best=$dir
        fi
    done
    [[ -n "$best" ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin; run: $0 install"
    PG_BIN=$best
    if is_root; then
        PG_OS_USER=postgres
        id postgres >/dev/null 2>&1 || die "OS user 'postgres' is missing; run: $0 install"
    else
        PG_OS_USER="$(id -un)"
    fi
}

# Run a command as the OS user owning the cluster (postgres when we are root).
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# psql as the cluster superuser over the private unix socket (peer auth).
pg_psql() {
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U "$PG_OS_USER" "$@"
}

pg_running() {
    [[ -f "$PG_DATA/PG_VERSION" ]] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

pg_prepare_dirs() {
    mkdir -p "$PG_DIR" "$PG_SOCK"
    chmod 700 "$PG_DIR"
    if is_root; then
        chown -R postgres:postgres "$PG_DIR"
        runuser -u postgres -- test -w "$PG_DIR" ||
            die "user postgres cannot reach $PG_DIR (a parent directory is not searchable); choose another LABWRIGHT_STATE_DIR"
    fi
    local sock_path="$PG_SOCK/.s.PGSQL.$PG_PORT"
    ((${#sock_path} <= 107)) ||
        die "unix socket path too long for PostgreSQL (${#sock_path} > 107 bytes): $sock_path; use a shorter LABWRIGHT_STATE_DIR"
}

pg_initdb() {
    [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_OS_USER" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 || {
        tail -n 30 "$PG_DIR/initdb.log" >&2
        die "initdb failed (full log: $PG_DIR/initdb.log)"
    }
}

# Our settings live in a separate file included from postgresql.conf, rewritten
# on every `up`, so they take effect on the next start.
pg_write_config() {
    local sock_escaped=${PG_SOCK//\'/\'\'}
    as_pg tee "$PG_DATA/labwright.conf" >/dev/null <<EOF
# Managed by scripts/services.sh; rewritten on every 'up'.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock_escaped'
unix_socket_permissions = 0700
max_connections = 500
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
# Test-only durability trade-offs: a crash may lose or corrupt data.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if ! grep -q "^include_if_exists = 'labwright.conf'" "$PG_DATA/postgresql.conf"; then
        printf "\ninclude_if_exists = 'labwright.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
    fi
}

pg_start() {
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -W start >/dev/null 9>&-
}

pg_wait() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$PG_LOG" >&2 || true
            die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT within ${START_TIMEOUT}s (log: $PG_LOG)"
        fi
        if ! pg_running; then
            sleep 0.5
            if ! pg_running; then
                tail -n 30 "$PG_LOG" >&2 || true
                die "PostgreSQL exited during startup (log: $PG_LOG)"
            fi
        fi
        sleep 0.2
    done
}

pg_provision() {
    local password=$1
    # Values go in via stdin, never on a command line.
    pg_psql -d postgres <<EOF
\set pw '$password'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$PG_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE') \gexec
ALTER ROLE $PG_ROLE WITH LOGIN CREATEDB PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
ALTER DATABASE $PG_DB OWNER TO $PG_ROLE;
EOF
}

pg_up() {
    local password=$1
    pg_find_bin
    pg_prepare_dirs
    pg_initdb
    pg_write_config
    if pg_running; then
        local running_port
        running_port="$(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
        if [[ -n "$running_port" && "$running_port" != "$PG_PORT" ]]; then
            die "PostgreSQL is running on port $running_port, not $PG_PORT; run '$0 down' first to change ports"
        fi
        log "postgres: already running"
    elif tcp_open "$PG_PORT"; then
        die "port 127.0.0.1:$PG_PORT is in use by another process; set LABWRIGHT_PG_PORT"
    else
        pg_start
    fi
    pg_wait
    pg_provision "$password"
}

pg_down() {
    [[ -f "$PG_DATA/PG_VERSION" ]] || return 0
    pg_find_bin
    if pg_running; then
        log "postgres: stopping"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$START_TIMEOUT" stop >/dev/null
    else
        log "postgres: not running"
    fi
}

# ---------------------------------------------------------------------------
# RabbitMQ
# ---------------------------------------------------------------------------
RMQ_SBIN=""
RMQ_LAUNCHER_PID=""

rmq_find_bin() {
    # Use the real scripts, not the /usr/sbin wrappers: those `su` to the
    # rabbitmq user (resetting HOME, hence the Erlang cookie) when run as root.
    local dir
    for dir in /usr/lib/rabbitmq/bin /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin; do
        if [[ -x "$dir/rabbitmq-server" && -x "$dir/rabbitmqctl" ]]; then
            RMQ_SBIN=$dir
            return 0
        fi
    done
    die "RabbitMQ not found under /usr/lib/rabbitmq; run: $0 install"
}

# Environment for RabbitMQ scripts: our node, ports and files only, isolated
# from /etc/rabbitmq and from any system broker.
rmq_env_vars() {
    RMQ_ENV=(
        HOME="$RMQ_DIR/home"
        LANG=C.UTF-8 LC_ALL=C.UTF-8
        RABBITMQ_NODENAME="$RMQ_NODE"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$AMQP_PORT"
        RABBITMQ_DIST_PORT="$AMQP_DIST_PORT"
        RABBITMQ_CTL_DIST_PORT_MIN="$((AMQP_DIST_PORT + 1))"
        RABBITMQ_CTL_DIST_PORT_MAX="$((AMQP_DIST_PORT + 10))"
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        ERL_EPMD_ADDRESS=127.0.0.1
        ERL_CRASH_DUMP="$RMQ_DIR/log/erl_crash.dump"
        RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
        RABBITMQ_CONFIG_FILES="$RMQ_DIR/conf.d"
        RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
        RABBITMQ_LOG_BASE="$RMQ_DIR/log"
        RABBITMQ_PLUGINS_EXPAND_DIR="$RMQ_DIR/plugins-expand"
        RABBITMQ_MOTD_FILE="$RMQ_DIR/motd"
        RABBITMQ_PID_FILE="$RMQ_PID_FILE"
    )
}

# rabbitmqctl against our node; a hard time limit guards against hangs.
rmqctl() {
    local -a RMQ_ENV
    rmq_env_vars
    timeout "$((START_TIMEOUT + 30))" env "${RMQ_ENV[@]}" "$RMQ_SBIN/rabbitmqctl" -n "$RMQ_NODE" "$@"
}

rmq_pid() {
    local pid
    [[ -f "$RMQ_PID_FILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$RMQ_PID_FILE")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must be an Erlang VM using our HOME (the
    # node name is not on the command line; RabbitMQ sets it after boot).
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *beam* && "$cmdline" == *" -home $RMQ_DIR/home "* ]] || return 1
    printf '%s\n' "$pid"
}

# Is our node's short name already registered with the local epmd?
rmq_name_taken() {
    local names
    command -v epmd >/dev/null 2>&1 || return 1
    names="$(epmd -names 2>/dev/null)" || return 1
    [[ $'\n'"$names" == *$'\nname '"${RMQ_NODE%@*}"' at port '* ]]
}

rmq_running() {
    rmq_pid >/dev/null && tcp_open "$AMQP_PORT"
}

rmq_prepare_dirs() {
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log" "$RMQ_DIR/conf.d" "$RMQ_DIR/plugins-expand"
    chmod 700 "$RMQ_DIR" "$RMQ_DIR/home"
    local cookie="$RMQ_DIR/home/.erlang.cookie"
    if [[ ! -s "$cookie" ]]; then
        rm -f "$cookie"
        local value
        value="$(random_hex 20)"
        value="${value^^}"
        (umask 077 && printf '%s' "$value" >"$cookie")
    fi
    chmod 400 "$cookie"
    printf '[].\n' >"$RMQ_DIR/enabled_plugins"
    : >"$RMQ_DIR/rabbitmq-env.conf"
    : >"$RMQ_DIR/motd"
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# Managed by scripts/services.sh; rewritten on every 'up'.
# Listener address/port come from RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT.
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
}

rmq_start() {
    log "rabbitmq: starting node $RMQ_NODE on 127.0.0.1:$AMQP_PORT (dist port $AMQP_DIST_PORT)"
    rm -f "$RMQ_PID_FILE"
    # No systemd: run the broker in its own session, detached from this shell.
    local -a RMQ_ENV
    rmq_env_vars
    (
        cd "$RMQ_DIR"
        exec env "${RMQ_ENV[@]}" setsid nohup "$RMQ_SBIN/rabbitmq-server" \
            </dev/null >>"$RMQ_STARTUP_LOG" 2>&1 9>&-
    ) &
    RMQ_LAUNCHER_PID=$!
}

rmq_fail() {
    {
        echo "--- $RMQ_STARTUP_LOG (tail)"
        tail -n 30 "$RMQ_STARTUP_LOG" 2>/dev/null || true
        local f="$RMQ_DIR/log/$RMQ_NODE.log"
        if [[ -f "$f" ]]; then
            echo "--- $f (tail)"
            tail -n 30 "$f"
        fi
    } >&2
    die "$*"
}

rmq_wait() {
    local deadline=$((SECONDS + START_TIMEOUT)) remaining
    # First wait for the Erlang node to come up far enough to write its pid file
    # (rabbitmqctl fails at once if the node is not registered with epmd yet).
    until rmq_pid >/dev/null; do
        ((SECONDS < deadline)) || rmq_fail "RabbitMQ did not start within ${START_TIMEOUT}s"
        if [[ -n "$RMQ_LAUNCHER_PID" ]] && ! kill -0 "$RMQ_LAUNCHER_PID" 2>/dev/null; then
            rmq_fail "RabbitMQ exited during startup"
        fi
        sleep 0.3
    done
    remaining=$((deadline - SECONDS))
    ((remaining > 5)) || remaining=5
    rmqctl --timeout "$remaining" await_startup >/dev/null 2>&1 ||
        rmq_fail "RabbitMQ did not finish booting within ${START_TIMEOUT}s"
    until tcp_open "$AMQP_PORT"; do
        ((SECONDS < deadline)) ||
            rmq_fail "RabbitMQ is not accepting AMQP connections on 127.0.0.1:$AMQP_PORT (if LABWRIGHT_AMQP_PORT changed, run '$0 down' first)"
        sleep 0.2
    done
}

rmq_provision() {
    local password=$1 stamp
    stamp="$(printf '%s %s %s' "$RMQ_NODE" "$RMQ_USER" "$password" | sha256sum | cut -d' ' -f1)"
    if [[ -f "$RMQ_PROVISIONED" && "$(cat "$RMQ_PROVISIONED")" == "$stamp" ]]; then
        return 0
    fi
    log "rabbitmq: provisioning user $RMQ_USER"
    local users
    users="$(rmqctl --quiet list_users --no-table-headers 2>/dev/null | awk '{print $1}')" ||
        rmq_fail "rabbitmqctl list_users failed"
    if grep -qx "$RMQ_USER" <<<"$users"; then
        rmqctl --quiet change_password "$RMQ_USER" "$password" >/dev/null
    else
        rmqctl --quiet add_user "$RMQ_USER" "$password" >/dev/null
    fi
    rmqctl --quiet set_user_tags "$RMQ_USER" administrator >/dev/null
    rmqctl --quiet set_permissions -p / "$RMQ_USER" '.*' '.*' '.*' >/dev/null
    if grep -qx guest <<<"$users"; then
        rmqctl --quiet delete_user guest >/dev/null
    fi
    (umask 077 && printf '%s\n' "$stamp" >"$RMQ_PROVISIONED")
}

rmq_up() {
    local password=$1
    rmq_find_bin
    rmq_prepare_dirs
    if rmq_running; then
        # Our node's pid is alive and its AMQP listener (started last during
        # boot) accepts connections: nothing to wait for.
        log "rabbitmq: already running"
    else
        if rmq_pid >/dev/null; then
            log "rabbitmq: node process exists, waiting for it to finish booting"
        elif tcp_open "$AMQP_PORT"; then
            die "port 127.0.0.1:$AMQP_PORT is in use by another process; set LABWRIGHT_AMQP_PORT"
        elif rmq_name_taken; then
            die "an Erlang node named '${RMQ_NODE%@*}' is already registered with epmd (another state dir?); stop it or set LABWRIGHT_AMQP_NODE"
        else
            rmq_start
        fi
        rmq_wait
    fi
    rmq_provision "$password"
}

rmq_down() {
    local pid
    if ! pid="$(rmq_pid)"; then
        log "rabbitmq: not running"
        rm -f "$RMQ_PID_FILE"
        return 0
    fi
    rmq_find_bin
    log "rabbitmq: stopping (pid $pid)"
    # Not `stop <pid_file>`: that form waits forever if the RPC fails.
    if ! rmqctl --quiet --timeout 30 stop >/dev/null 2>&1; then
        log "rabbitmq: rabbitmqctl stop failed, sending SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "rabbitmq: still running after 30s, killing"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$RMQ_PID_FILE"
}

# ---------------------------------------------------------------------------
# Docker engine: the machine's own if one answers, else a dockerd of ours with its data under
# $STATE/docker (needs root: the engine creates bridges and cgroups).
# ---------------------------------------------------------------------------
DOCKER_URL=""

docker_answers() { docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

docker_pid() {
    local pid
    [[ -r "$DOCKER_PID_FILE" ]] || return 1
    pid="$(cat "$DOCKER_PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

docker_up() {
    if docker_pid >/dev/null && docker_answers "$DOCKER_SOCK"; then
        log "docker: already running (ours, $DOCKER_SOCK)"
        DOCKER_URL="unix://$DOCKER_SOCK"
        return 0
    fi
    if [[ -S "$SYSTEM_DOCKER_SOCK" ]] && docker_answers "$SYSTEM_DOCKER_SOCK"; then
        log "docker: using the machine's engine ($SYSTEM_DOCKER_SOCK)"
        DOCKER_URL="unix://$SYSTEM_DOCKER_SOCK"
        return 0
    fi
    is_root || die "starting a Docker engine needs root (or start the machine's docker service)"
    command -v dockerd >/dev/null || die "dockerd not found; run: $0 install"
    mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec" "$DOCKER_DIR/run"
    rm -f "$DOCKER_SOCK"
    log "docker: starting dockerd (data $DOCKER_DIR/data)"
    (
        cd /
        exec setsid dockerd --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
            --pidfile "$DOCKER_PID_FILE" --host "unix://$DOCKER_SOCK" \
            >"$DOCKER_DIR/dockerd.log" 2>&1 </dev/null 9>&-
    ) &
    local deadline=$((SECONDS + START_TIMEOUT))
    until docker_answers "$DOCKER_SOCK"; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$DOCKER_DIR/dockerd.log" >&2 || true
            die "dockerd did not start within ${START_TIMEOUT}s (log: $DOCKER_DIR/dockerd.log)"
        fi
        sleep 0.2
    done
    DOCKER_URL="unix://$DOCKER_SOCK"
}

docker_down() {
    local pid
    if ! pid="$(docker_pid)"; then
        log "docker: not running (ours)"
        return 0
    fi
    log "docker: stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

# The egress policy of sandbox and build networks (scripts/sandbox-egress): iptables rules on
# this machine, so only for an engine on it and only as root. Idempotent.
egress_up() {
    if ! is_root; then
        log "egress: not root, sandbox egress rules not applied (run: sudo $SCRIPT_DIR/sandbox-egress apply)"
        return 0
    fi
    "$SCRIPT_DIR/sandbox-egress" apply || die "could not apply the sandbox egress rules"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
write_env_file() {
    local pg_password=$1 amqp_password=$2 db_url
    db_url="postgres://$PG_ROLE:$pg_password@127.0.0.1:$PG_PORT/$PG_DB"
    (
        umask 077
        cat >"$ENV_FILE.tmp" <<EOF
# Generated by scripts/services.sh up; contains passwords.
export LABWRIGHT_DATABASE_URL=$db_url
export LABWRIGHT_TEST_DATABASE_URL=$db_url
export LABWRIGHT_AMQP_URL=amqp://$RMQ_USER:$amqp_password@127.0.0.1:$AMQP_PORT/%2f
export LABWRIGHT_DOCKER_HOST=$DOCKER_URL
export DOCKER_HOST=$DOCKER_URL
EOF
    )
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    chmod 600 "$ENV_FILE"
}

cmd_up() {
    take_lock
    chmod 755 "$STATE"
    local pg_password amqp_password
    pg_password="$(secret pg-password)"
    amqp_password="$(secret amqp-password)"
    pg_up "$pg_password"
    rmq_up "$amqp_password"
    docker_up
    egress_up
    write_env_file "$pg_password" "$amqp_password"
    cat >&2 <<EOF
[services] up:
  PostgreSQL  127.0.0.1:$PG_PORT  database=$PG_DB role=$PG_ROLE
  RabbitMQ    127.0.0.1:$AMQP_PORT  node=$RMQ_NODE user=$RMQ_USER vhost=/
  Docker      $DOCKER_URL
  state dir   $STATE
  env file    $ENV_FILE   (source it: . $ENV_FILE)
EOF
}

cmd_down() {
    [[ -d "$STATE" ]] || {
        log "nothing to stop ($STATE does not exist)"
        return 0
    }
    take_lock
    docker_down
    rmq_down
    pg_down
}

cmd_status() {
    local rc=0 pid
    if [[ -f "$PG_DATA/PG_VERSION" ]] && pg_find_bin && pg_running; then
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
            echo "postgres: running (127.0.0.1:$PG_PORT, data $PG_DATA)"
        else
            echo "postgres: running but not accepting connections on 127.0.0.1:$PG_PORT"
            rc=3
        fi
    else
        echo "postgres: stopped"
        rc=3
    fi
    if pid="$(rmq_pid)"; then
        if tcp_open "$AMQP_PORT"; then
            echo "rabbitmq: running (127.0.0.1:$AMQP_PORT, node $RMQ_NODE, pid $pid)"
        else
            echo "rabbitmq: starting or unhealthy (node $RMQ_NODE, pid $pid, port $AMQP_PORT closed)"
            rc=3
        fi
    else
        echo "rabbitmq: stopped"
        rc=3
    fi
    return "$rc"
}

cmd_clean() {
    cmd_down
    [[ -n "$STATE" && "$STATE" != / ]] || die "refusing to clean state dir '$STATE'"
    log "removing service data under $STATE"
    rm -rf "$PG_DIR" "$RMQ_DIR" "$DOCKER_DIR" "$SECRETS" "$ENV_FILE" "$ENV_FILE.tmp"
}

cmd_durable() {
    pg_find_bin && pg_running || die "postgres is not running (scripts/services.sh up)"
    case "${1:-}" in
        on) pg_psql -d postgres -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET synchronous_commit = on" ;;
        off) pg_psql -d postgres -c "ALTER SYSTEM RESET fsync" -c "ALTER SYSTEM RESET synchronous_commit" ;;
        *) die "usage: $0 durable on|off" ;;
    esac
    pg_psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
}

usage() {
    echo "usage: $0 {install|up|down|status|clean|durable on|off}" >&2
}

main() {
    check_port LABWRIGHT_PG_PORT "$PG_PORT"
    check_port LABWRIGHT_AMQP_PORT "$AMQP_PORT"
    check_port LABWRIGHT_AMQP_DIST_PORT "$AMQP_DIST_PORT"
    ((AMQP_DIST_PORT + 10 <= 65535)) || die "LABWRIGHT_AMQP_DIST_PORT must leave 10 ports above it for rabbitmqctl"
    case "${1:-}" in
        install) cmd_install ;;
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        clean) cmd_clean ;;
        durable) cmd_durable "${2:-}" ;;
        -h | --help | help) usage ;;
        *)
            usage
            exit 2
            ;;
    esac
}

main "$@"
