#!/usr/bin/env bash
# Brings the lab up in DIR, runs Bulwark on the lab config, replays the lab's
# popularity-weighted query list through it once with dnsperf, then stops
# Bulwark and the lab.
#
#   scripts/demo.sh DIR
set -euo pipefail

dir=${1:?usage: scripts/demo.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

make --no-print-directory build lab-up LAB="$dir"
bin/bulwark serve -config "$dir/bulwark.yaml" 2>"$dir/bulwark.log" &
pid=$!
cleanup() {
	kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
	make --no-print-directory lab-down LAB="$dir"
}
trap cleanup EXIT

port=$(sed -n 's/.*address: 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/bulwark.yaml" | head -1)
for _ in $(seq 50); do
	if dig @127.0.0.1 -p "$port" +tries=1 +timeout=1 . NS >/dev/null 2>&1; then
		break
	fi
	sleep 0.2
done
dnsperf -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -n 1 -q 100 -t 5
