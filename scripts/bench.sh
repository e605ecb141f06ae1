#!/usr/bin/env bash
# Measures Bulwark beside Unbound, Knot Resolver (kresd), PowerDNS Recursor
# and BIND on the lab, one resolver at a time. Each runs one worker pinned
# to one core, with dnsperf pinned to the other, and all validate from the
# same lab trust anchor. The script prints each peer's config, then a table
# of figures and ratios to Unbound. Each figure is the median of
# BENCH_ROUNDS runs with its spread. docs/benchmarks.md describes the method.
#
#   scripts/bench.sh          (make bench runs it)
#
# Environment, with defaults:
#   BENCH_DIR=/tmp/bulwark-bench     lab, configs, logs and results
#   BENCH_PEERS="bulwark unbound kresd pdns bind responder"
#                                    what to run, in this order; responder
#                                    is the minimal responder, the ceiling
#                                    of the setup
#   BENCH_CPU=1                      core of the resolver under test
#   BENCH_CLIENT_CPU=0               core of dnsperf
#   BENCH_ROUNDS=3                   runs per measurement
#   BENCH_SECONDS=10                 length of each timed run
#   BENCH_NAMES=1000                 distinct cached names queried
#   BENCH_RATE=20000                 offered load, queries/s, for CPU time
#                                    and latency of cached answers
#   BENCH_MIX_RATE=2000              normal traffic during the attack mix
#   BENCH_SMOKE=                     1: one round of 2 s, for CI smoke runs
#
# The lab listens on port 53 of 127.53.0.0/16, so no query leaves the host;
# the resolvers listen on 127.0.0.1. Needs root (port 53, apt).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/bulwark-bench}
BENCH_PEERS=${BENCH_PEERS:-bulwark unbound kresd pdns bind responder}
BENCH_CPU=${BENCH_CPU:-1}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_NAMES=${BENCH_NAMES:-1000}
BENCH_RATE=${BENCH_RATE:-20000}
BENCH_MIX_RATE=${BENCH_MIX_RATE:-2000}
if [[ -n "${BENCH_SMOKE:-}" ]]; then
	BENCH_ROUNDS=1 BENCH_SECONDS=2 BENCH_NAMES=200
fi

root=$(cd "$(dirname "$0")/.." && pwd)
lab="$BENCH_DIR/lab"
results="$BENCH_DIR/results.tsv"
export PATH="$PATH:/usr/sbin:/sbin"

fail() {
	echo "bench: $*" >&2
	exit 1
}

# shellcheck source=scripts/bench-common.sh
source "$root/scripts/bench-common.sh"

peer_pid="" lab_up="" collector_pid=""
cleanup() {
	local pid
	for pid in "$peer_pid" "$collector_pid"; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	[[ -n "$lab_up" ]] && make -C "$root" --no-print-directory lab-down LAB="$lab" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# install_packages installs the peers and tools that are missing.
install_packages() {
	"$root/lab/deps.sh" || fail "lab/deps.sh failed"
	# shellcheck disable=SC2046 # one package a word
	install_missing $(missing_packages unbound=unbound kresd=knot-resolver pdns_recursor=pdns-recursor \
		named=bind9 taskset=util-linux column=bsdextrautils)
}

check_settings() {
	local name value
	for name in BENCH_CPU BENCH_CLIENT_CPU BENCH_ROUNDS BENCH_SECONDS BENCH_NAMES BENCH_RATE BENCH_MIX_RATE; do
		value=${!name}
		[[ "$value" =~ ^[0-9]+$ ]] || fail "invalid $name '$value': want a whole number"
	done
	((BENCH_ROUNDS >= 1 && BENCH_SECONDS >= 1 && BENCH_NAMES >= 1 && BENCH_RATE >= 1)) ||
		fail "BENCH_ROUNDS, BENCH_SECONDS, BENCH_NAMES and BENCH_RATE must be at least 1"
	((BENCH_CPU < $(nproc) && BENCH_CLIENT_CPU < $(nproc))) ||
		fail "BENCH_CPU $BENCH_CPU or BENCH_CLIENT_CPU $BENCH_CLIENT_CPU is not a core of this machine (0 to $(($(nproc) - 1)))"
	local peer
	for peer in $BENCH_PEERS; do
		case $peer in
		bulwark | unbound | kresd | pdns | bind | responder) ;;
		*) fail "unknown peer '$peer' in BENCH_PEERS: want bulwark, unbound, kresd, pdns, bind or responder" ;;
		esac
	done
}

