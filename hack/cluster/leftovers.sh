#!/usr/bin/env bash
# Asserts that nothing of the local cluster is left on this host: down.sh
# ends with it, and tests may run it. Checks
#
#   processes   command line naming .cluster/ (the daemons, Prometheus, the
#               node agent), working directory under .cluster/agent/ (pod
#               processes), or inside a network namespace of the agent
#   namespaces  network namespaces named mp-* (one per pod of the agent)
#   links       the bridge mp-br0 and any link enslaved to it (pod veths)
#   IPAM        addresses still reserved in .cluster/agent/cni-ipam/
#   rules       KUBE-* chains (kube-proxy) and per-pod CNI-<hash> chains in
#               iptables/ip6tables, kube-proxy tables or KUBE-* chains in nft
#
# Prints what remains and exits 1 if anything does, 0 otherwise. The guard
# routes (net.sh) are meant to stay and are not checked. Processes this
# script runs under (its callers) are not counted.
#
# Usage: hack/cluster/leftovers.sh
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

found=0

# report WHAT LINES: prints LINES (if any) under WHAT and counts a finding.
report() {
	[[ -n "$2" ]] || return 0
	printf '[cluster] left over: %s\n' "$1" >&2
	printf '%s\n' "$2" | sed 's/^/    /' >&2
	found=$((found + 1))
}

# ancestors: this process and its callers, which are not leftovers.
ancestors() {
	local pid=$$ ppid
	while [[ "$pid" =~ ^[0-9]+$ ]] && ((pid > 1)); do
		echo "$pid"
		ppid="$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || break
		pid="$ppid"
	done
}

processes() {
	local -A skip=()
	local pid line cwd dir pattern
	pattern="$(regex_quote "$state_dir/")"
	[[ -n "$pattern" ]] || die "could not quote $state_dir for pgrep"
	for pid in $(ancestors); do skip[$pid]=1; done
	while read -r pid line; do
		[[ -n "${skip[$pid]:-}" ]] || echo "$pid $line"
	done < <(pgrep -af -- "$pattern" || true)
	for cwd in /proc/[0-9]*/cwd; do
		pid="${cwd#/proc/}" && pid="${pid%/cwd}"
		[[ -n "${skip[$pid]:-}" ]] && continue
		dir="$(readlink "$cwd" 2>/dev/null)" || continue
		[[ "$dir" == "$agent_dir" || "$dir" == "$agent_dir"/* ]] || continue
		echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) (cwd $dir)"
	done
}

netns_left() { ip netns list 2>/dev/null | awk -v p="$netns_prefix" 'index($1, p) == 1 {print $1}'; }

netns_processes() {
	local ns pid
	for ns in $(netns_left); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) (netns $ns)"
		done
	done
}

links() {
	ip -brief link show dev "$bridge" 2>/dev/null || true
	ip -brief link show master "$bridge" 2>/dev/null || true
}

ipam_reservations() {
	[[ -d "$agent_dir/cni-ipam" ]] || return 0
	find "$agent_dir/cni-ipam" -type f -regextype posix-extended -regex '.*/[0-9.]+' 2>/dev/null
}

chains() {
	local save
	for save in iptables-save ip6tables-save; do
		command -v "$save" >/dev/null || continue
		"$save" 2>/dev/null | grep -E '^:(KUBE-[A-Z0-9-]+|CNI-[0-9a-f]{24}) ' \
			| sed "s/^:\([^ ]*\).*/$save: \1/" || true
	done
	if command -v nft >/dev/null; then
		nft list ruleset 2>/dev/null | grep -E '^table .* kube-proxy|chain (KUBE-|CNI-[0-9a-f]{24})' \
			| sed 's/^[[:space:]]*/nft: /; s/ {$//' || true
	fi
}

main() {
	report "processes of the cluster" "$(processes)"
	report "processes in the node agent's network namespaces" "$(netns_processes)"
	report "network namespaces of the node agent ($netns_prefix*)" "$(netns_left)"
	report "bridge $bridge or links on it" "$(links)"
	report "pod IP reservations ($agent_dir/cni-ipam)" "$(ipam_reservations)"
	report "kube-proxy / CNI firewall chains" "$(chains)"
	if ((found)); then
		log "leftovers found ($found kinds): see above"
		exit 1
	fi
	log "no leftovers: no cluster process, pod namespace, $bridge, pod address or KUBE-/CNI- chain"
}

main "$@"
