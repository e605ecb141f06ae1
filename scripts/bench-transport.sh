#!/usr/bin/env bash
# Measures cached answers over DNS over TLS and DNS over HTTPS (HTTP/2) in
# Bulwark, Unbound and Knot Resolver, one at a time, each pinned to one
# core with one worker, against the lab with DNSSEC validation on. dnsperf,
# pinned to the other core, keeps its connections open for the whole run.
# For each resolver and transport the script prints the queries answered a
# second and the resolver's CPU time per answered query, read from
# /proc/PID/stat, and their ratios to Unbound. docs/benchmarks.md describes
# the method.
#
#   scripts/bench-transport.sh          (make bench-transport runs it)
#
# Environment, with defaults:
#   BENCH_DIR=/tmp/bulwark-bench-transport  lab, configs, logs and results
#   BENCH_PEERS="bulwark unbound"   resolvers to run, in this order; kresd
#                                   can be added, but Knot Resolver 5.6
#                                   fails on the lab (see docs/benchmarks.md)
#   BENCH_CPU=1                     core of the resolver under test
#   BENCH_CLIENT_CPU=0              core of dnsperf
#   BENCH_NAMES=1000                distinct cached names queried
#   BENCH_CLIENTS=10                connections dnsperf keeps open
#   BENCH_SECONDS=10                length of each run
#   BENCH_ROUNDS=3                  runs per resolver and transport; the
#                                   table shows the median and the spread
#
# The lab listens on port 53 of 127.53.0.0/16, so no query leaves the host;
# the resolvers listen on 127.0.0.1. Needs root (port 53, apt).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/bulwark-bench-transport}
BENCH_PEERS=${BENCH_PEERS:-bulwark unbound}
BENCH_CPU=${BENCH_CPU:-1}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
BENCH_NAMES=${BENCH_NAMES:-1000}
BENCH_CLIENTS=${BENCH_CLIENTS:-10}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}

root=$(cd "$(dirname "$0")/.." && pwd)
lab="$BENCH_DIR/lab"
export PATH="$PATH:/usr/sbin:/sbin"

fail() {
	echo "bench-transport: $*" >&2
	exit 1
}

# shellcheck source=scripts/bench-common.sh
source "$root/scripts/bench-common.sh"

peer_pid="" lab_up=""
cleanup() {
	if [[ -n "$peer_pid" ]] && kill -0 "$peer_pid" 2>/dev/null; then
		kill "$peer_pid" 2>/dev/null || true
		wait "$peer_pid" 2>/dev/null || true
	fi
	[[ -n "$lab_up" ]] && make -C "$root" --no-print-directory lab-down LAB="$lab" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# install_packages installs the peers and tools that are missing.
install_packages() {
	"$root/lab/deps.sh" || fail "lab/deps.sh failed"
	# shellcheck disable=SC2046 # one package a word
	install_missing $(missing_packages unbound=unbound kresd=knot-resolver openssl=openssl \
		taskset=util-linux column=bsdextrautils)
}

check_settings() {
	local name value
	for name in BENCH_CPU BENCH_CLIENT_CPU BENCH_NAMES BENCH_CLIENTS BENCH_SECONDS BENCH_ROUNDS; do
		value=${!name}
		[[ "$value" =~ ^[0-9]+$ ]] || fail "invalid $name '$value': want a whole number"
	done
	((BENCH_ROUNDS >= 1 && BENCH_NAMES >= 1 && BENCH_CLIENTS >= 1)) || fail "BENCH_ROUNDS, BENCH_NAMES and BENCH_CLIENTS must be at least 1"
	((BENCH_CPU < $(nproc) && BENCH_CLIENT_CPU < $(nproc))) ||
		fail "BENCH_CPU $BENCH_CPU or BENCH_CLIENT_CPU $BENCH_CLIENT_CPU is not a core of this machine (0 to $(($(nproc) - 1)))"
	local peer
	for peer in $BENCH_PEERS; do
		case $peer in
		bulwark | unbound | kresd) ;;
		*) fail "unknown peer '$peer' in BENCH_PEERS: want bulwark, unbound or kresd" ;;
		esac
	done
}

# json_field prints a string field of lab.json.
json_field() {
	awk -v key="\"$1\":" '$1 == key { v = $2; gsub(/^"|",?$/, "", v); print v; exit }' "$lab/lab.json"
}