# json_field prints a string field of lab.json.
json_field() {
	awk -v key="\"$1\":" '$1 == key { v = $2; gsub(/^"|",?$/, "", v); print v; exit }' "$lab/lab.json"
}

# signed_zones prints the first three signed popular zones of lab.json.
signed_zones() {
	awk '/"signed_popular_zones":/ { on = 1; next } on { v = $1; gsub(/[",\]]/, "", v); if (v != "") { print v; if (++n == 3) exit } }' "$lab/lab.json"
}

setup() {
	print_machine

	echo "== building and starting the lab in $lab"
	make -C "$root" --no-print-directory build >/dev/null || fail "make build failed"
	(cd "$root" && go build -o "$BENCH_DIR/benchresponder" ./lab/cmd/benchresponder) || fail "building the minimal responder failed"
	rm -rf "$lab"
	mkdir -p "$BENCH_DIR"
	lab_up=1
	make -C "$root" --no-print-directory lab-up LAB="$lab" LAB_PORT_OFFSET=0 >"$BENCH_DIR/lab-up.log" 2>&1 ||
		fail "make lab-up failed; see $BENCH_DIR/lab-up.log"

	hints=$(json_field root_hints)
	anchor=$(json_field trust_anchor_ds)
	[[ -f "$hints" && -f "$anchor" ]] || fail "lab.json names no root hints ($hints) or DS trust anchor ($anchor)"

	local queries zone
	queries=$(json_field queries)
	# Cold resolution: the distinct questions of the lab's weighted list,
	# in the order they first appear.
	awk '!seen[$0]++' "$queries" >"$BENCH_DIR/cold.txt"

	# Cached answers: A questions of the list, the first of which resolve
	# to NOERROR are kept at the warm-up.
	awk -v n="$((BENCH_NAMES * 2))" '$2 == "A" && c < n { print; c++ }' "$BENCH_DIR/cold.txt" >"$BENCH_DIR/candidates.txt"

	# The attack mix: random subdomains of three signed zones, and one in
	# four under a TLD that does not exist. Each round has names of its
	# own, so that no round finds the names of another in the cache.
	# Normal traffic is the weighted list.
	local zones round
	zones=$(signed_zones | tr '\n' ' ')
	[[ $(wc -w <<<"$zones") -eq 3 ]] || fail "lab.json lists fewer than three signed popular zones"
	for round in $(seq "$BENCH_ROUNDS"); do
		awk -v zones="$zones" -v seed="$round" 'BEGIN {
			split(zones, zone, " ")
			srand(seed)
			for (i = 0; i < 400000; i++) {
				label = ""
				for (j = 0; j < 12; j++) label = label sprintf("%c", 97 + int(rand() * 26))
				if (i % 4 == 3) print label ".nx-" label " A"; else print label "." zone[i % 4 + 1] " A"
			}
		}' >"$BENCH_DIR/attack-$round.txt"
	done
	cp "$queries" "$BENCH_DIR/normal.txt"
	echo "names: $(wc -l <"$BENCH_DIR/cold.txt") distinct questions for the cold run; random subdomains of $zones for the attack"
}

# ds_rdata prints the key tag, algorithm, digest type and digest of the
# first DS record of the lab's trust anchor file.
ds_rdata() {
	awk '{ for (i = 1; i < NF; i++) if ($i == "DS") { d = ""; for (j = i + 4; j <= NF; j++) d = d $j; print $(i + 1), $(i + 2), $(i + 3), d; exit } }' "$anchor"
}

