#!/usr/bin/env bash
# Make sure a Docker engine with the buildx and compose v2 plugins answers.
#
# - An engine that already answers `docker info` (and has both plugins) is left alone.
# - On Debian/Ubuntu as root, the engine comes from the distribution (docker.io),
#   and the two plugins from Debian 13's static binaries, fetched with apt into a
#   private directory (the system's sources are never changed). See ENGINE.md.
# - Anywhere else it stops with a message that says what is missing and what to do.
#
# Usage: scripts/ensure-engine.sh [--check]   (--check only reports, never installs)
set -euo pipefail

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'engine: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }
has_plugins() { docker buildx version >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers && has_plugins; then
    say "a Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null)); nothing to do"
    exit 0
fi

how_to="Install Docker Engine or Docker Desktop with the buildx and compose plugins \
(https://docs.docker.com/engine/install/), start it, and check that 'docker info', \
'docker buildx version' and 'docker compose version' answer."

if $check_only; then
    command -v docker >/dev/null 2>&1 || die "no 'docker' command found. $how_to"
    engine_answers || die "the 'docker' command is there but no engine answers 'docker info'. $how_to"
    die "the engine answers but the buildx or compose plugin is missing. $how_to"
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "no usable Docker engine, and this script can only install one on Debian/Ubuntu as root. $how_to"
fi

export DEBIAN_FRONTEND=noninteractive

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    say "installing the engine from the distribution (docker.io) and debootstrap"
    apt-get update -qq
    apt-get install -y -qq docker.io debootstrap >/dev/null
fi

plugin_dir=/usr/local/lib/docker/cli-plugins
if [[ ! -x $plugin_dir/docker-buildx || ! -x $plugin_dir/docker-compose ]]; then
    mirror=$("$(dirname "$0")/debian-mirror.sh") || die "install docker-buildx and docker-compose (Debian 13) by hand"
    work=$(mktemp -d)
    chmod 755 "$work"  # apt fetches as the _apt user
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    echo "deb [signed-by=$keyring] $mirror trixie main" >"$work/sources.list"
    apt_opts=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
              -o Debug::NoLocking=1)
    say "fetching the buildx and compose plugins from Debian 13 ($mirror)"
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work" && apt-get "${apt_opts[@]}" download docker-buildx docker-compose >/dev/null)
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
    mkdir -p "$plugin_dir"
    install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-buildx" "$plugin_dir/"
    install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/"
fi

if ! engine_answers; then
    say "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 1
    done
    engine_answers || die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
fi

has_plugins || die "the engine runs but 'docker buildx version' or 'docker compose version' fails"
say "ready: engine $(docker version --format '{{.Server.Version}}'), $(docker buildx version | head -n1), $(docker compose version)"
