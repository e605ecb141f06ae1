#!/usr/bin/env bash
# Loads one generated response policy zone in Bulwark, Unbound and Knot
# Resolver, one at a time and each pinned to one core, and measures for
# each: load time, memory after the load, answers during the load, and
# lookup latency at a fixed query rate. For Bulwark it also measures a
# reload on SIGHUP and runs the Go benchmark of policy.Set.MatchName.
# docs/benchmarks.md describes the method.
#
#   scripts/bench-rpz.sh          (make bench-rpz runs it)
#
# Environment, with defaults:
#   RPZ_NAMES=10000000            QNAME triggers in the zone, 10% wildcards
#   BENCH_DIR=/tmp/bulwark-bench-rpz   zone, configs, logs and results
#   BENCH_PEERS="bulwark unbound kresd"   peers to run, in this order
#   BENCH_CPU=1                   core of the server under test
#   BENCH_CLIENT_CPU=0            core of dnsperf and the probes
#   BENCH_QPS=2000                query rate of each dnsperf run
#   BENCH_SECONDS=10              length of each dnsperf run
#   LOAD_TIMEOUT=1800             seconds a peer may take to load the zone
#
# Every server listens on 127.0.0.1 port 6400. The peers resolve through
# 127.0.0.1 port 6499, where nothing listens, so no query leaves the host;
# a check under strace proves it for each peer before the measured runs.
# Needs root to install missing Debian packages.
set -euo pipefail

RPZ_NAMES=${RPZ_NAMES:-10000000}
BENCH_DIR=${BENCH_DIR:-/tmp/bulwark-bench-rpz}
BENCH_PEERS=${BENCH_PEERS:-bulwark unbound kresd}
BENCH_CPU=${BENCH_CPU:-1}
BENCH_CLIENT_CPU=${BENCH_CLIENT_CPU:-0}
BENCH_QPS=${BENCH_QPS:-2000}
BENCH_SECONDS=${BENCH_SECONDS:-10}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-1800}

readonly port=6400 dead_port=6499 address=127.0.0.1
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

fail() {
	echo "bench-rpz: $*" >&2
	exit 1
}

now() { date +%s.%N; }

# shellcheck source=scripts/bench-common.sh
source "$root/scripts/bench-common.sh"

