#!/usr/bin/env bash
# Runs every fuzz target of the repository for a bounded time each.
#
# Usage: scripts/fuzz.sh [DURATION]   (default 10s, a Go duration)
# go test saves a failing input under the package's testdata/fuzz directory
# and prints its path. The script runs the other targets, then exits
# non-zero. A target that fails without saving an input is run once more:
# the Go fuzzing coordinator can fail at the end of -fuzztime on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
status=0

# saved_inputs counts the inputs saved for one target.
saved_inputs() {
	local dir="$1/testdata/fuzz/$2"
	if [[ -d "$dir" ]]; then
		find "$dir" -type f | wc -l
	else
		echo 0
	fi
}

targets=$(grep -ro --include='*_test.go' -e '^func Fuzz[A-Za-z0-9_]*' internal lab cmd | sed 's/:func /:/')
for target in $targets; do
	pkg="./$(dirname "${target%%:*}")"
	name="${target##*:}"
	for attempt in 1 2; do
		echo "fuzz: $pkg $name for $duration"
		before=$(saved_inputs "$pkg" "$name")
		if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$pkg"; then
			break
		fi
		if [[ $(saved_inputs "$pkg" "$name") != "$before" || $attempt == 2 ]]; then
			echo "fuzz: $pkg $name FAILED" >&2
			status=1
			break
		fi
		echo "fuzz: $pkg $name failed without saving an input; running it once more" >&2
	done
done
exit $status
