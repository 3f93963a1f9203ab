#!/usr/bin/env bash
# The grading engine: a second, dedicated dockerd whose builds and containers
# run under a limited cgroup, on a size-capped file system, behind their own
# bridge. The main Docker engine is never stopped, restarted or reconfigured.
#
# Usage (as root, on Linux):
#   scripts/grading-engine.sh start    start it (or say it already runs), load the base images
#   scripts/grading-engine.sh stop     stop it, unmount its disk, remove its bridge, rules and cgroups
#   scripts/grading-engine.sh status   say whether it runs, its limits, and whether the main engine is intact
#   scripts/grading-engine.sh stop --purge   also delete its disk image (build cache, loaded images)
#
# Settings (environment variables, defaults in brackets):
#   CL_GRADING_NAME      [containerlab-grading] names the socket, cgroup, state and log
#   CL_GRADING_MEMORY_MB [2048]  memory for all builds and containers of the engine together
#   CL_GRADING_PIDS      [2048]  processes for all of them together
#   CL_GRADING_CPUS      [cores - 0.5, at least 0.5] CPU time for all of them together
#   CL_GRADING_DISK_GB   [20]    size of the file system holding images, layers and build cache
#   CL_GRADING_LINK      [10.213.255.0/30] the link between this host and the engine's network namespace
#   CL_GRADING_SUBNET    [10.213.0.1/24] address of the engine's own bridge (builds' network), in its namespace
#   CL_GRADING_POOL      [10.214.0.0/16] where its user-defined networks get their subnets (/24 each)
#   CL_GRADING_IMAGES    [python:3.13-slim python:3.13 postgres:17] base images copied from the main engine
#   CL_MAIN_HOST         [unix:///var/run/docker.sock] the main engine, only ever read
#   CL_GRADING_STORE     [containerd] its image store: containerd (the containerd image store, as new
#                        installs have it) or overlay2 (the legacy store of engines upgraded from older ones)
#   CL_GRADING_CONTEXT   [grading, or NAME for another name] the docker context made for it
#                        (`containerlab grade --engine grading` and `docker --context grading` use it)
#
# Why each piece (ENGINE.md, "Limits on builds of untrusted Dockerfiles"):
# - The engine's built-in BuildKit ignores per-build limits, but every RUN step
#   runs in a cgroup below the daemon's --cgroup-parent: limiting that parent
#   limits every build and container of this daemon.
#   dockerd and its containerd themselves stay outside that cgroup, so that a
#   fork bomb that uses up the process limit cannot starve the daemon that
#   has to stop it. Each RUN step gets a cgroup of its own below it
#   (/NAME/buildkit/<step>), each container /NAME/<id>.
# - A data-root on a loop-mounted ext4 image of fixed size: a disk bomb fills
#   that file system only, and fails for this engine alone.
# - Its own network namespace (entered with nsenter; mounts and cgroups stay the
#   host's), with its own bridge and iptables: the daemon cannot see docker0 or
#   the main engine's iptables chains. Seen here on 2026-12-01: a second dockerd
#   on the host's network, restarted on a data-root it had used before, deleted
#   the main engine's docker0 (as a dockerd with --bridge=none always does).
#   The host side gets a veth, a NAT rule and a few filter rules in chains of its own.
set -euo pipefail

