#!/usr/bin/env bash
# Runs every fuzz target of the repository for a bounded time each.
#
# Usage: scripts/fuzz.sh [DURATION]   (default 10s, a Go duration)
# go test saves a failing input under the package's testdata/fuzz directory
# and prints its path. The script runs the other targets, then exits
# non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
status=0
targets=$(grep -ro --include='*_test.go' -e '^func Fuzz[A-Za-z0-9_]*' internal lab cmd | sed 's/:func /:/')
for target in $targets; do
	pkg="./$(dirname "${target%%:*}")"
	name="${target##*:}"
	echo "fuzz: $pkg $name for $duration"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" "$pkg"; then
		echo "fuzz: $pkg $name FAILED" >&2
		status=1
	fi
done
exit $status