# Processes this script started, stopped on exit.
peer_pid="" prober_pid="" log_watch_pid=""
cleanup() {
	[[ -n "$prober_pid" ]] && kill "$prober_pid" 2>/dev/null || true
	[[ -n "$log_watch_pid" ]] && kill "$log_watch_pid" 2>/dev/null || true
	if [[ -n "$peer_pid" ]] && kill -0 "$peer_pid" 2>/dev/null; then
		kill "$peer_pid" 2>/dev/null || true
		wait "$peer_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
# Exit on SIGTERM and SIGINT, so that the EXIT trap stops the server.
trap 'exit 143' TERM
trap 'exit 130' INT

# install_packages installs the peers and tools that are missing.
# policy.rpz() of Knot Resolver needs lua-cqueues to watch the zone file.
install_packages() {
	local missing
	missing=$(missing_packages dig=bind9-dnsutils dnsperf=dnsperf unbound=unbound kresd=knot-resolver \
		taskset=util-linux strace=strace ss=iproute2 column=bsdextrautils)
	dpkg -s lua-cqueues >/dev/null 2>&1 || missing+=" lua-cqueues"
	# shellcheck disable=SC2086 # one package a word
	install_missing $missing
}

check_settings() {
	local name value
	for name in RPZ_NAMES BENCH_CPU BENCH_CLIENT_CPU BENCH_QPS BENCH_SECONDS LOAD_TIMEOUT; do
		value=${!name}
		[[ "$value" =~ ^[0-9]+$ ]] || fail "invalid $name '$value': want a whole number"
	done
	((RPZ_NAMES >= 100)) || fail "invalid RPZ_NAMES $RPZ_NAMES: want at least 100"
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

build() {
	echo "== building"
	make -C "$root" --no-print-directory build >/dev/null || fail "make build failed"
	mkdir -p "$BENCH_DIR/bin"
	(cd "$root" && go build -o "$BENCH_DIR/bin/rpzgen" ./lab/cmd/rpzgen) || fail "go build ./lab/cmd/rpzgen failed"
	(cd "$root" && go test -c -o "$BENCH_DIR/bin/policy.test" ./internal/policy/) || fail "go test -c ./internal/policy/ failed"
}

# generate writes the zone of $1 names into $2 unless a zone of the same
# generator version is there already.
generate() {
	local names=$1 dir=$2
	local stamp
	stamp="names=$names generator=$(git -C "$root" rev-parse HEAD:lab/rpzgen)"
	if [[ -f "$dir/stamp" && "$(cat "$dir/stamp")" == "$stamp" && -f "$dir/probes.env" ]]; then
		echo "reusing $dir/rpz.zone ($stamp)"
	else
		rm -f "$dir/stamp"
		local start
		start=$(now)
		"$BENCH_DIR/bin/rpzgen" -names "$names" -out "$dir" || fail "rpzgen -names $names -out $dir failed"
		echo "generated in $(calc "$(now) - $start" 1) s"
		echo "$stamp" >"$dir/stamp"
	fi
	[[ -s "$dir/rpz.zone" ]] || fail "zone $dir/rpz.zone is missing or empty"
}

check_port_free() {
	if ss -Hlnu "sport = :$1" | grep -q . || ss -Hlnt "sport = :$1" | grep -q .; then
		fail "port $1 is in use on this host: $(ss -Hlnup "sport = :$1" | head -1); stop that server first"
	fi
}

# --- peer configs -----------------------------------------------------------

write_bulwark_config() {
	local dir=$1 zone=$2
	cat >"$dir/root.hints" <<-EOF
		; Root hints of the RPZ benchmark: one server on loopback, port $dead_port
		; in bulwark.yaml, where nothing listens.
		.               3600000 IN NS a.root.bench.
		a.root.bench.   3600000 IN A  $address
	EOF
	cat >"$dir/bulwark.yaml" <<-EOF
		server:
		  listen:
		    - address: $address:$port
		      transports: [udp, tcp]
		      flavour: protective
		resolver:
		  root_hints: $dir/root.hints
		  upstream_port: $dead_port
		  allowed_upstream_networks: [$address/32]
		cache:
		  max_bytes: 64MiB
		log:
		  level: info
		  format: text
		policy:
		  lists:
		    - name: bench-rpz
		      file: $zone
		      format: rpz
		      category: malware
		testing:
		  enabled: true
	EOF
}

write_unbound_config() {
	local dir=$1 zone=$2
	cat >"$dir/unbound.conf" <<-EOF
		server:
		    interface: $address
		    port: $port
		    do-ip6: no
		    num-threads: 1
		    so-reuseport: no
		    username: ""
		    chroot: ""
		    directory: "$dir"
		    pidfile: ""
		    use-syslog: no
		    logfile: ""
		    log-time-ascii: yes
		    verbosity: 1
		    module-config: "respip validator iterator"
		    # No trust anchor: no RFC 5011 updates and no DNSKEY queries.
		    do-not-query-localhost: no
		    prefetch: no
		    prefetch-key: no
		    trust-anchor-signaling: no
		    root-key-sentinel: no
		rpz:
		    name: rpz.bench.
		    zonefile: $zone
		# Every name outside the RPZ goes to a port where nothing listens.
		forward-zone:
		    name: "."
		    forward-addr: $address@$dead_port
	EOF
	unbound-checkconf "$dir/unbound.conf" >/dev/null || fail "unbound-checkconf rejects $dir/unbound.conf"
}

write_kresd_config() {
	local dir=$1 zone=$2
	cat >"$dir/kresd.conf" <<-EOF
		log_target('stderr')
		log_level('info')
		net.ipv6 = false
		net.listen('$address', $port, { kind = 'dns' })
		-- No trust anchor and none of the modules that query the root on
		-- their own: RFC 5011 updates, priming, time skew checks.
		trust_anchors.remove('.')
		modules.unload('ta_update')
		modules.unload('ta_signal_query')
		modules.unload('ta_sentinel')
		modules.unload('priming')
		modules.unload('detect_time_skew')
		modules.unload('detect_time_jump')
		cache.open(64 * MB, 'lmdb://$dir/cache')
		policy.add(policy.rpz(policy.DENY, '$zone', true))
		-- Every name outside the RPZ goes to a port where nothing listens.
		policy.add(policy.all(policy.STUB({'$address@$dead_port'})))
		-- Knot Resolver logs nothing when an RPZ is loaded: this line
		-- marks the end of the load.
		log_info(require('ffi').C.LOG_GRP_POLICY, 'bench-rpz: policy.rpz returned')
	EOF
}

# loaded_pattern is the log line that a peer prints once the zone is
# loaded.
loaded_pattern() {
	case $1 in
	bulwark) echo 'msg="list loaded"' ;;
	unbound) echo 'start of service' ;;
	kresd) echo 'bench-rpz: policy.rpz returned' ;;
	esac
}

