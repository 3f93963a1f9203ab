#!/bin/sh
# Entrypoint of the postgres:17 stand-in: create the cluster on first start,
# then run the server as the postgres user.
set -eu

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres stand-in: set POSTGRES_PASSWORD (for example: docker run -e POSTGRES_PASSWORD=...)" >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"

    # A private server on the Unix socket only, while the database is set up.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "$db" != postgres ]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            -c "CREATE DATABASE \"$db\"" >/dev/null
    fi
    if [ -d /docker-entrypoint-initdb.d ] && [ ! -r /docker-entrypoint-initdb.d ]; then
        echo "postgres stand-in: /docker-entrypoint-initdb.d is not readable by the postgres user; its scripts are skipped" >&2
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sql) echo "postgres stand-in: running $script"
                   psql -v ON_ERROR_STOP=1 --username="$user" --dbname="$db" -f "$script" >/dev/null ;;
            *.sh)  echo "postgres stand-in: running $script"
                   . "$script" ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres stand-in: database '$db' for user '$user' is ready"
fi

exec "$@"
