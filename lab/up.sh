#!/usr/bin/env bash
# Starts the lab internet in a directory: installs Knot DNS and NSD when
# missing, builds labgen and labstub, generates zones and configs, starts
# every server process, waits until each listener answers and records the
# PIDs in DIR/pids. It does not start Bulwark.
#
# Usage: lab/up.sh DIR [PORT_OFFSET]
set -euo pipefail

usage() {
	echo "usage: $0 DIR [PORT_OFFSET]" >&2
	exit 2
}

[[ $# -ge 1 && $# -le 2 && -n "$1" ]] || usage
offset="${2:-0}"
[[ "$offset" =~ ^[0-9]+$ ]] || { echo "lab-up: invalid port offset '$offset': want a non-negative integer" >&2; exit 2; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$1"
lab="$(cd "$1" && pwd)"
start_seconds=$SECONDS

# A lab directory whose recorded processes still run belongs to a live lab.
if compgen -G "$lab/pids/*.pid" >/dev/null; then
	for pidfile in "$lab"/pids/*.pid; do
		pid="$(cat "$pidfile")"
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			echo "lab-up: a lab is already running in $lab (pid $pid from $pidfile); run 'make lab-down LAB=$lab' first" >&2
			exit 1
		fi
	done
	rm -f "$lab"/pids/*.pid
fi

# Knot DNS, NSD, kdig, dig and the DNSSEC signers come from Debian
# packages.
"$repo/lab/deps.sh" knotd nsd kdig dig keymgr ldns-signzone dnssec-signzone
export PATH="$PATH:/usr/sbin"

go_cmd="$(command -v go || echo /usr/local/go/bin/go)"
cd "$repo"
mkdir -p bin
"$go_cmd" build -o bin/labgen ./lab/cmd/labgen
"$go_cmd" build -o bin/labstub ./lab/cmd/labstub

bin/labgen generate -data lab/data -out "$lab" -offset "$offset"
# Keys and signatures depend on the time, so they are made here rather
# than by generate, whose output is deterministic.
bin/labgen sign -lab "$lab"

# Start every process listed in processes.tsv. Each runs in the
# foreground of its own background job, so $! is its PID. Output goes to
# its log file, so no process keeps the caller's stdout or stderr open.
start_process() {
	local name="$1" program="$2" config="$3" log="$4"
	local cmd
	case "$program" in
	knotd) cmd=(knotd -c "$config") ;;
	nsd) cmd=(nsd -d -c "$config") ;;
	labstub) cmd=("$repo/bin/labstub" -config "$config") ;;
	*)
		echo "lab-up: unknown program '$program' for $name in $lab/processes.tsv" >&2
		return 1
		;;
	esac
	"${cmd[@]}" </dev/null >>"$log" 2>&1 &
	echo "$!" >"$lab/pids/$name.pid"
}

mkdir -p "$lab/pids"
while IFS=$'\t' read -r name program config log; do
	[[ -z "$name" || "$name" == \#* ]] && continue
	: >"$log"
	start_process "$name" "$program" "$config" "$log"
done <"$lab/processes.tsv"

if ! bin/labgen wait -lab "$lab" -timeout "${LAB_WAIT_TIMEOUT:-90s}"; then
	echo "lab-up: the lab did not come up; stopping what was started (logs stay in $lab)" >&2
	"$repo/lab/down.sh" "$lab" >&2 || true
	exit 1
fi

echo "lab-up: lab running in $lab (auth port $((53 + offset)), Bulwark config $lab/bulwark.yaml) after $((SECONDS - start_seconds))s"
