#!/usr/bin/env bash
# Stops everything hack/cluster/up.sh and hack/demo.sh started, and checks
# that nothing is left:
#
#   1. the processes the demo recorded in .cluster/run/ (operator, server)
#   2. the daemons in reverse start order: Prometheus, kube-proxy, kwok, the
#      node agent (given up to 60 s: on SIGTERM it stops its pods itself),
#      the scheduler, the controller manager, the API server, etcd. Each
#      runs in a process group of its own; the group gets SIGTERM, then
#      SIGKILL if it has not exited in time.
#   3. processes of this checkout's cluster that lost their pid file
#   4. `kube-proxy --cleanup` (its iptables/nftables rules, but for the
#      chain it shares with the kubelet, which goes next) and
#      `modelpilot-node-agent cleanup` (leftover pod processes, network
#      namespaces, veths, the bridge), always, even when nothing ran
#   5. removes etcd's data, Prometheus' storage and runtime state; keeps
#      .cluster/bin, .cluster/logs and .cluster/agent (pod logs)
#   6. hack/cluster/leftovers.sh: exits non-zero, saying what, if anything
#      of the cluster remains
#
# The guard routes (net.sh) stay. Safe to run when nothing is up. Needs
# root (the cleanups change network state).
#
# Usage: hack/cluster/down.sh   (env: NODE_AGENT_BIN as given to up.sh)
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Seconds each daemon gets between SIGTERM and SIGKILL.
stop_timeout() {
	case "$1" in
	node-agent) echo 60 ;;
	*) echo 20 ;;
	esac
}

# stray_pids: processes of this checkout's cluster without a pid file (e.g.
# .cluster/run deleted by hand): anything run from .cluster/bin, and the
# node agent when its command line names .cluster/.
stray_pids() {
	local pattern pid cmd
	pattern="$(regex_quote "$state_dir/")"
	[[ -n "$pattern" ]] || die "could not quote $state_dir for pgrep"
	while read -r pid cmd; do
		((pid == $$)) && continue
		case "${cmd%% *}" in
		"$bin_dir"/* | "$node_agent_bin") echo "$pid" ;;
		esac
	done < <(pgrep -af -- "$pattern" || true)
}

# stop_strays: SIGTERM, then SIGKILL after 20 s. Returns 1 if there were none.
stop_strays() {
	local pids pid deadline
	mapfile -t pids < <(stray_pids)
	((${#pids[@]} > 0)) || return 1
	log "stopping processes without a pid file: ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for pid in "${pids[@]}"; do
		deadline=$((SECONDS + 20))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
}

# run_cleanup NAME CMD...: runs CMD with its output in .cluster/logs/NAME.log;
# a failure is reported (with the log tail) but does not stop down.sh:
# leftovers.sh decides whether anything remains.
run_cleanup() {
	local name="$1" rc=0; shift
	mkdir -p "$log_dir"
	"$@" >"$log_dir/$name.log" 2>&1 || rc=$?
	if ((rc != 0)); then
		log "$name failed (exit $rc); tail of .cluster/logs/$name.log:"
		tail -n 15 "$log_dir/$name.log" | sed 's/^/    /' >&2
	fi
}

# remove_kube_firewall: `kube-proxy --cleanup` keeps the filter chain
# KUBE-FIREWALL and its jumps from INPUT and OUTPUT, because it shares them
# with the kubelet. There is no kubelet here, and with localhostNodePorts
# off our kube-proxy leaves the chain empty: an empty KUBE-FIREWALL is ours
# and goes; one with rules belongs to someone else and stays (leftovers.sh
# then reports it).
remove_kube_firewall() {
	local ipt rules
	for ipt in iptables ip6tables; do
		rules="$("$ipt" -w -t filter -S KUBE-FIREWALL 2>/dev/null)" || continue
		if grep -qv '^-N ' <<<"$rules"; then
			log "$ipt: KUBE-FIREWALL has rules, so it is not kube-proxy's; leaving it"
			continue
		fi
		while "$ipt" -w -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
		while "$ipt" -w -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
		"$ipt" -w -t filter -X KUBE-FIREWALL || log "$ipt: could not delete KUBE-FIREWALL"
	done
}

cleanups() {
	if [[ -x "$bin_dir/kube-proxy" ]]; then
		run_cleanup kube-proxy-cleanup "$bin_dir/kube-proxy" --cleanup
	fi
	remove_kube_firewall
	if [[ -x "$node_agent_bin" ]]; then
		run_cleanup node-agent-cleanup "$node_agent_bin" cleanup \
			--state-dir "$agent_dir" --bridge "$bridge" --cni-bin-dir "$cni_bin_dir"
	else
		log "warning: no node agent at $node_agent_bin, so no node agent cleanup"
	fi
}

main() {
	require_privileges "make cluster-down"
	lock_state
	local f name stopped=0 i
	shopt -s nullglob
	# Anything else with a pid file (demo processes) goes first.
	for f in "$run_dir"/*.pid; do
		name="$(basename "$f" .pid)"
		[[ " ${control_plane[*]} " == *" $name "* ]] && continue
		stop_daemon "$name" 15
		stopped=1
	done
	for ((i = ${#control_plane[@]} - 1; i >= 0; i--)); do
		name="${control_plane[i]}"
		[[ -f "$(pid_file "$name")" ]] || continue
		stop_daemon "$name" "$(stop_timeout "$name")"
		stopped=1
	done
	stop_strays && stopped=1
	cleanups
	rm -rf "$etcd_data_dir" "$run_dir" "$state_dir/kwok" "$prometheus_dir"
	if ((stopped)); then log "cluster down"; else log "cluster was not running: nothing to stop"; fi
	"$cluster_here/leftovers.sh"
}

main "$@"
