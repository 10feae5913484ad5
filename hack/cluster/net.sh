#!/usr/bin/env bash
# Host networking of the local cluster that is not the node agent's:
#
#   preflight WHAT  fails early, saying why, unless this runs as root with
#                   CAP_NET_ADMIN/CAP_SYS_ADMIN and the host tools are there
#                   (`make test`, `make demo`, up.sh and down.sh call it)
#   guard           installs the guard routes (idempotent)
#   show            prints the routes, bridge and namespaces of the cluster
#
# The guard routes make traffic to cluster addresses that nothing serves fail
# at once on this host instead of leaving through the default route:
#
#   unreachable 10.244.0.0/16              pod network: kwok's fake pod IPs
#                                          (10.244.0.0/17) and unused ranges;
#                                          the real node's 10.244.128.0/24 is
#                                          more specific (connected on mp-br0)
#   unreachable 10.96.0.0/16 metric 4000   Service IPs while no node agent
#                                          is up; the agent adds
#                                          `10.96.0.0/16 dev mp-br0`, which
#                                          wins, so kube-proxy's DNAT applies
#
# They change nothing else (no sysctl, no forwarding), only ever turn a
# packet that would have left the machine into a local error, and are kept
# after `make cluster-down`. To remove them by hand:
#   ip route del unreachable 10.244.0.0/16; ip route del unreachable 10.96.0.0/16 metric 4000
#
# Usage: hack/cluster/net.sh preflight WHAT | guard | show
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

guard_routes=(
	"unreachable $cluster_cidr"
	"unreachable $service_cidr metric 4000"
)

guard() {
	local r
	for r in "${guard_routes[@]}"; do
		# shellcheck disable=SC2086 # each entry is a route spec of several words
		ip route replace $r || die "could not install the guard route '$r'"
	done
	log "guard routes in place: ${guard_routes[0]}; ${guard_routes[1]}"
}

show() {
	echo "routes to the cluster's networks:"
	ip route show | grep -E "^(unreachable )?(${cluster_cidr%%/*}|${service_cidr%%/*}|${pod_cidr%%/*})/" \
		| sed 's/^/  /' || echo "  (none)"
	echo "bridge $bridge:"
	ip -brief address show dev "$bridge" 2>/dev/null | sed 's/^/  /' || echo "  (absent)"
	echo "network namespaces ($netns_prefix*):"
	ip netns list | grep "^$netns_prefix" | sed 's/^/  /' || echo "  (none)"
}

case "${1:-}" in
preflight)
	require_privileges "${2:-this}"
	require_host_tools
	;;
guard)
	require_privileges "installing the guard routes"
	guard
	;;
show) show ;;
*)
	echo "usage: $0 preflight WHAT | guard | show" >&2
	exit 2
	;;
esac
