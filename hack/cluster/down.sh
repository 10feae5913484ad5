#!/usr/bin/env bash
# Stops everything hack/cluster/up.sh and hack/demo.sh started: first the
# processes the demo recorded in .cluster/run/ (operator, inference
# server), then kwok, the scheduler, the controller manager, the API server
# and etcd. Each runs in a process group of its own; the whole group gets
# SIGTERM, then SIGKILL if it has not exited in time. Removes the etcd data
# and runtime state; keeps .cluster/bin and .cluster/logs.
# Safe to run when nothing is up.
#
# Usage: hack/cluster/down.sh
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stop_strays: processes started from this checkout's .cluster/bin whose pid
# files are gone (e.g. .cluster/run deleted by hand). Returns 1 if none.
stop_strays() {
	local pattern pids pid deadline
	pattern="^$(printf '%s' "$bin_dir/" | sed 's/[.[\*^$]/\\&/g')"
	mapfile -t pids < <(pgrep -f "$pattern" || true)
	((${#pids[@]} > 0)) || return 1
	log "stopping processes without a pid file: ${pids[*]}"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for pid in "${pids[@]}"; do
		deadline=$((SECONDS + 20))
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	done
}

main() {
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
		stop_daemon "$name" 20
		stopped=1
	done
	stop_strays && stopped=1
	rm -rf "$etcd_data_dir" "$run_dir" "$state_dir/kwok"
	if ((stopped)); then log "cluster down"; else log "cluster was not running: nothing to do"; fi
}

main "$@"
