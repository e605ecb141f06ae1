#!/usr/bin/env bash
# Runs the soak suite (test/soak) inside a network namespace of its own:
# the lab, Bulwark, the load, the attacks and the nftables rules of the
# faults all live on the namespace's private loopback, so nothing reaches
# the host's addresses or its firewall rules. The namespace and the lab are
# removed at the end, also on failure and on Ctrl-C.
#
# Usage: scripts/soak.sh [LAB_DIR]
#   SOAK_SCALE=ci|full, SOAK_SECONDS=N, SOAK_ROWS=a,b and SOAK_STRICT=1 go to the runner;
#   see docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "soak: run as root: the suite creates a network namespace and nftables rules" >&2
	exit 1
fi
lab_dir="${1:-/tmp/bulwark-soak-lab}"
lab_dir="$(mkdir -p "$lab_dir" && cd "$lab_dir" && pwd)"
netns="bulwark-soak-$$"

./lab/deps.sh nft
go build -o bin/bulwark ./cmd/bulwark
go build -o bin/faultproxy ./lab/cmd/faultproxy
go build -o bin/soak ./test/soak
go test -c -o bin/soak.test ./test/soak

in_netns() {
	ip netns exec "$netns" "$@"
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -f "$lab_dir/lab.json" ]]; then
		in_netns make --no-print-directory lab-down LAB="$lab_dir" >/dev/null 2>&1 || true
	fi
	# Whatever still runs in the namespace was started by this script:
	# the runner, Bulwark or the fault proxy after an interruption.
	local pid
	for pid in $(ip netns pids "$netns" 2>/dev/null); do
		kill "$pid" 2>/dev/null || true
	done
	ip netns delete "$netns" 2>/dev/null || true
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$netns"
in_netns ip link set lo up

# The runner's own tests, here the one that needs a namespace: attack
# datagrams leave from the source addresses the amplification row sets.
in_netns env SOAK_IN_NETNS=1 bin/soak.test -test.count=1

# Port offset 0 is free: the namespace has its own loopback.
echo "soak: starting the lab in $lab_dir inside network namespace $netns"
in_netns make --no-print-directory lab-up LAB="$lab_dir" LAB_PORT_OFFSET=0

in_netns env SOAK_SCALE="${SOAK_SCALE:-full}" SOAK_SECONDS="${SOAK_SECONDS:-}" \
	SOAK_STRICT="${SOAK_STRICT:-}" SOAK_ROWS="${SOAK_ROWS:-}" \
	bin/soak -lab "$lab_dir" -bulwark bin/bulwark -faultproxy bin/faultproxy
