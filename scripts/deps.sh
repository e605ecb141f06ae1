#!/usr/bin/env bash
# Installs the Debian packages that the tests and the lab drive: Knot DNS and
# NSD (the lab's authoritative servers), kdig and dig (clients), dnsperf
# (load) and Unbound (the reference resolver). Packages already present are
# left alone.
set -euo pipefail

declare -A wanted=(
	[knotd]=knot
	[nsd]=nsd
	[kdig]=knot-dnsutils
	[dig]=bind9-dnsutils
	[dnsperf]=dnsperf
	[unbound]=unbound
)

missing=()
for cmd in "${!wanted[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
		missing+=("${wanted[$cmd]}")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}
echo "installing ${missing[*]}" >&2

# Keep the packages' own services from starting: a system Knot, NSD or
# Unbound on port 53 would take the addresses the lab binds.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
	as_root chmod +x "$policy"
	trap 'as_root rm -f "$policy"' EXIT
fi

as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
