#!/usr/bin/env bash
# Installs the Debian packages that the lab and the integration tests run,
# skipping those whose programs are already on the PATH.
#
# Usage: lab/deps.sh [PROGRAM...]
#   With no argument it checks every program below; with arguments, only
#   those (lab/up.sh passes the servers, kdig, dig and the signers).
set -euo pipefail

# Program to Debian package.
declare -A package_of=(
	[knotd]=knot
	[nsd]=nsd
	[kdig]=knot-dnsutils
	[dig]=bind9-dnsutils
	[unbound]=unbound
	[dnsperf]=dnsperf
	[keymgr]=knot
	[ldns-signzone]=ldnsutils
	[ldns-keygen]=ldnsutils
	[dnssec-signzone]=bind9-utils
	[fstrm_capture]=fstrm-bin
	[dnstap-ldns]=dnstap-ldns
	[nft]=nftables
	[tcpdump]=tcpdump
)

programs=("$@")
if [[ ${#programs[@]} -eq 0 ]]; then
	programs=(knotd nsd kdig dig unbound dnsperf keymgr ldns-signzone dnssec-signzone fstrm_capture dnstap-ldns nft tcpdump)
fi

export PATH="$PATH:/usr/sbin:/sbin"
missing=()
for program in "${programs[@]}"; do
	package="${package_of[$program]:-}"
	if [[ -z "$package" ]]; then
		echo "lab deps: unknown program '$program' (known: ${!package_of[*]})" >&2
		exit 2
	fi
	if ! command -v "$program" >/dev/null 2>&1 && [[ ! " ${missing[*]} " == *" $package "* ]]; then
		missing+=("$package")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "lab deps: missing packages ${missing[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "lab deps: installing ${missing[*]}"

# Keep the packages' own services from starting: a system Knot DNS, NSD or
# Unbound listening on port 53 would take the addresses the lab binds.
policy=/usr/sbin/policy-rc.d
if [[ ! -e "$policy" ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