name=${CL_GRADING_NAME:-containerlab-grading}
sock=/run/$name.sock
host=unix://$sock
exec_root=/run/$name
pidfile=/run/$name.pid
state=/var/lib/$name
disk=$state/disk.img
mnt=$state/root
log=/var/log/$name.log
# Interface names have at most 15 characters: a short hash of the name.
hash=$(printf '%s' "$name" | md5sum | cut -c1-8)
netns=$name
bridge=clg${hash}b    # inside the namespace
veth_host=clg${hash}h
veth_ns=clg${hash}n
chain=CLG-$hash
link=${CL_GRADING_LINK:-10.213.255.0/30}
subnet=${CL_GRADING_SUBNET:-10.213.0.1/24}
pool=${CL_GRADING_POOL:-10.214.0.0/16}
main_host=${CL_MAIN_HOST:-unix:///var/run/docker.sock}
images=${CL_GRADING_IMAGES:-python:3.13-slim python:3.13 postgres:17}
if [[ $name == containerlab-grading ]]; then context=${CL_GRADING_CONTEXT:-grading}; else context=${CL_GRADING_CONTEXT:-$name}; fi
store=${CL_GRADING_STORE:-containerd}
case $store in
    containerd) snapshotter=true ;;
    overlay2) snapshotter=false ;;
    *) printf 'grading engine: CL_GRADING_STORE must be containerd or overlay2, not %s\n' "$store" >&2; exit 2 ;;
esac
memory_mb=${CL_GRADING_MEMORY_MB:-2048}
pids=${CL_GRADING_PIDS:-2048}
disk_gb=${CL_GRADING_DISK_GB:-20}
if [[ -z ${CL_GRADING_CPUS:-} ]]; then
    CL_GRADING_CPUS=$(awk -v n="$(nproc)" 'BEGIN { c = n - 0.5; if (c < 0.5) c = 0.5; print c }')
fi
cpus=$CL_GRADING_CPUS

say() { printf 'grading engine: %s\n' "$*" >&2; }
die() { printf 'grading engine: %s\n' "$1" >&2; exit "${2:-1}"; }

# ----------------------------------------------------------------- can it run here?