setup() {
	print_machine
	echo "== building and starting the lab in $lab"
	make -C "$root" --no-print-directory build >/dev/null || fail "make build failed"
	rm -rf "$lab"
	mkdir -p "$BENCH_DIR"
	lab_up=1
	make -C "$root" --no-print-directory lab-up LAB="$lab" LAB_PORT_OFFSET=0 >"$BENCH_DIR/lab-up.log" 2>&1 ||
		fail "make lab-up failed; see $BENCH_DIR/lab-up.log"
	hints=$(json_field root_hints)
	anchor=$(json_field trust_anchor_ds)
	[[ -f "$hints" && -f "$anchor" ]] || fail "lab.json names no root hints ($hints) or DS trust anchor ($anchor)"
	# The names: the first A queries of the lab's list whose answers are
	# NOERROR, so that every query is a cache hit after the warm-up.
	awk -v n="$((BENCH_NAMES * 2))" '$2 == "A" && c < n { print; c++ }' "$(json_field queries)" >"$BENCH_DIR/candidates.txt"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=bench.dns.lab \
		-keyout "$BENCH_DIR/key.pem" -out "$BENCH_DIR/cert.pem" 2>/dev/null || fail "openssl could not make a certificate"
}

# Ports: plain DNS, DoT, DoH.
declare -A plain_port=([bulwark]=5300 [unbound]=6053 [kresd]=7053)
declare -A dot_port=([bulwark]=5301 [unbound]=6853 [kresd]=7853)
declare -A doh_port=([bulwark]=5302 [unbound]=6443 [kresd]=7443)

write_config() {
	local peer=$1 dir="$BENCH_DIR/$peer"
	mkdir -p "$dir"
	case $peer in
	bulwark)
		# The lab config: DoT on 5301 and DoH on 5302 with the unfiltered
		# flavour, validation on from the lab's anchor, its lists loaded.
		cp "$lab/bulwark.yaml" "$dir/config"
		;;
	unbound)
		cat >"$dir/config" <<EOF
server:
	num-threads: 1
	interface: 127.0.0.1@${plain_port[unbound]}
	interface: 127.0.0.1@${dot_port[unbound]}
	interface: 127.0.0.1@${doh_port[unbound]}
	tls-port: ${dot_port[unbound]}
	https-port: ${doh_port[unbound]}
	tls-service-key: "$BENCH_DIR/key.pem"
	tls-service-pem: "$BENCH_DIR/cert.pem"
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
	incoming-num-tcp: 1000
	tcp-idle-timeout: 60000
	prefetch: no
EOF
		;;
	kresd)
		cat >"$dir/config" <<EOF
net.listen('127.0.0.1', ${plain_port[kresd]}, { kind = 'dns' })
net.listen('127.0.0.1', ${dot_port[kresd]}, { kind = 'tls' })
net.listen('127.0.0.1', ${doh_port[kresd]}, { kind = 'doh2' })
net.tls('$BENCH_DIR/cert.pem', '$BENCH_DIR/key.pem')
-- The lab root: its hints and its trust anchor, no updates from the
-- real root.
modules.unload('ta_update')
modules.unload('ta_signal_query')
modules.unload('ta_sentinel')
modules.unload('detect_time_skew')
modules.unload('detect_time_jump')
trust_anchors.remove('.')
trust_anchors.add_file('$anchor', true)
modules.load('hints > iterate')
hints.root_file('$hints')
cache.size = 200 * MB
EOF
		;;
	esac
}

start_peer() {
	local peer=$1 dir="$BENCH_DIR/$1"
	case $peer in
	bulwark) GOMAXPROCS=1 taskset -c "$BENCH_CPU" "$root/bin/bulwark" serve -config "$dir/config" >"$dir/log" 2>&1 </dev/null & ;;
	unbound) taskset -c "$BENCH_CPU" unbound -d -c "$dir/config" >"$dir/log" 2>&1 </dev/null & ;;
	kresd) (cd "$dir" && exec taskset -c "$BENCH_CPU" kresd -n -c "$dir/config" "$dir") >"$dir/log" 2>&1 </dev/null & ;;
	esac
	peer_pid=$!
	local i
	for i in $(seq 300); do
		kdig @127.0.0.1 -p "${plain_port[$peer]}" +timeout=1 +retry=0 . SOA >/dev/null 2>&1 && return
		kill -0 "$peer_pid" 2>/dev/null || fail "$peer exited at start; see $dir/log"
		sleep 0.1
	done
	fail "$peer did not answer on port ${plain_port[$peer]} within 30 s; see $dir/log"
}

stop_peer() {
	local peer=$1 i
	kill "$peer_pid" 2>/dev/null || fail "$peer exited before it was stopped"
	for i in $(seq 300); do
		kill -0 "$peer_pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$peer_pid" 2>/dev/null && fail "$peer did not stop within 60 s of SIGTERM"
	wait "$peer_pid" 2>/dev/null || true
	peer_pid=""
}

# warm fills the peer's cache over plain DNS and keeps the names that
# resolved, so that the measured runs are all cache hits.
warm() {
	local peer=$1 dir="$BENCH_DIR/$1"
	: >"$dir/names.txt"
	local name type
	while read -r name type; do
		if kdig @127.0.0.1 -p "${plain_port[$peer]}" +timeout=5 +retry=1 "$name" "$type" 2>/dev/null | grep -q 'status: NOERROR'; then
			echo "$name $type" >>"$dir/names.txt"
		fi
		(($(wc -l <"$dir/names.txt") >= BENCH_NAMES)) && break
	done <"$BENCH_DIR/candidates.txt"
	local n
	n=$(wc -l <"$dir/names.txt")
	((n * 10 >= BENCH_NAMES * 9)) || fail "$peer resolved only $n of the first $((BENCH_NAMES * 2)) names; see $dir/log"
	echo "warm-up: $n names resolved and cached"
}