# Ports of the resolvers under test.
declare -A port_of=([bulwark]=5300 [unbound]=6053 [kresd]=7053 [pdns]=8053 [bind]=9053 [responder]=5399)

write_config() {
	local peer=$1 dir="$BENCH_DIR/$1"
	mkdir -p "$dir"
	case $peer in
	bulwark)
		# The lab config: validation on from the lab's anchor, its
		# lists loaded, metrics on; dnstap to a collector that keeps
		# nothing. The encrypted listeners are not used here.
		# The cache gets Unbound's 192 MiB (64 MiB of messages and 128 MiB
		# of RRsets below) in place of the lab's 64 MiB.
		sed 's/^  max_bytes: 64MiB$/  max_bytes: 192MiB/' "$lab/bulwark.yaml" >"$dir/config"
		grep -q '^  max_bytes: 192MiB$' "$dir/config" || fail "the lab config has no cache.max_bytes of 64MiB to replace"
		printf 'dnstap:\n  socket: %s\n' "$dir/dnstap.sock" >>"$dir/config"
		;;
	unbound)
		cat >"$dir/config" <<EOF
server:
	num-threads: 1
	interface: 127.0.0.1@${port_of[unbound]}
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	root-hints: "$hints"
	trust-anchor-file: "$anchor"
	chroot: ""
	username: ""
	directory: "$dir"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	msg-cache-size: 64m
	rrset-cache-size: 128m
	prefetch: no
EOF
		;;
	kresd)
		mkdir -p "$dir/cache"
		cat >"$dir/config" <<EOF
net.listen('127.0.0.1', ${port_of[kresd]}, { kind = 'dns' })
-- The lab root: its hints and its trust anchor, no updates from the
-- real root; lab servers sit on loopback addresses.
modules.unload('ta_update')
modules.unload('ta_signal_query')
modules.unload('ta_sentinel')
modules.unload('detect_time_skew')
modules.unload('detect_time_jump')
trust_anchors.remove('.')
trust_anchors.add_file('$anchor', true)
modules.load('hints > iterate')
hints.root_file('$hints')
option('ALLOW_LOCAL', true)
cache.open(200 * MB, 'lmdb://$dir/cache')
EOF
		;;
	pdns)
		local ds
		ds=$(ds_rdata)
		[[ -n "$ds" ]] || fail "no DS record in $anchor"
		cat >"$dir/recursor.lua" <<EOF
clearTA('.')
addTA('.', "$ds")
EOF
		cat >"$dir/recursor.conf" <<EOF
local-address=127.0.0.1
local-port=${port_of[pdns]}
allow-from=127.0.0.0/8
dont-query=
hint-file=$hints
dnssec=validate
lua-config-file=$dir/recursor.lua
threads=1
pdns-distributes-queries=no
daemon=no
write-pid=no
socket-dir=$dir
quiet=yes
max-cache-entries=1000000
EOF
		cp "$dir/recursor.conf" "$dir/config"
		;;
	bind)
		local ds
		ds=$(ds_rdata | awk '{ print $1, $2, $3, "\"" $4 "\"" }')
		cat >"$dir/config" <<EOF
options {
	directory "$dir";
	pid-file none;
	listen-on port ${port_of[bind]} { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { 127.0.0.0/8; };
	allow-recursion { 127.0.0.0/8; };
	dnssec-validation yes;
	max-cache-size 192m;
	querylog no;
};
controls { };
trust-anchors { . static-ds ${ds}; };
zone "." { type hint; file "$hints"; };
EOF
		;;
	responder)
		echo "benchresponder -listen 127.0.0.1:${port_of[responder]}" >"$dir/config"
		;;
	esac
}