config_file() {
	case $1 in
	bulwark) echo "$2/bulwark.yaml" ;;
	unbound) echo "$2/unbound.conf" ;;
	kresd) echo "$2/kresd.conf" ;;
	esac
}

peer_version() {
	case $1 in
	bulwark) "$root/bin/bulwark" version ;;
	unbound) unbound -V | head -1 | sed 's/^Version /unbound /' ;;
	kresd) kresd --version | sed 's/^Knot Resolver, version /kresd /' ;;
	esac
}

# start_peer starts peer $1 with its config in $2, pinned to BENCH_CPU and
# logging to $2/server.log, under the command prefix in the rest of the
# arguments. It sets peer_pid.
start_peer() {
	local peer=$1 dir=$2
	shift 2
	local cmd
	case $peer in
	bulwark) cmd=("$root/bin/bulwark" serve -config "$dir/bulwark.yaml") ;;
	unbound) cmd=(unbound -d -c "$dir/unbound.conf") ;;
	kresd)
		mkdir -p "$dir/run"
		cmd=(kresd -n -c "$dir/kresd.conf" "$dir/run")
		;;
	esac
	"$@" taskset -c "$BENCH_CPU" "${cmd[@]}" >"$dir/server.log" 2>&1 </dev/null &
	peer_pid=$!
}

stop_peer() {
	local pid=$1 name=$2
	kill "$pid" 2>/dev/null || fail "$name (pid $pid) exited before it was stopped"
	# A peer that holds gigabytes of policy can take many seconds to free
	# them: Unbound with ten million names took more than 10 s.
	local i
	for i in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$pid" 2>/dev/null && fail "$name (pid $pid) did not stop within 120 s of SIGTERM"
	wait "$pid" 2>/dev/null || true
	peer_pid=""
}

# --- queries ----------------------------------------------------------------

# query prints one word for a query of name $1 type $2: the rcode, "local"
# when the answer holds LOCAL_ADDR, "refused" when nothing listens, or
# "timeout" after 1 s.
query() {
	local out
	out=$(dig @"$address" -p "$port" +tries=1 +timeout=1 +noall +comments +answer "$1" "$2" 2>&1) || true
	case $out in
	*"connection refused"*) echo refused ;;
	*"timed out"*) echo timeout ;;
	*"status: NOERROR"*"$LOCAL_ADDR"*) echo local ;;
	*"status: "*) sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out" | head -1 ;;
	*) echo "error" ;;
	esac
}