# measure runs dnsperf over transport $2 against peer $1 and prints
# "qps cpu_us_per_query".
measure() {
	local peer=$1 mode=$2 dir="$BENCH_DIR/$1" port args=()
	case $mode in
	dot) port=${dot_port[$peer]} ;;
	doh)
		port=${doh_port[$peer]}
		args=(-O "doh-uri=https://127.0.0.1:$port/dns-query" -O doh-method=POST)
		;;
	esac
	local before after out
	before=$(cpu_ticks)
	out=$(taskset -c "$BENCH_CLIENT_CPU" dnsperf -m "$mode" -s 127.0.0.1 -p "$port" -d "$dir/names.txt" \
		-c "$BENCH_CLIENTS" -l "$BENCH_SECONDS" -q 500 -t 5 "${args[@]}" 2>&1) ||
		fail "dnsperf -m $mode against $peer failed: $out"
	after=$(cpu_ticks)
	echo "$out" >>"$dir/dnsperf-$mode.txt"
	local completed qps lost
	completed=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
	qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
	lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
	[[ -n "$completed" && -n "$qps" && "$completed" -gt 0 ]] || fail "no dnsperf result for $peer over $mode: $out"
	local noerror
	noerror=$(awk '{ for (i = 1; i < NF; i++) if ($i == "NOERROR") { print $(i + 1); exit } }' <<<"$out")
	[[ -n "$noerror" ]] || noerror=0
	((noerror * 100 >= completed * 99)) || fail "$peer over $mode: only $noerror of $completed responses were NOERROR"
	echo "$qps $(calc "($after - $before) / $(getconf CLK_TCK) * 1000000 / $completed" 2) $lost"
}

run_peer() {
	local peer=$1 dir="$BENCH_DIR/$1"
	rm -rf "$dir"
	write_config "$peer"
	echo "== $peer: $(peer_version "$peer"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "config:"
	awk 'NF { print "  " $0 }' "$dir/config"
	start_peer "$peer"
	warm "$peer"
	local mode round qps=() cpu=() result
	for mode in dot doh; do
		qps=() cpu=()
		for round in $(seq "$BENCH_ROUNDS"); do
			result=$(measure "$peer" "$mode")
			read -r q c lost <<<"$result"
			echo "$mode round $round: $q answers/s, $c us of CPU per answer, $lost lost"
			qps+=("$q")
			cpu+=("$c")
		done
		echo -e "$peer\t$mode\t$(median "${qps[@]}")\t$(median "${cpu[@]}")" >>"$BENCH_DIR/results.tsv"
	done
	stop_peer "$peer"
}

peer_version() {
	case $1 in
	bulwark) echo "bulwark $(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)" ;;
	unbound) echo "unbound $(unbound -V | awk '/^Version/ { print $2 }')" ;;
	kresd) kresd --version | awk '{ print "kresd " $NF }' ;;
	esac
}

print_table() {
	echo "== results: cached answers, $BENCH_CLIENTS connections, median of $BENCH_ROUNDS runs of $BENCH_SECONDS s (spread in brackets)"
	{
		printf 'resolver\ttransport\tanswers/s\tCPU us/answer\tanswers/s vs Unbound\tCPU vs Unbound\n'
		awk -F'\t' -v OFS='\t' '
			{ split($3, q, " "); split($4, c, " "); key[NR] = $1 "\t" $2; qps[NR] = q[1]; qs[NR] = q[2]; cpu[NR] = c[1]; cs[NR] = c[2]
			  if ($1 == "unbound") { uq[$2] = q[1]; uc[$2] = c[1] } ; mode[NR] = $2 }
			END {
				for (i = 1; i <= NR; i++) {
					rq = (mode[i] in uq && uq[mode[i]] > 0) ? sprintf("%.2fx", qps[i] / uq[mode[i]]) : "-"
					rc = (mode[i] in uc && uc[mode[i]] > 0) ? sprintf("%.2fx", cpu[i] / uc[mode[i]]) : "-"
					print key[i], sprintf("%.0f (%.0f)", qps[i], qs[i]), sprintf("%.2f (%.2f)", cpu[i], cs[i]), rq, rc
				}
			}' "$BENCH_DIR/results.tsv"
	} | column -t -s $'\t'
}

main() {
	check_settings
	install_packages
	setup
	: >"$BENCH_DIR/results.tsv"
	local peer
	for peer in $BENCH_PEERS; do
		run_peer "$peer"
	done
	print_table
}

main "$@"
