#!/usr/bin/env bash
# Exits 0 when the local cluster is up (every daemon alive, the API server
# ready), 1 otherwise; says which, and when it is not up, what is missing.
#
# Usage: hack/cluster/status.sh
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if cluster_is_up; then
	echo "cluster up: https://127.0.0.1:$API_PORT (KUBECONFIG=$kubeconfig)," \
		"Prometheus http://127.0.0.1:$PROMETHEUS_PORT"
	exit 0
fi
down=()
for name in "${control_plane[@]}"; do is_running "$name" || down+=("$name"); done
if ((${#down[@]} == ${#control_plane[@]})); then
	echo "cluster not up"
elif ((${#down[@]} > 0)); then
	echo "cluster not up: not running: ${down[*]}"
else
	echo "cluster not up: the API server is not ready"
fi
exit 1
