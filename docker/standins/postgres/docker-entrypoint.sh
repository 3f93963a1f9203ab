#!/usr/bin/env bash
# Entrypoint of the postgres:17 stand-in. It reads the variables the official
# image's entrypoint reads, with the same defaults (docker/standins/official-facts.toml):
#
#   POSTGRES_PASSWORD       the superuser's password; needed on the first start
#                           unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER           the superuser (default: postgres)
#   POSTGRES_DB             a database made on the first start (default: POSTGRES_USER)
#   POSTGRES_INITDB_ARGS    more arguments for initdb, e.g. "--data-checksums"
#   POSTGRES_INITDB_WALDIR  where initdb puts the write-ahead log
#   POSTGRES_HOST_AUTH_METHOD  how clients on the network log in (default: the
#                           server's password_encryption, scram-sha-256)
#   PGDATA                  the data folder (image: /var/lib/postgresql/data)
#
# The first four can come from a file instead, named by NAME_FILE (Docker and
# compose secrets); setting both NAME and NAME_FILE is an error. On the first
# start (no PG_VERSION in PGDATA) it runs initdb, creates the database, then the
# files in /docker-entrypoint-initdb.d in name order: *.sh (run when executable,
# else sourced: they can call docker_process_sql), *.sql, *.sql.gz, *.sql.xz and
# *.sql.zst. Started as root, it gives PGDATA to the postgres user and runs as it.
#
# No `set -u`: init scripts that are sourced run in this shell and may use unset variables.
set -Eeo pipefail

INITDB_D=/docker-entrypoint-initdb.d

say() { printf 'postgres stand-in: %s\n' "$*"; }
fail() { printf 'postgres stand-in: error: %s\n' "$*" >&2; exit 1; }

# from_env_or_file NAME [DEFAULT]: export NAME from the environment, else from the
# file that NAME_FILE names, else DEFAULT; NAME_FILE is unset afterwards.
from_env_or_file() {
    local name=$1 default=${2:-}
    local file_name="${name}_FILE"
    local value=${!name:-} file=${!file_name:-}
    if [[ -n $value && -n $file ]]; then
        fail "both $name and $file_name are set; set only one of them"
    fi
    if [[ -n $file ]]; then
        [[ -r $file ]] || fail "$file_name names $file, which cannot be read"
        value=$(<"$file")
    elif [[ -z $value ]]; then
        value=$default
    fi
    export "$name=$value"
    unset "$file_name"
}

read_settings() {
    from_env_or_file POSTGRES_PASSWORD
    from_env_or_file POSTGRES_USER postgres
    from_env_or_file POSTGRES_DB "$POSTGRES_USER"
    from_env_or_file POSTGRES_INITDB_ARGS
    export POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-}
}

# Make PGDATA, the socket folder and the WAL folder; as root, give them to postgres.
# chmod may fail on some mounted folders; PostgreSQL then says what is wrong itself.
prepare_folders() {
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA" || true
    mkdir -p /var/run/postgresql || true
    chmod 3775 /var/run/postgresql || true
    if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
        mkdir -p "$POSTGRES_INITDB_WALDIR"
        chmod 700 "$POSTGRES_INITDB_WALDIR"
    fi
    if [[ $(id -u) == 0 ]]; then
        local folder
        for folder in "$PGDATA" /var/run/postgresql ${POSTGRES_INITDB_WALDIR:+"$POSTGRES_INITDB_WALDIR"}; do
            find "$folder" ! -user postgres -exec chown postgres '{}' +
        done
    fi
}

# initdb wants the current uid in /etc/passwd: with `docker run --user 1234` it is
# not, and nss_wrapper lends it a passwd entry for the time initdb runs.
lend_passwd_entry() {
    getent passwd "$(id -u)" > /dev/null && return 0
    local library
    for library in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
        [[ -s $library ]] || continue
        NSS_WRAPPER_PASSWD=$(mktemp)
        NSS_WRAPPER_GROUP=$(mktemp)
        printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
        printf 'postgres:x:%s:\n' "$(id -g)" > "$NSS_WRAPPER_GROUP"
        export LD_PRELOAD=$library NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
        return 0
    done
}

return_passwd_entry() {
    if [[ ${LD_PRELOAD:-} == */libnss_wrapper.so ]]; then
        rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
        unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
    fi
}