cgroup_version() {
    if [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then echo 2
    elif [[ -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/pids && -d /sys/fs/cgroup/cpu ]]; then echo 1
    else echo none; fi
}

# Print why the grading engine cannot run on this machine, or nothing when it can.
cannot_run() {
    [[ $(uname -s) == Linux ]] || { echo "it needs Linux (this is $(uname -s))"; return; }
    [[ $(id -u) -eq 0 ]] || { echo "it needs root (it makes a cgroup, a loop mount and a bridge)"; return; }
    [[ $(cgroup_version) != none ]] || { echo "no memory, pids and cpu cgroup controllers are mounted"; return; }
    local tool
    for tool in dockerd docker ip nsenter mkfs.ext4 losetup mount iptables; do
        command -v "$tool" >/dev/null 2>&1 || { echo "the command '$tool' is missing"; return; }
    done
}

# ----------------------------------------------------------------- the main engine, left as found

main_docker() { docker -H "$main_host" "$@"; }

# docker0 as it is now: "index address" (empty when there is no docker0).
docker0_state() {
    ip -o link show docker0 2>/dev/null | cut -d: -f1 | tr -d ' ' | tr '\n' ' '
    ip -o -4 addr show dev docker0 2>/dev/null | awk '{print $4}' | head -n1
}

main_engine_answers() { main_docker info >/dev/null 2>&1; }

# Refuse to go on when the main engine's bridge changed while this script ran.
check_docker0() {
    local before=$1 now
    now=$(docker0_state)
    if [[ "$now" != "$before" ]]; then
        say "the main engine's docker0 changed (before: '${before:-none}', now: '${now:-none}')"
        return 1
    fi
}

# ----------------------------------------------------------------- pieces

grading_docker() { docker -H "$host" "$@"; }
grading_answers() { grading_docker info >/dev/null 2>&1; }
running_pid() {
    [[ -f $pidfile ]] || return 1
    local pid
    pid=$(cat "$pidfile")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cgroup_dirs() {
    if [[ $(cgroup_version) == 2 ]]; then echo "/sys/fs/cgroup/$name"
    else ls -d /sys/fs/cgroup/*/"$name" 2>/dev/null || true; fi
}

make_cgroup() {
    local period=100000 quota
    quota=$(awk -v c="$cpus" -v p=$period 'BEGIN { printf "%d", c * p }')
    local bytes=$((memory_mb * 1024 * 1024))
    if [[ $(cgroup_version) == 2 ]]; then
        local cg=/sys/fs/cgroup/$name
        # The controllers must be enabled for the children of the root and of our cgroup.
        echo "+memory +pids +cpu" >/sys/fs/cgroup/cgroup.subtree_control
        mkdir -p "$cg"
        echo "$bytes" >"$cg/memory.max"
        echo 0 >"$cg/memory.swap.max" 2>/dev/null || true
        echo "$pids" >"$cg/pids.max"
        echo "$quota $period" >"$cg/cpu.max"
        echo "+memory +pids +cpu" >"$cg/cgroup.subtree_control"
    else
        mkdir -p "/sys/fs/cgroup/memory/$name" "/sys/fs/cgroup/pids/$name" "/sys/fs/cgroup/cpu/$name"
        echo "$bytes" >"/sys/fs/cgroup/memory/$name/memory.limit_in_bytes"
        # No swap beyond the memory limit where the kernel accounts swap.
        echo "$bytes" >"/sys/fs/cgroup/memory/$name/memory.memsw.limit_in_bytes" 2>/dev/null || true
        echo "$pids" >"/sys/fs/cgroup/pids/$name/pids.max"
        echo $period >"/sys/fs/cgroup/cpu/$name/cpu.cfs_period_us"
        echo "$quota" >"/sys/fs/cgroup/cpu/$name/cpu.cfs_quota_us"
    fi
}

remove_cgroup() {
    local dir
    for dir in $(cgroup_dirs); do
        [[ -d $dir ]] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

make_disk() {
    mkdir -p "$state" "$mnt"
    if mountpoint -q "$mnt"; then return; fi
    local want=$((disk_gb * 1024 * 1024 * 1024))
    if [[ -f $disk ]] && (($(stat -c %s "$disk") < want)); then
        # A disk left by an earlier start with a smaller size: grow it (ext4 grows in place), so that
        # the size asked for now holds; its build cache and base images stay.
        say "growing the disk image $disk to ${disk_gb} GB"
        truncate -s "$want" "$disk"
        e2fsck -f -y "$disk" >/dev/null 2>&1 || true
        resize2fs "$disk" >/dev/null 2>&1 || die "could not grow $disk to ${disk_gb} GB; stop --purge to remake it"
    elif [[ -f $disk ]] && (($(stat -c %s "$disk") > want)); then
        say "the disk image $disk is larger than ${disk_gb} GB; using it as it is (stop --purge to remake it)"
    fi
    if [[ ! -f $disk ]]; then
        local free
        free=$(df --output=avail -B1 "$state" | tail -n1)
        if ((want > free)); then
            die "${disk_gb} GB for its disk is more than the $((free / 1024 / 1024 / 1024)) GB free under $state; set CL_GRADING_DISK_GB lower"
        fi
        truncate -s "$want" "$disk"   # sparse: takes space only as it fills
        mkfs.ext4 -q -F -m 0 -L "$name" "$disk"
    fi
    # discard: what the engine deletes (pruned build cache, removed images) goes back to the host's disk
    # (the loop device punches holes in the sparse image), so the image holds what is in use, not its peak.
    mount -o loop,discard "$disk" "$mnt"
}

# Its own network namespace: the daemon sees neither docker0 nor the main
# engine's iptables chains, so nothing it does at start or stop can change them.
# A veth pair links the namespace to this host, which NATs it to the outside.
overlapping_routes() {
    local net
    for net in "$@"; do
        ip -4 route show match "$net" | grep -v '^default' || true
        ip -4 route show root "$net" || true
    done | sed '/^$/d' | grep -v " dev $veth_host " || true
}

make_network() {
    if [[ -e /run/netns/$netns ]]; then return; fi
    local overlap
    overlap=$(overlapping_routes "$link" "$subnet" "$pool")
    [[ -z $overlap ]] || die "its subnets $link, $subnet and $pool overlap routes of this machine:
$overlap
set CL_GRADING_LINK, CL_GRADING_SUBNET and CL_GRADING_POOL to free private ranges"
    local base=${link%/*}
    local host_ip=${base%.*}.$(( ${base##*.} + 1 )) ns_ip=${base%.*}.$(( ${base##*.} + 2 ))
    ip netns add "$netns"
    ip link add "$veth_host" type veth peer name "$veth_ns"
    ip link set "$veth_ns" netns "$netns"
    ip addr add "$host_ip/30" dev "$veth_host"
    ip link set "$veth_host" up
    ip -n "$netns" link set lo up
    ip -n "$netns" addr add "$ns_ip/30" dev "$veth_ns"
    ip -n "$netns" link set "$veth_ns" up
    ip -n "$netns" route add default via "$host_ip"
    # The bridge its builds and containers use, inside the namespace.
    ip -n "$netns" link add "$bridge" type bridge
    ip -n "$netns" addr add "$subnet" dev "$bridge"
    ip -n "$netns" link set "$bridge" up
}

remove_network() {
    ip link show "$veth_host" >/dev/null 2>&1 && ip link del "$veth_host" || true
    [[ -e /run/netns/$netns ]] && ip netns del "$netns" || true
}

# Outbound traffic (pip needs the package index); nothing towards the main
# engine's networks, nothing towards this host itself. `-w`: wait for another
# program's change of the tables (the main engine's, a second grading engine
# starting) instead of failing at once, where the legacy backend locks them.
add_rules() {
    remove_rules
    iptables -w -N "$chain"
    iptables -w -A "$chain" -i "$veth_host" -o docker0 -j DROP
    iptables -w -A "$chain" -i "$veth_host" -o br-+ -j DROP
    iptables -w -A "$chain" -i "$veth_host" -j ACCEPT
    iptables -w -A "$chain" -o "$veth_host" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    iptables -w -A FORWARD -j "$chain"
    iptables -w -N "$chain-IN"
    iptables -w -A "$chain-IN" -i "$veth_host" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    iptables -w -A "$chain-IN" -i "$veth_host" -j DROP
    iptables -w -I INPUT -j "$chain-IN"
    iptables -w -t nat -N "$chain"
    iptables -w -t nat -A "$chain" -s "$link" ! -o "$veth_host" -j MASQUERADE
    iptables -w -t nat -A POSTROUTING -j "$chain"
    if [[ $(cat /proc/sys/net/ipv4/ip_forward) != 1 ]]; then
        say "turning on IPv4 forwarding (net.ipv4.ip_forward=1) so that builds reach the package index"
        echo 1 >/proc/sys/net/ipv4/ip_forward
    fi
}

remove_rules() {
    while iptables -w -D FORWARD -j "$chain" 2>/dev/null; do :; done
    while iptables -w -D INPUT -j "$chain-IN" 2>/dev/null; do :; done
    while iptables -w -t nat -D POSTROUTING -j "$chain" 2>/dev/null; do :; done
    iptables -w -F "$chain" 2>/dev/null && iptables -w -X "$chain" 2>/dev/null || true
    iptables -w -F "$chain-IN" 2>/dev/null && iptables -w -X "$chain-IN" 2>/dev/null || true
    iptables -w -t nat -F "$chain" 2>/dev/null && iptables -w -t nat -X "$chain" 2>/dev/null || true
}

write_config() {
    # Its own (nearly empty) configuration file: /etc/docker/daemon.json belongs to the main engine.
    # The build cache is collected once it passes half the disk. BuildKit collects after each build,
    # least recently used first: with a third (2.7 GB of 8) and four students building at once, the
    # dependency stage of one student was collected between its build and exercise 2's rebuild
    # (CI 2026-12-01), and a correct multi-stage Dockerfile lost its cache points.
    local keep=$((disk_gb * 1024 / 2))
    cat >"$state/daemon.json" <<EOF
{
  "features": {"containerd-snapshotter": $snapshotter},
  "builder": {"gc": {"enabled": true, "defaultKeepStorage": "${keep}MB"}}
}
EOF
}

start_daemon() {
    say "starting dockerd (log: $log)"
    mkdir -p "$exec_root"
    # Only the network namespace is entered: mounts and cgroups are the host's.
    nohup nsenter --net="/run/netns/$netns" -- dockerd \
        --config-file "$state/daemon.json" \
        --host "$host" \
        --data-root "$mnt/docker" \
        --exec-root "$exec_root" \
        --pidfile "$pidfile" \
        --containerd-namespace "$name" \
        --containerd-plugins-namespace "$name-plugins" \
        --cgroup-parent "/$name" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --bridge "$bridge" \
        --default-address-pool "base=$pool,size=24" \
        --no-new-privileges \
        --label "org.containerlab.grading-engine=$name" \
        >"$log" 2>&1 &
    local _
    for _ in $(seq 1 60); do
        grading_answers && return 0
        sleep 1
    done
    return 1
}

stop_daemon() {
    local pid
    pid=$(running_pid) || return 0
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local _
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd $pid did not stop within 30 s; killing it"
        kill -KILL "$pid" || true
        sleep 1
    fi
    rm -f "$pidfile"
}

load_images() {
    local image main_id grading_id
    for image in $images; do
        main_id=$(main_docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) || {
            say "the main engine has no $image (run 'containerlab images' there first); not copied"
            continue
        }
        grading_id=$(grading_docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
        [[ $main_id == "$grading_id" ]] && continue
        say "copying $image from the main engine"
        main_docker save "$image" | grading_docker load -q >/dev/null
    done
}

# ----------------------------------------------------------------- commands

cmd_status() {
    local pid
    if pid=$(running_pid) && grading_answers; then
        echo "running: pid $pid, $host, engine $(grading_docker version --format '{{.Server.Version}}'), $(store_name), $(cgroup_summary), disk $(df -h --output=size,used "$mnt" | tail -n1 | awk '{print $2" used of "$1}')"
    else
        echo "stopped ($host does not answer)"
        [[ -z $(cannot_run) ]] || echo "cannot run here: $(cannot_run)"
    fi
    local since=""
    if [[ -f $state/docker0.at-start ]]; then
        if [[ $(cat "$state/docker0.at-start") == "$(docker0_state)" ]]; then since=", unchanged since the grading engine started"
        else since=", CHANGED since the grading engine started (then: '$(cat "$state/docker0.at-start")', now: '$(docker0_state)')"; fi
    fi
    if [[ -n $(docker0_state) ]]; then
        echo "main engine: docker0 $(docker0_state | awk '{print $2}')$since, $(main_engine_answers && echo answers || echo 'does not answer')"
    else
        echo "main engine: no docker0 bridge, $(main_engine_answers && echo answers || echo 'does not answer')"
    fi
    [[ -n ${pid:-} ]] && grading_answers
}

store_name() {
    if grading_docker info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q io.containerd.snapshotter.v1; then
        echo "containerd image store"
    else
        echo "legacy image store ($(grading_docker info --format '{{.Driver}}'))"
    fi
}

cgroup_summary() {
    if [[ $(cgroup_version) == 2 ]]; then
        local cg=/sys/fs/cgroup/$name
        echo "cgroup /$name: memory.max $(cat "$cg/memory.max"), pids.max $(cat "$cg/pids.max"), cpu.max $(cat "$cg/cpu.max")"
    else
        echo "cgroup /$name: memory $(( $(cat /sys/fs/cgroup/memory/$name/memory.limit_in_bytes) / 1024 / 1024 )) MB," \
             "pids $(cat /sys/fs/cgroup/pids/$name/pids.max)," \
             "cpu $(cat /sys/fs/cgroup/cpu/$name/cpu.cfs_quota_us)/$(cat /sys/fs/cgroup/cpu/$name/cpu.cfs_period_us) us"
    fi
}

cmd_start() {
    local why
    why=$(cannot_run)
    [[ -z $why ]] || die "cannot run on this machine: $why" 3
    if running_pid >/dev/null && grading_answers; then
        say "already running"
        make_context
        load_images
        cmd_status
        return
    fi
    main_engine_answers || die "the main engine ($main_host) does not answer; start it first (scripts/ensure-engine.sh)"
    local before
    before=$(docker0_state)
    [[ -n $before ]] || say "note: the main engine has no docker0 bridge now; nothing of it is touched"
    starting_from=$before
    trap start_failed EXIT
    make_network
    make_cgroup
    make_disk
    add_rules
    write_config
    if ! start_daemon; then
        tail -n 20 "$log" >&2 || true
        false
    fi
    if ! check_docker0 "$before" || ! main_engine_answers; then
        say "stopping the grading engine again: the main engine must stay as it was"
        stop_daemon
        cleanup_host
        repair_docker0 "$before"
        die "start refused: starting it disturbed the main engine (see above)"
    fi
    trap - EXIT
    echo "$before" >"$state/docker0.at-start"
    make_context
    load_images
    cmd_status
}

# On any failure during start: take down what was made, and check docker0 once more.
start_failed() {
    local status=$?
    trap - EXIT
    say "start failed; taking down what it made"
    stop_daemon || true
    cleanup_host || true
    check_docker0 "$starting_from" || repair_docker0 "$starting_from"
    exit "$status"
}

# A docker context naming it, so that `docker --context NAME` and `containerlab grade --engine NAME` find it.
make_context() {
    if docker context inspect "$context" >/dev/null 2>&1; then
        docker context update "$context" --docker "host=$host" >/dev/null
    else
        docker context create "$context" --description "containerlab grading engine (limited builds)" \
            --docker "host=$host" >/dev/null
    fi
}

cleanup_host() {
    remove_rules
    remove_network
    if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt" || true; fi
    remove_cgroup
    # A dockerd stopped with its containers still up (killed, or past its 30 s) leaves their network
    # namespaces bind-mounted under its exec root, which rm cannot remove.
    local ns
    for ns in "$exec_root"/netns/*; do
        mountpoint -q "$ns" 2>/dev/null && { umount "$ns" 2>/dev/null || umount -l "$ns" || true; }
    done
    rm -rf "$exec_root"
}

# Put docker0 back as it was (address and state); the main engine's own records are not touched.
repair_docker0() {
    local before=$1
    [[ -n $before ]] || return 0
    if ! ip link show docker0 >/dev/null 2>&1; then
        say "re-creating docker0 with ${before#* }; restart the main engine if its containers lost their network"
        ip link add docker0 type bridge
        ip addr add "${before#* }" dev docker0
        ip link set docker0 up
    fi
}

cmd_stop() {
    local purge=${1:-}
    [[ $(id -u) -eq 0 ]] || die "stopping it needs root (it removes a cgroup, a loop mount and a network namespace)" 3
    local before
    before=$(docker0_state)
    stop_daemon
    cleanup_host
    docker context rm -f "$context" >/dev/null 2>&1 || true
    if [[ $purge == --purge ]]; then
        say "deleting its disk image $disk"
        rm -rf "$state"
    fi
    check_docker0 "$before" || { repair_docker0 "$before"; die "stopping it changed the main engine's docker0"; }
    say "stopped"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status ;;
    can-run) why=$(cannot_run); [[ -z $why ]] && echo yes || { echo "no: $why"; exit 3; } ;;
    *) die "usage: $0 start | stop [--purge] | status | can-run" 2 ;;
esac
