#!/usr/bin/env bash
# Stops the processes that lab/up.sh started in a lab directory, by the
# PIDs recorded in DIR/pids, and waits for each to exit. A PID whose
# process no longer runs the lab's config is skipped, so a reused PID is
# never signalled.
#
# Usage: lab/down.sh DIR
set -euo pipefail

[[ $# -eq 1 && -n "$1" ]] || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d "$1" ]] || { echo "lab-down: no lab directory $1" >&2; exit 1; }
lab="$(cd "$1" && pwd)"

# Seconds to wait for a process after SIGTERM before sending SIGKILL.
term_timeout=15

# belongs_to_lab PID: true when the process's command line names a file
# inside the lab directory, as every lab process's config does.
belongs_to_lab() {
	local cmdline
	cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
	[[ "$cmdline" == *"$lab/"* ]]
}

# wait_for_exit NAME PID: waits for a signalled process, then kills it.
wait_for_exit() {
	local name="$1" pid="$2"
	local deadline=$((SECONDS + term_timeout))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "lab-down: $name (pid $pid) still running ${term_timeout}s after SIGTERM; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
			break
		fi
		sleep 0.1
	done
}

shopt -s nullglob
pidfiles=("$lab"/pids/*.pid)
if [[ ${#pidfiles[@]} -eq 0 ]]; then
	echo "lab-down: no PID files in $lab/pids; nothing to stop"
	exit 0
fi

# Send SIGTERM to all first so they stop in parallel, then wait for each.
declare -A pids=()
for pidfile in "${pidfiles[@]}"; do
	name="$(basename "$pidfile" .pid)"
	pid="$(cat "$pidfile")"
	if [[ ! "$pid" =~ ^[0-9]+$ ]]; then
		echo "lab-down: invalid PID '$pid' in $pidfile; skipped" >&2
	elif ! kill -0 "$pid" 2>/dev/null; then
		echo "lab-down: $name (pid $pid) is not running"
	elif ! belongs_to_lab "$pid"; then
		echo "lab-down: pid $pid from $pidfile is not a process of this lab; skipped" >&2
	else
		kill -TERM "$pid" 2>/dev/null || true
		pids[$name]="$pid"
	fi
	rm -f "$pidfile"
done

for name in "${!pids[@]}"; do
	wait_for_exit "$name" "${pids[$name]}"
done
echo "lab-down: stopped ${#pids[@]} processes of $lab"