# docker_process_sql [psql arguments]: run SQL (from -f FILE or stdin) as the
# superuser in POSTGRES_DB over the local socket; stops at the first error.
# Init scripts that are sourced can call it (the official entrypoint's name).
docker_process_sql() {
    local psql_args=(-v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [[ -n $POSTGRES_DB ]]; then
        psql_args+=(--dbname "$POSTGRES_DB")
    fi
    PGHOST='' PGHOSTADDR='' psql "${psql_args[@]}" "$@"
}

run_init_files() {
    local file
    for file in "$INITDB_D"/*; do
        [[ -e $file ]] || continue
        case $file in
            *.sh)
                if [[ -x $file ]]; then
                    say "running $file"
                    "$file"
                else
                    say "sourcing $file"
                    # shellcheck disable=SC1090
                    . "$file"
                fi
                ;;
            *.sql) say "running $file"; docker_process_sql -f "$file" ;;
            *.sql.gz) say "running $file"; gzip -dc "$file" | docker_process_sql ;;
            *.sql.xz) say "running $file"; xz -dc "$file" | docker_process_sql ;;
            *.sql.zst) say "running $file"; zstd -dc "$file" | docker_process_sql ;;
            *) say "ignoring $file (not *.sh, *.sql, *.sql.gz, *.sql.xz or *.sql.zst)" ;;
        esac
    done
}

# initialise postgres [server options]: a new cluster in PGDATA, set up through a
# private server that listens on the Unix socket only.
initialise() {
    shift
    if [[ -z $POSTGRES_PASSWORD && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
        cat >&2 <<'EOF'
postgres stand-in: error: the database is not initialised and no superuser
password is set. Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), e.g.
`docker run -e POSTGRES_PASSWORD=...`. POSTGRES_HOST_AUTH_METHOD=trust lets
everyone in without a password instead; do not use that outside a lab.
EOF
        exit 1
    fi
    if [[ $POSTGRES_HOST_AUTH_METHOD == trust ]]; then
        say "warning: POSTGRES_HOST_AUTH_METHOD=trust lets any client that reaches port 5432 in as any user, without a password" >&2
    fi
    # Fail now, not half-way, when the scripts folder cannot be read.
    ls "$INITDB_D" > /dev/null

    local initdb_args=()
    # POSTGRES_INITDB_ARGS is shell words: quotes group, as in `docker run -e`.
    eval "initdb_args=($POSTGRES_INITDB_ARGS)"
    if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
        initdb_args=(--waldir "$POSTGRES_INITDB_WALDIR" "${initdb_args[@]}")
    fi
    lend_passwd_entry
    # initdb refuses an empty password file; a lone newline is an empty password.
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${initdb_args[@]}"
    return_passwd_entry

    local method=$POSTGRES_HOST_AUTH_METHOD
    if [[ -z $method ]]; then
        method=$(postgres -C password_encryption "$@")
    fi
    printf '\nhost all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"

    # psql needs the password when POSTGRES_INITDB_ARGS asked for it on the socket too.
    export PGPASSWORD=${PGPASSWORD:-$POSTGRES_PASSWORD}
    local server_options
    server_options=$(printf '%q ' "$@" -c "listen_addresses=" -p "${PGPORT:-5432}")
    NOTIFY_SOCKET='' PGUSER=${PGUSER:-$POSTGRES_USER} pg_ctl -D "$PGDATA" -o "$server_options" -w start

    local exists
    exists=$(POSTGRES_DB='' docker_process_sql --dbname postgres --tuples-only --no-align \
        --set db="$POSTGRES_DB" <<< "SELECT 1 FROM pg_database WHERE datname = :'db'")
    if [[ -z $exists ]]; then
        POSTGRES_DB='' docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db"'
    fi
    run_init_files

    PGUSER=${PGUSER:-postgres} pg_ctl -D "$PGDATA" -m fast -w stop
    unset PGPASSWORD
    say "database '$POSTGRES_DB' of user '$POSTGRES_USER' is ready; starting the server"
}

# Options that make postgres print something and stop: no set-up for those.
only_asks() {
    local arg
    for arg; do
        case $arg in
            '-?' | --help | --describe-config | -V | --version) return 0 ;;
        esac
    done
    return 1
}

# `docker run postgres:17 -c shared_buffers=256MB`: options alone mean the server.
if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
fi

if [[ ${1:-} == postgres ]] && ! only_asks "$@"; then
    read_settings
    prepare_folders
    if [[ $(id -u) == 0 ]]; then
        exec gosu postgres "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ -s $PGDATA/PG_VERSION ]]; then
        say "PGDATA ($PGDATA) already holds a database; no initialisation"
    else
        initialise "$@"
    fi
fi

exec "$@"