start_peer() {
	local peer=$1 dir="$BENCH_DIR/$1"
	case $peer in
	bulwark)
		taskset -c "$BENCH_CLIENT_CPU" fstrm_capture -t protobuf:dnstap.Dnstap -u "$dir/dnstap.sock" -w /dev/null \
			>"$dir/collector.log" 2>&1 </dev/null &
		collector_pid=$!
		GOMAXPROCS=1 taskset -c "$BENCH_CPU" "$root/bin/bulwark" serve -config "$dir/config" >"$dir/log" 2>&1 </dev/null &
		;;
	unbound) taskset -c "$BENCH_CPU" unbound -d -c "$dir/config" >"$dir/log" 2>&1 </dev/null & ;;
	kresd) (cd "$dir" && exec taskset -c "$BENCH_CPU" kresd -n -c "$dir/config" "$dir") >"$dir/log" 2>&1 </dev/null & ;;
	pdns) taskset -c "$BENCH_CPU" pdns_recursor --config-dir="$dir" >"$dir/log" 2>&1 </dev/null & ;;
	bind) taskset -c "$BENCH_CPU" named -g -n 1 -c "$dir/config" >"$dir/log" 2>&1 </dev/null & ;;
	responder) GOMAXPROCS=1 taskset -c "$BENCH_CPU" "$BENCH_DIR/benchresponder" -listen "127.0.0.1:${port_of[responder]}" >"$dir/log" 2>&1 </dev/null & ;;
	esac
	peer_pid=$!
	local i
	for i in $(seq 300); do
		# The root SOA is answered from the lab's root by any resolver,
		# and the responder answers anything.
		kdig @127.0.0.1 -p "${port_of[$peer]}" +timeout=1 +retry=0 . SOA >/dev/null 2>&1 && return
		kill -0 "$peer_pid" 2>/dev/null || fail "$peer exited at start; see $dir/log"
		sleep 0.1
	done
	fail "$peer did not answer on port ${port_of[$peer]} within 30 s; see $dir/log"
}

stop_peer() {
	local peer=$1 i
	kill "$peer_pid" 2>/dev/null || fail "$peer exited before it was stopped; see $BENCH_DIR/$peer/log"
	for i in $(seq 300); do
		kill -0 "$peer_pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$peer_pid" 2>/dev/null && fail "$peer did not stop within 60 s of SIGTERM"
	wait "$peer_pid" 2>/dev/null || true
	peer_pid=""
	if [[ -n "$collector_pid" ]]; then
		kill "$collector_pid" 2>/dev/null || true
		wait "$collector_pid" 2>/dev/null || true
		collector_pid=""
	fi
}

# rss_mib prints the resident memory of the peer in MiB.
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$peer_pid/status"; }

# dnsperf_run runs dnsperf on the client core against the peer, with the
# given arguments, saves its output in $dir/$label.txt and prints it.
dnsperf_run() {
	local peer=$1 label=$2
	shift 2
	local out
	out=$(taskset -c "$BENCH_CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${port_of[$peer]}" "$@" 2>&1) ||
		fail "dnsperf $* against $peer failed: $(tail -5 <<<"$out")"
	echo "$out" >"$BENCH_DIR/$peer/$label.txt"
	echo "$out"
}

field() { awk -v key="$1" '$0 ~ key { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'; }

# latencies prints p50, p99 and p99.9 in milliseconds of the answered
# queries in a dnsperf -v output.
latencies() {
	awk '$1 == ">" && $2 != "T" { print $NF * 1000 }' | sort -g | awk '
		function pct(q,   i) {
			i = int(NR * q) + 1
			if (i > NR) i = NR
			return v[i]
		}
		{ v[NR] = $1 }
		END {
			if (NR == 0) print "- - -"
			else printf "%.3f %.3f %.3f\n", pct(0.50), pct(0.99), pct(0.999)
		}'
}

record() { echo -e "$1\t$2\t$3" >>"$results"; }

# clear_cache removes the cache that a peer keeps on disk, so that its next
# start is cold. Only Knot Resolver keeps one.
clear_cache() {
	[[ $1 == kresd ]] || return 0
	rm -rf "$BENCH_DIR/kresd/cache"
	mkdir -p "$BENCH_DIR/kresd/cache"
}