# prober sends, every 0.2 s until the file $1/stop exists, one query of
# each "kind name type [check]" spec given after $1, each in the
# background, and writes "kind tick sent done outcome check" lines to
# $1/results. When the query is answered and the spec names a check name,
# the check name is queried right after and its outcome is the last field,
# "-" otherwise: NXDOMAIN there means the list was complete when the
# server answered. The prober runs on BENCH_CLIENT_CPU, as the rest of the
# script does.
prober() {
	local out=$1
	shift
	: >"$out/results"
	local tick=0
	while [[ ! -e "$out/stop" ]]; do
		local spec
		for spec in "$@"; do
			(
				read -r kind name qtype check <<<"$spec"
				sent=$(now)
				outcome=$(query "$name" "$qtype")
				done=$(now)
				after=-
				if [[ -n "$check" ]] && answered "$outcome"; then
					after=$(query "$check" A)
				fi
				echo "$kind $tick $sent $done $outcome $after" >>"$out/results"
			) &
		done
		tick=$((tick + 1))
		sleep 0.2
	done
	wait
}

answered() {
	[[ "$1" != timeout && "$1" != refused && "$1" != error ]]
}

start_prober() {
	local out=$1
	shift
	rm -rf "$out"
	mkdir -p "$out"
	prober "$out" "$@" &
	prober_pid=$!
}

stop_prober() {
	touch "$1/stop"
	wait "$prober_pid" || true
	prober_pid=""
}

# first_ok prints "sent done" of the probe of kind $2 in $1/results that
# first ended with outcome $3, or nothing.
first_ok() {
	awk -v kind="$2" -v want="$3" '$1 == kind && $5 == want { print $3, $4 }' "$1/results" | sort -n -k2 | head -1
}

# prompt is the longest a probe may wait and still count as answered
# during a load: one probe interval. A longer wait means the server held
# the query until it could answer.
readonly prompt=0.2

# during prints "answered/sent" for the probes of kind $2 sent before time
# $3. A probe is answered if a response of any rcode, or of rcode $4 when
# given, came within $prompt seconds. Probes answered within $prompt
# seconds once the list was complete (their check name was blocked right
# after) are left out: they were sent when the load had about ended.
during() {
	awk -v kind="$2" -v end="$3" -v want="${4:-}" -v prompt="$prompt" '
		$1 == kind && $3 < end && !($6 == "NXDOMAIN" && $4 - $3 <= prompt) {
			sent++
			answered = $5 != "timeout" && $5 != "refused" && $5 != "error"
			if (answered && (want == "" || $5 == want) && $4 - $3 <= prompt) ok++
		}
		END { printf "%d/%d", ok, sent }' "$1/results"
}

# outcomes summarises the outcomes of the probes of kind $2 sent before
# time $3. Answers that took longer than $prompt seconds are marked late,
# and answers given once the check name was blocked are marked complete.
outcomes() {
	awk -v kind="$2" -v end="$3" -v prompt="$prompt" '
		$1 == kind && $3 < end {
			o = $5
			if (o != "timeout" && o != "refused" && o != "error") {
				if ($4 - $3 > prompt) {
					o = o " late"
					if ($4 - $3 > slowest) slowest = $4 - $3
				}
				if ($6 == "NXDOMAIN") o = o " complete"
			}
			n[o]++
		}
		END {
			for (k in n) out = out sprintf("%s%s %d", out == "" ? "" : ", ", k, n[k])
			if (slowest > 0) out = out sprintf(" (slowest late answer %.2f s)", slowest)
			print (out == "" ? "none" : out)
		}' "$1/results"
}

