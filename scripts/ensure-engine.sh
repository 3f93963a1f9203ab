#!/usr/bin/env bash
# Make sure a current Docker engine with the buildx and compose v2 plugins answers.
#
# - An engine that already answers `docker info` (and has both plugins) is left alone,
#   whatever its version and image store (`containerlab doctor` says whether it is
#   older than the course supports).
# - On Debian/Ubuntu as root, it installs Docker Engine 26 as readers run it: Debian 13's
#   `docker.io` (dockerd 26.1) and `containerd` (1.7), with the containerd image store
#   turned on, plus Debian 13's static buildx and compose plugins. Their binaries need
#   only glibc >= 2.34, so they run on Debian 12 beside Debian 12's own `runc`, `tini`
#   and `iptables`. The .deb files are fetched with apt into a private folder and
#   unpacked with `dpkg -x`: the system's sources are never changed (ENGINE.md).
# - Anywhere else it stops with a message that says what is missing and what to do.
#
# Usage: scripts/ensure-engine.sh [--check]   (--check only reports, never installs)
# Settings: CL_IMAGE_STORE=containerd (default) or overlay2: the store a newly written
#   /etc/docker/daemon.json asks for (an existing daemon.json is never rewritten).
set -euo pipefail

check_only=false
[[ "${1:-}" == "--check" ]] && check_only=true

#: The oldest engine the course supports (README, containerlab doctor).
min_major=26
#: Where the engine's binaries go; before /usr/bin on PATH, so an older distribution engine is not used.
bin_dir=/usr/local/bin
plugin_dir=/usr/local/lib/docker/cli-plugins
store=${CL_IMAGE_STORE:-containerd}

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'engine: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }
has_plugins() { docker buildx version >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }
describe() {
    local driver kind
    driver=$(docker info --format '{{.Driver}}' 2>/dev/null)
    kind=$(docker info --format '{{range .DriverStatus}}{{if eq (index . 0) "driver-type"}}{{index . 1}}{{end}}{{end}}' 2>/dev/null)
    if [[ $kind == io.containerd.snapshotter.v1 ]]; then kind="the containerd image store ($driver snapshotter)"
    else kind="the legacy image store ($driver)"; fi
    printf 'engine %s, %s' "$(docker version --format '{{.Server.Version}}' 2>/dev/null)" "$kind"
}

# What the course needs beside any engine, on Debian/Ubuntu as root: debootstrap (the stand-in
# base images) and the local image registry 14.2 pushes to (docker-registry, run by the page).
if ! $check_only && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    tools=()
    for tool in debootstrap:debootstrap docker-registry:docker-registry; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || tools+=("${tool#*:}")
    done
    if ((${#tools[@]})); then
        say "installing ${tools[*]} from the distribution"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
    fi
fi

if command -v docker >/dev/null 2>&1 && engine_answers && has_plugins; then
    say "a Docker engine answers ($(describe)); nothing to do"
    exit 0
fi

how_to="Install Docker Engine $min_major or later, or Docker Desktop, with the buildx and compose plugins \
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

# The pieces Debian 12 has and that work beside the newer engine: runc (Debian 13's needs
# glibc 2.38), tini (the `--init` process), iptables (bridge networking).
needed=()
for tool in runc:runc tini-static:tini iptables:iptables; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || needed+=("${tool#*:}")
done
if ((${#needed[@]})); then
    say "installing ${needed[*]} from the distribution"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
fi

# The major version of the engine in $bin_dir, or nothing where none is installed there yet.
engine_major() {
    [[ -x $bin_dir/dockerd ]] || return 0
    "$bin_dir/dockerd" --version 2>/dev/null | sed -nE 's/^Docker version ([0-9]+)\..*/\1/p' || true
}

fetch_debian13() {  # fetch_debian13 FOLDER PACKAGE... : download and unpack Debian 13 packages into FOLDER/root
    local work=$1; shift
    local mirror
    mirror=$("$(dirname "$0")/debian-mirror.sh") || die "no Debian mirror in apt's sources; install Docker Engine $min_major by hand"
    chmod 755 "$work"  # apt fetches as the _apt user
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
    local apt_opts=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
                    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Debug::NoLocking=1)
    say "fetching $* from Debian 13 ($mirror)"
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work" && apt-get "${apt_opts[@]}" download "$@" >/dev/null 2>&1) || die "could not download $* from Debian 13"
    local deb
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
}

packages=()
major=$(engine_major)
[[ -n $major && $major -ge $min_major ]] || packages+=(docker.io containerd)
[[ -x $plugin_dir/docker-buildx && -x $plugin_dir/docker-compose ]] || packages+=(docker-buildx docker-compose)
if ((${#packages[@]})); then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    fetch_debian13 "$work" "${packages[@]}"
    if [[ -x $work/root/usr/sbin/dockerd ]]; then
        install -m 0755 "$work/root/usr/sbin/dockerd" "$work/root/usr/sbin/docker-proxy" \
            "$work/root/usr/bin/containerd" "$work/root/usr/bin/containerd-shim-runc-v2" "$work/root/usr/bin/ctr" "$bin_dir/"
        ln -sf "$(command -v tini-static)" "$bin_dir/docker-init"
        say "installed $("$bin_dir/dockerd" --version) and $("$bin_dir/containerd" --version | cut -d' ' -f1,3) in $bin_dir"
    fi
    if [[ -d $work/root/usr/libexec/docker/cli-plugins ]]; then
        mkdir -p "$plugin_dir"
        install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/"docker-* "$plugin_dir/"
    fi
fi

if [[ ! -e /etc/docker/daemon.json ]]; then
    mkdir -p /etc/docker
    case $store in
        containerd) echo '{"features": {"containerd-snapshotter": true}}' >/etc/docker/daemon.json ;;
        overlay2) echo '{"features": {"containerd-snapshotter": false}}' >/etc/docker/daemon.json ;;
        *) die "CL_IMAGE_STORE must be containerd or overlay2, not '$store'" ;;
    esac
    say "wrote /etc/docker/daemon.json: the $store image store"
fi

if ! engine_answers; then
    say "starting dockerd (log: /var/log/dockerd.log)"
    # dockerd starts and supervises its own containerd (found on PATH) when none is given.
    PATH=$bin_dir:$PATH nohup "$bin_dir/dockerd" >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        engine_answers && break
        sleep 1
    done
    engine_answers || die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
fi

has_plugins || die "the engine runs but 'docker buildx version' or 'docker compose version' fails"
say "ready: $(describe), $(docker buildx version | head -n1), $(docker compose version)"