# cold runs the distinct questions BENCH_ROUNDS times, each from an empty
# cache: the peer is restarted before each round after the first. It
# records the answers per second, the peer's CPU time per question and its
# resident memory after each round. The last round leaves the peer running.
cold() {
	local peer=$1 round out qps=() cpu=() rss=() files=() before after sent
	for round in $(seq "$BENCH_ROUNDS"); do
		if ((round > 1)); then
			stop_peer "$peer"
			clear_cache "$peer"
			start_peer "$peer"
		fi
		before=$(cpu_ticks)
		out=$(dnsperf_run "$peer" "cold-$round" -d "$BENCH_DIR/cold.txt" -n 1 -q 200 -t 5)
		after=$(cpu_ticks)
		qps+=("$(field 'Queries per second' <<<"$out")")
		sent=$(field 'Queries sent' <<<"$out")
		((sent > 0)) || fail "dnsperf sent no cold question to $peer"
		cpu+=("$(calc "($after - $before) / $(getconf CLK_TCK) * 1000000 / $sent" 0)")
		rss+=("$(rss_mib)")
		local file=""
		if [[ $peer == kresd ]]; then
			# The blocks in use, not the size of the memory map.
			file=$(du -m "$BENCH_DIR/kresd/cache/data.mdb" 2>/dev/null | cut -f1)
		fi
		files+=("${file:-0}")
		echo "cold round $round: ${qps[-1]} answers/s over $sent distinct questions, $(field 'Queries lost' <<<"$out") lost;" \
			"${cpu[-1]} us of CPU per question; then ${rss[-1]} MiB resident${file:+, cache file $file MiB}"
	done
	record "$peer" cold_qps "$(median "${qps[@]}")"
	record "$peer" cold_cpu_us "$(median "${cpu[@]}")"
	record "$peer" rss_mib "$(median "${rss[@]}")"
	record "$peer" cache_file_mib "$(median "${files[@]}")"
}

# warm caches the candidate names and keeps those that resolved to NOERROR.
warm() {
	local peer=$1 dir="$BENCH_DIR/$1"
	: >"$dir/names.txt"
	local name type
	while read -r name type; do
		if kdig @127.0.0.1 -p "${port_of[$peer]}" +timeout=5 +retry=1 "$name" "$type" 2>/dev/null | grep -q 'status: NOERROR'; then
			echo "$name $type" >>"$dir/names.txt"
		fi
		(($(wc -l <"$dir/names.txt") >= BENCH_NAMES)) && break
	done <"$BENCH_DIR/candidates.txt"
	local n
	n=$(wc -l <"$dir/names.txt")
	((n * 10 >= BENCH_NAMES * 9)) || fail "$peer resolved only $n of the first $((BENCH_NAMES * 2)) names; see $dir/log"
	echo "warm-up: $n names resolved and cached"
}

# cached measures cached answers: the maximum answers per second, then at
# BENCH_RATE the CPU time per answer and the latency percentiles.
cached() {
	local peer=$1 dir="$BENCH_DIR/$1" round out qps=() cpu=() p50=() p99=() p999=()
	for round in $(seq "$BENCH_ROUNDS"); do
		out=$(dnsperf_run "$peer" "max-$round" -d "$dir/names.txt" -c 10 -q 500 -l "$BENCH_SECONDS" -t 5)
		qps+=("$(field 'Queries per second' <<<"$out")")
		local before after completed lat
		before=$(cpu_ticks)
		out=$(dnsperf_run "$peer" "rate-$round" -d "$dir/names.txt" -c 10 -q 500 -l "$BENCH_SECONDS" -t 5 -Q "$BENCH_RATE" -v)
		after=$(cpu_ticks)
		completed=$(field 'Queries completed' <<<"$out")
		((completed > 0)) || fail "$peer answered no query at $BENCH_RATE queries/s"
		cpu+=("$(calc "($after - $before) / $(getconf CLK_TCK) * 1000000 / $completed" 3)")
		lat=$(latencies <<<"$out")
		read -r a b c <<<"$lat"
		p50+=("$a") p99+=("$b") p999+=("$c")
		echo "cached round $round: max ${qps[-1]} answers/s; at $BENCH_RATE/s ${cpu[-1]} us of CPU per answer, p50/p99/p99.9 $a/$b/$c ms"
	done
	record "$peer" max_qps "$(median "${qps[@]}")"
	record "$peer" cpu_us "$(median "${cpu[@]}")"
	record "$peer" p50_ms "$(median "${p50[@]}")"
	record "$peer" p99_ms "$(median "${p99[@]}")"
	record "$peer" p999_ms "$(median "${p999[@]}")"
}