memory() {
	awk -v key="$2:" '$1 == key { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

# --- measurements -----------------------------------------------------------

# wait_loaded waits until a probe of kind $2 in $3 gets NXDOMAIN from peer
# $1 (pid $4) and prints "sent done" of the first such probe. It fails when
# the peer exits or LOAD_TIMEOUT passes after $5.
wait_loaded() {
	local peer=$1 kind=$2 out=$3 pid=$4 start=$5 first
	while true; do
		first=$(first_ok "$out" "$kind" NXDOMAIN)
		if [[ -n "$first" ]]; then
			echo "$first"
			return
		fi
		kill -0 "$pid" 2>/dev/null || fail "$peer exited; its log: $(tail -5 "$BENCH_DIR/$peer/server.log")"
		if (($(calc "$(now) - $start > $LOAD_TIMEOUT" 0))); then
			fail "$peer did not block the $kind probe within LOAD_TIMEOUT=$LOAD_TIMEOUT s; outcomes: $(outcomes "$out" "$kind" "$(now)")"
		fi
		sleep 0.2
	done
}

# watch_log writes to the file $5 the seconds from $4 until the log $1 has
# more than $3 lines that contain the string $2. It polls every 0.1 s and
# gives up after LOAD_TIMEOUT.
watch_log() {
	local log=$1 pattern=$2 before=$3 start=$4 out=$5
	local deadline
	deadline=$(calc "$start + $LOAD_TIMEOUT")
	while (($(calc "$(now) < $deadline" 0))); do
		if (($(grep -cF -- "$pattern" "$log" 2>/dev/null || true) > before)); then
			calc "$(now) - $start" >"$out"
			return
		fi
		sleep 0.1
	done
}

start_log_watch() {
	rm -f "$5"
	watch_log "$@" &
	log_watch_pid=$!
}

# log_seconds waits up to 5 s for the result of the log watch in file $1
# and prints it, or "none" when the line did not come.
log_seconds() {
	local i
	for i in $(seq 50); do
		if [[ -s "$1" ]]; then
			cat "$1"
			log_watch_pid=""
			return
		fi
		sleep 0.1
	done
	kill "$log_watch_pid" 2>/dev/null || true
	log_watch_pid=""
	echo none
}

# check_answers checks that the peer blocks the listed probe names and
# answers the local-data name.
check_answers() {
	local peer=$1 got
	for spec in "$BLOCKED_NAME A NXDOMAIN" "$WILDCARD_NAME A NXDOMAIN" "$LOCAL_NAME A local"; do
		read -r name qtype want <<<"$spec"
		got=$(query "$name" "$qtype")
		[[ "$got" == "$want" ]] || fail "$peer answers $name $qtype with $got, want $want"
	done
}

# run_dnsperf sends the queries of file $2 to peer $1 for BENCH_SECONDS at
# BENCH_QPS and prints "median_ms p99_ms avg_ms lost_percent", failing
# unless at least 99% of the responses have rcode $3.
run_dnsperf() {
	local peer=$1 file=$2 rcode=$3 log=$4
	taskset -c "$BENCH_CLIENT_CPU" dnsperf -s "$address" -p "$port" -d "$file" \
		-l "$BENCH_SECONDS" -Q "$BENCH_QPS" -c 1 -q 100 -t 1 -v >"$log" 2>&1 ||
		fail "dnsperf against $peer failed; see $log"
	local completed expected avg lost percentiles
	completed=$(awk '/Queries completed:/ { print $3 }' "$log")
	expected=$(awk -v rcode="$rcode" '/Response codes:/ { for (i = 3; i <= NF; i++) if ($i == rcode) print $(i+1) }' "$log")
	[[ -n "$completed" && "$completed" -gt 0 ]] || fail "dnsperf against $peer completed no query; see $log"
	((${expected:-0} * 100 >= completed * 99)) ||
		fail "$peer answered ${expected:-0} of $completed queries of $file with $rcode, want at least 99%; $(grep 'Response codes' "$log")"
	avg=$(awk '/Average Latency/ { print $4 * 1000 }' "$log")
	lost=$(awk '/Queries lost:/ { gsub(/[()%]/, "", $4); print $4 }' "$log")
	# With -v, dnsperf prints "> RCODE name type seconds" per response.
	percentiles=$(awk '/^> [A-Z]+ / { print $NF * 1000 }' "$log" | sort -n |
		awk '{ v[NR] = $1 }
			# The nearest-rank percentile.
			function at(q, i) { i = int(NR * q); if (i < NR * q) i++; if (i < 1) i = 1; return v[i] }
			END { if (NR) printf "%.3f %.3f", at(0.5), at(0.99) }')
	[[ -n "$percentiles" ]] || fail "no per-query latency in $log"
	echo "$percentiles $(calc "$avg" 3) $lost"
}

# check_sockets prints the peer's sockets and fails when one is connected
# to an address outside loopback.
check_sockets() {
	local peer=$1 pid=$2 sockets bad
	sockets=$(ss -Htunap | grep "pid=$pid," || true)
	echo "$peer sockets:"
	echo "${sockets:-  (none)}" | sed 's/^/  /'
	bad=$(awk '{ print $6 }' <<<"$sockets" | grep -vE '^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]|0\.0\.0\.0|\*|\[::\]):[0-9*]+$' || true)
	[[ -z "$bad" ]] || fail "$peer has sockets to addresses outside loopback: $bad"
}

# check_network runs peer $1 on the small zone $2 under strace, queries a
# blocked, a local-data and an unlisted name, and fails if the peer sent a
# packet or connected to any address outside loopback.
check_network() {
	local peer=$1 zone=$2 dir="$BENCH_DIR/check/$1"
	rm -rf "$dir"
	mkdir -p "$dir"
	"write_${peer}_config" "$dir" "$zone"
	check_port_free "$port"

	start_peer "$peer" "$dir" strace -f -qq -e trace=connect,sendto,sendmsg,sendmmsg -o "$dir/strace.log"
	# Stop the traced process, not strace: strace would leave it running.
	local strace_pid=$peer_pid child="" i got=""
	for i in $(seq 50); do
		child=$(ps -o pid= --ppid "$strace_pid" | tr -d ' ')
		[[ -n "$child" ]] && break
		sleep 0.1
	done
	[[ -n "$child" ]] || fail "cannot find the $peer process under strace (pid $strace_pid)"
	peer_pid=$child

	for i in $(seq 150); do
		got=$(query "$BLOCKED_NAME" A)
		[[ "$got" == NXDOMAIN ]] && break
		kill -0 "$child" 2>/dev/null || fail "$peer exited under strace; its log: $(tail -5 "$dir/server.log")"
		sleep 0.2
	done
	[[ "$got" == NXDOMAIN ]] || fail "$peer under strace did not block $BLOCKED_NAME within 30 s (got $got)"
	query "$LOCAL_NAME" A >/dev/null
	query "$UNLISTED_NAME" A >/dev/null
	sleep 3 # timers that run after the start, such as priming
	stop_peer "$child" "$peer"
	wait "$strace_pid" 2>/dev/null || true

	local addresses outside upstream
	addresses=$(grep -oE 'inet_addr\("[^"]*"\)|inet_pton\(AF_INET6, "[^"]*"' "$dir/strace.log" |
		sed -E 's/.*"([^"]*)".*/\1/' | sort | uniq -c || true)
	outside=$(awk '$2 !~ /^127\./ && $2 != "::1" { print $2 }' <<<"$addresses")
	upstream=$(grep -c "htons($dead_port)" "$dir/strace.log" || true)
	[[ -z "$outside" ]] || fail "$peer sent to addresses outside loopback: $outside; see $dir/strace.log"
	echo "$peer: $(awk '{ printf "%s (%d calls) ", $2, $1 }' <<<"$addresses")- all loopback; $upstream calls to port $dead_port (the upstream where nothing listens)"
}

# measure_peer runs one peer on the full zone and appends its row to
# $BENCH_DIR/results.tsv.
measure_peer() {
	local peer=$1 zone=$2 dir="$BENCH_DIR/$1"
	rm -rf "$dir"
	mkdir -p "$dir"
	local list_file=$zone
	if [[ $peer == bulwark ]]; then
		# The reload replaces this link, never the generated zone.
		list_file="$dir/rpz.zone"
		ln "$zone" "$list_file" 2>/dev/null || cp "$zone" "$list_file"
	fi
	"write_${peer}_config" "$dir" "$list_file"
	echo "== $peer: $(peer_version "$peer"); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "config:"
	sed 's/^/  /' "$(config_file "$peer" "$dir")"
	check_port_free "$port"

	local start pid
	start=$(now)
	start_peer "$peer" "$dir"
	pid=$peer_pid
	start_log_watch "$dir/server.log" "$(loaded_pattern "$peer")" 0 "$start" "$dir/log-seconds"
	start_prober "$dir/load" "blocked $BLOCKED_NAME A" "local $LOCAL_NAME A $BLOCKED_NAME"
	local first ready load_s log_s rss hwm answered
	first=$(wait_loaded "$peer" blocked "$dir/load" "$pid" "$start")
	ready=${first#* }
	load_s=$(calc "$ready - $start")
	stop_prober "$dir/load"
	log_s=$(log_seconds "$dir/log-seconds")
	answered=$(during "$dir/load" local "$ready")
	sleep 1
	rss=$(memory "$pid" VmRSS)
	hwm=$(memory "$pid" VmHWM)
	echo "loaded: blocked after $load_s s, log line after $log_s s; RSS $rss MiB, peak $hwm MiB"
	echo "local-data probes sent during the load: $answered answered within $prompt s; outcomes: $(outcomes "$dir/load" local "$ready")"

	check_answers "$peer"
	local listed local_data
	listed=$(run_dnsperf "$peer" "$ZONE_DIR/queries-listed.txt" NXDOMAIN "$dir/dnsperf-listed.txt")
	local_data=$(run_dnsperf "$peer" "$ZONE_DIR/queries-local.txt" NOERROR "$dir/dnsperf-local.txt")
	echo "dnsperf at $BENCH_QPS qps for $BENCH_SECONDS s (median, 99th percentile and mean ms, lost %): listed $listed; local data $local_data"
	check_sockets "$peer" "$pid"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$peer" "$(peer_version "$peer")" "$load_s" "$log_s" \
		"$rss" "$hwm" "$answered" "$listed" "$local_data" >>"$BENCH_DIR/results.tsv"

	if [[ $peer == bulwark ]]; then
		measure_reload "$dir" "$pid"
	fi
	stop_peer "$pid" "$peer"
}

# measure_reload replaces Bulwark's list file with a copy that adds
# NEW_NAME, sends SIGHUP and measures until NEW_NAME is blocked, checking
# that BLOCKED_NAME stays blocked throughout.
measure_reload() {
	local dir=$1 pid=$2
	local file="$dir/rpz.zone"
	cp "$file" "$file.new"
	echo "${NEW_NAME%.} CNAME ." >>"$file.new"
	# Keep the modification time, so that only SIGHUP, not the 5-second
	# file check, starts the reload.
	touch -r "$file" "$file.new"
	mv "$file.new" "$file"
	[[ $(query "$NEW_NAME" A) != NXDOMAIN ]] || fail "bulwark blocks $NEW_NAME before the reload"

	local reloads start
	reloads=$(grep -c 'msg="policy reloaded"' "$dir/server.log" || true)
	start=$(now)
	start_log_watch "$dir/server.log" 'msg="policy reloaded"' "$reloads" "$start" "$dir/reload-log-seconds"
	start_prober "$dir/reload" "new $NEW_NAME A" "blocked $BLOCKED_NAME A" "local $LOCAL_NAME A $NEW_NAME"
	kill -HUP "$pid"
	local first ready reload_s log_s answered blocked rss hwm
	first=$(wait_loaded bulwark new "$dir/reload" "$pid" "$start")
	ready=${first#* }
	reload_s=$(calc "$ready - $start")
	stop_prober "$dir/reload"
	log_s=$(log_seconds "$dir/reload-log-seconds")
	answered=$(during "$dir/reload" local "$ready")
	blocked=$(during "$dir/reload" blocked "$ready" NXDOMAIN)
	sleep 1
	rss=$(memory "$pid" VmRSS)
	hwm=$(memory "$pid" VmHWM)
	echo "reload: $NEW_NAME blocked after $reload_s s, log line after $log_s s; RSS $rss MiB, peak $hwm MiB"
	echo "during the reload: local data $answered answered within $prompt s ($(outcomes "$dir/reload" local "$ready"));" \
		"$BLOCKED_NAME blocked within $prompt s in $blocked probes ($(outcomes "$dir/reload" blocked "$ready"))"
	# A late answer is a finding, but an answer other than NXDOMAIN is a bug.
	local unblocked
	unblocked=$(awk -v end="$ready" '$1 == "blocked" && $3 < end && $5 != "NXDOMAIN" && $5 != "timeout" { n++ }
		END { print n + 0 }' "$dir/reload/results")
	((unblocked == 0)) || fail "bulwark answered $BLOCKED_NAME without blocking it in $unblocked probes during the reload"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "bulwark-reload" "$(peer_version bulwark)" "$reload_s" "$log_s" \
		"$rss" "$hwm" "$answered" "-" "-" >>"$BENCH_DIR/results.tsv"
}

run_go_benchmark() {
	echo "== Go benchmark of policy.Set.MatchName on $RPZ_NAMES generated names, pinned to core $BENCH_CPU"
	local log="$BENCH_DIR/go-benchmark.txt"
	RPZ_NAMES=$RPZ_NAMES taskset -c "$BENCH_CPU" "$BENCH_DIR/bin/policy.test" \
		-test.run '^$' -test.bench '^BenchmarkMatchNameRPZ$' -test.benchtime 2s -test.v >"$log" 2>&1 ||
		fail "the Go benchmark failed; see $log"
	grep -E 'ns/op|built a set' "$log" | sed 's/^ *//' || fail "no benchmark result in $log"
}

print_table() {
	echo "== results: $RPZ_NAMES names ($(calc "$RPZ_BYTES / 1048576" 1) MiB zone), dnsperf at $BENCH_QPS qps for $BENCH_SECONDS s"
	{
		printf 'peer\tversion\tload s\tlog line s\tRSS MiB\tpeak MiB\tanswered during load\tlisted ms p50/p99/mean, lost %%\tlocal data ms p50/p99/mean, lost %%\n'
		awk -F'\t' -v OFS='\t' '
			function lookup(field, parts) {
				if (field == "-") return "-"
				split(field, parts, " ")
				return parts[1] "/" parts[2] "/" parts[3] ", " parts[4]
			}
			{ print $1, $2, $3, $4, $5, $6, $7, lookup($8), lookup($9) }' "$BENCH_DIR/results.tsv"
	} | column -t -s $'\t'
}

main() {
	check_settings
	install_packages
	print_machine
	build
	check_port_free "$dead_port"
	# Everything but the server under test runs on BENCH_CLIENT_CPU.
	taskset -cp "$BENCH_CLIENT_CPU" $$ >/dev/null || fail "taskset cannot pin this script to core $BENCH_CLIENT_CPU"

	echo "== zone of $RPZ_NAMES names"
	ZONE_DIR="$BENCH_DIR/zone-$RPZ_NAMES"
	generate "$RPZ_NAMES" "$ZONE_DIR"
	ls -l "$ZONE_DIR/rpz.zone"
	# shellcheck source=/dev/null
	source "$ZONE_DIR/probes.env"
	echo "zone: $RPZ_TRIGGERS triggers ($RPZ_EXACT exact, $RPZ_WILDCARD wildcard), $RPZ_LOCAL_RECORDS local-data and $RPZ_PASSTHRU passthru records, $RPZ_BYTES bytes"
	echo "probes: blocked $BLOCKED_NAME, below a wildcard $WILDCARD_NAME, local data $LOCAL_NAME ($LOCAL_ADDR), unlisted $UNLISTED_NAME"

	echo "== network check: each peer on a zone of 1000 names under strace"
	local check_zone="$BENCH_DIR/zone-check"
	generate 1000 "$check_zone" >/dev/null
	local peer
	# shellcheck source=/dev/null
	source "$check_zone/probes.env"
	for peer in $BENCH_PEERS; do
		check_network "$peer" "$check_zone/rpz.zone"
	done
	# shellcheck source=/dev/null
	source "$ZONE_DIR/probes.env"

	: >"$BENCH_DIR/results.tsv"
	for peer in $BENCH_PEERS; do
		measure_peer "$peer" "$ZONE_DIR/rpz.zone"
	done
	if [[ " $BENCH_PEERS " == *" bulwark "* ]]; then
		run_go_benchmark
	fi
	print_table
}

main "$@"
