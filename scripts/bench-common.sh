# Functions shared by the benchmark scripts. Source it after defining
# fail, which prints its arguments and exits.

# calc prints the value of an awk expression, such as calc "$b - $a", with
# $2 decimals (default 2). A comparison prints 1 or 0.
calc() { awk "BEGIN { printf \"%.${2:-2}f\", ($1) }"; }

# median prints the median and the spread (max - min) of its arguments.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f", m, v[NR] - v[1] }'
}

# cpu_ticks prints the user and system CPU time of process $peer_pid in
# clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$peer_pid/stat"; }

# print_machine prints the cores, CPU, memory, kernel and load of the
# machine, for the record of a run.
print_machine() {
	echo "== machine"
	echo "cores: $(nproc); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); kernel: $(uname -r)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# missing_packages prints, once each, the Debian package of every
# PROGRAM=PACKAGE argument whose program is not on the PATH.
missing_packages() {
	local pair seen=" "
	for pair in "$@"; do
		command -v "${pair%%=*}" >/dev/null 2>&1 && continue
		[[ "$seen" == *" ${pair#*=} "* ]] && continue
		seen+="${pair#*=} "
		echo "${pair#*=}"
	done
}

# install_missing installs the Debian packages given as arguments, if any,
# keeping their services from starting, as lab/deps.sh does.
install_missing() {
	(($# == 0)) && return
	[[ $(id -u) -eq 0 ]] || fail "missing packages $*: run as root or install them with apt-get"
	echo "== installing $*"
	local policy=/usr/sbin/policy-rc.d made=""
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		made=1
	fi
	local status=0
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || status=$?
	[[ -n "$made" ]] && rm -f "$policy"
	((status == 0)) || fail "apt-get install $* failed with status $status"
}