# rcodes_resolved prints how many responses of a dnsperf output had the RCODE
# NOERROR or NXDOMAIN, the two a resolver gives when it resolves a name.
rcodes_resolved() {
	awk '/Response codes:/ {
		for (i = 1; i <= NF; i++) if ($i == "NOERROR" || $i == "NXDOMAIN") n += $(i + 1)
	} END { print n + 0 }'
}

# mix runs random subdomains of signed zones and of missing TLDs as fast
# as the resolver takes them, beside normal traffic at BENCH_MIX_RATE, and
# records the attack's names resolved per second and the normal traffic's
# resolved share and p99 latency. A name counts as resolved when it gets
# NOERROR or NXDOMAIN: a resolver that sheds a flood with SERVFAIL responds
# fast but resolves nothing.
mix() {
	local peer=$1 dir="$BENCH_DIR/$1" round attack=() share=() p99=()
	for round in $(seq "$BENCH_ROUNDS"); do
		# Up to 1000 normal queries in flight, so that the offered rate
		# stays even when they wait half a second each.
		dnsperf_run "$peer" "normal-$round" -d "$BENCH_DIR/normal.txt" -l "$BENCH_SECONDS" -t 5 -Q "$BENCH_MIX_RATE" -q 1000 -v >"$dir/normal.out" &
		local normal_pid=$!
		local out
		out=$(dnsperf_run "$peer" "attack-$round" -d "$BENCH_DIR/attack-$round.txt" -l "$BENCH_SECONDS" -q 200 -t 5)
		wait "$normal_pid" || fail "normal traffic during the attack on $peer failed"
		local runtime resolved responses
		runtime=$(field 'Run time' <<<"$out")
		resolved=$(rcodes_resolved <<<"$out")
		responses=$(field 'Queries completed' <<<"$out")
		attack+=("$(calc "$resolved / $runtime" 0)")
		local sent
		sent=$(field 'Queries sent' <"$dir/normal.out")
		share+=("$(calc "100 * $(rcodes_resolved <"$dir/normal.out") / $sent" 2)")
		local lat
		lat=$(latencies <"$dir/normal.out")
		p99+=("$(awk '{ print $2 }' <<<"$lat")")
		echo "mix round $round: attack ${attack[-1]} names resolved/s ($(calc "$responses / $runtime" 0) responses/s);" \
			"normal traffic ${share[-1]}% of $sent resolved, p99 ${p99[-1]} ms"
	done
	record "$peer" mix_qps "$(median "${attack[@]}")"
	record "$peer" mix_normal_pct "$(median "${share[@]}")"
	record "$peer" mix_normal_p99_ms "$(median "${p99[@]}")"
}

peer_version() {
	case $1 in
	bulwark) echo "bulwark $(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)" ;;
	unbound) echo "unbound $(unbound -V | awk '/^Version/ { print $2 }')" ;;
	kresd) kresd --version | awk '{ print "kresd " $NF }' ;;
	pdns) pdns_recursor --version 2>&1 | awk '/PowerDNS Recursor/ { for (i = 1; i <= NF; i++) if ($i == "Recursor") { print "pdns-recursor " $(i + 1); exit } }' ;;
	bind) named -v | awk '{ print "bind " $2 }' ;;
	responder) echo "minimal Go responder (lab/cmd/benchresponder)" ;;
	esac
}

