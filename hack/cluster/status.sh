#!/usr/bin/env bash
# Exits 0 when the local control plane is up and its API server is ready,
# 1 otherwise; prints one line saying which.
#
# Usage: hack/cluster/status.sh
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if cluster_is_up; then
	echo "cluster up: https://127.0.0.1:$API_PORT (KUBECONFIG=$kubeconfig)"
else
	echo "cluster not up"
	exit 1
fi
