#!/usr/bin/env bash
# Print the Debian mirror this machine's apt already uses (e.g. http://deb.debian.org/debian).
# Both the engine install and the stand-in base images fetch from it: no host is hard-coded.
set -eu
mirrors=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -E '^(URIs:|deb)[[:space:]]' | grep -oE '[a-z]+://[^[:space:]]+' | grep -E '/debian/?$' || true)
if [ -z "$mirrors" ]; then
    echo "debian-mirror: no Debian mirror found in apt's sources" >&2
    exit 1
fi
printf '%s\n' "$mirrors" | head -n1 | sed 's|/$||'