run_peer() {
	local peer=$1 dir="$BENCH_DIR/$1"
	rm -rf "$dir"
	write_config "$peer"
	echo "== $peer: $(peer_version "$peer"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "config:"
	awk 'NF { print "  " $0 }' "$dir/config"
	start_peer "$peer"
	if [[ $peer == responder ]]; then
		cp "$BENCH_DIR/candidates.txt" "$dir/names.txt"
	else
		cold "$peer"
		warm "$peer"
	fi
	cached "$peer"
	[[ $peer == responder ]] || mix "$peer"
	stop_peer "$peer"
}

# allocations records the heap allocations per cached answer in the Go
# benchmark of Bulwark's UDP path.
allocations() {
	local out allocs
	out=$(cd "$root" && go test -run '^$' -bench 'BenchmarkUDPCached$' -benchmem -benchtime 200000x ./internal/server/ 2>&1) ||
		fail "the Go benchmark of the UDP path failed: $out"
	allocs=$(awk '/BenchmarkUDPCached/ { for (i = 1; i <= NF; i++) if ($i == "allocs/op") print $(i - 1) }' <<<"$out")
	echo "== Go benchmark of cached answers over UDP: $allocs allocations per answer"
	record bulwark allocs_per_answer "$allocs 0"
}

print_table() {
	echo "== results: median of $BENCH_ROUNDS runs of $BENCH_SECONDS s (spread in brackets); ratios to Unbound"
	awk -F'\t' -v OFS='\t' -v rate="$BENCH_RATE" -v mixrate="$BENCH_MIX_RATE" '
		{ split($3, v, " "); val[$1, $2] = v[1]; spread[$1, $2] = v[2]; if (!(($1) in seen)) { seen[$1] = 1; peers[++np] = $1 } }
		function show(p, m, d,   s) {
			if (!((p, m) in val)) return "-"
			s = sprintf("%." d "f", val[p, m])
			if (spread[p, m] > 0) s = s sprintf(" (%." d "f)", spread[p, m])
			return s
		}
		function ratio(p, m) {
			if (!((p, m) in val) || !(("unbound", m) in val) || val["unbound", m] == 0) return "-"
			return sprintf("%.2fx", val[p, m] / val["unbound", m])
		}
		END {
			print "resolver", "cached max answers/s", "ratio", "CPU us/answer at " rate "/s", "ratio", "p50/p99/p99.9 ms", \
				"cold answers/s", "ratio", "cold CPU us/question", "ratio", "attack mix resolved/s", "ratio", "normal resolved %, p99 ms", "RSS MiB after cold (+cache file)", "ratio"
			for (i = 1; i <= np; i++) {
				p = peers[i]
				lat = show(p, "p50_ms", 3) "/" show(p, "p99_ms", 3) "/" show(p, "p999_ms", 3)
				rss = show(p, "rss_mib", 0)
				if (val[p, "cache_file_mib"] > 0) rss = rss sprintf(" (+%.0f)", val[p, "cache_file_mib"])
				mem = ((p, "rss_mib") in val) ? val[p, "rss_mib"] + val[p, "cache_file_mib"] : ""
				mr = (mem != "" && val["unbound", "rss_mib"] > 0) ? sprintf("%.2fx", mem / (val["unbound", "rss_mib"] + val["unbound", "cache_file_mib"])) : "-"
				print p, show(p, "max_qps", 0), ratio(p, "max_qps"), show(p, "cpu_us", 2), ratio(p, "cpu_us"), lat, \
					show(p, "cold_qps", 0), ratio(p, "cold_qps"), show(p, "cold_cpu_us", 0), ratio(p, "cold_cpu_us"), show(p, "mix_qps", 0), ratio(p, "mix_qps"), \
					show(p, "mix_normal_pct", 1) ", " show(p, "mix_normal_p99_ms", 3), rss, mr
			}
		}' "$results" | column -t -s $'\t'
	awk -F'\t' '$2 == "allocs_per_answer" { split($3, v, " "); print "Bulwark, Go benchmark of the UDP path: " v[1] " heap allocations per cached answer" }' "$results"
}

main() {
	check_settings
	install_packages
	setup
	: >"$results"
	local peer
	for peer in $BENCH_PEERS; do
		run_peer "$peer"
	done
	allocations
	print_table
}

main "$@"
