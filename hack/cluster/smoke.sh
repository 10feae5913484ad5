#!/usr/bin/env bash
# Smoke check of the local control plane (run by `make test`): the kwok
# nodes are registered and Ready, a plain Deployment reaches its ready
# replicas through the real controller manager and scheduler, a pod with a
# native sidecar (init container with restartPolicy: Always) becomes Ready,
# and deleting the namespace garbage-collects everything in it.
# Every wait is a condition with a bounded timeout.
#
# Usage: hack/cluster/smoke.sh   (needs a running cluster: make cluster-up)
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

timeout="${SMOKE_TIMEOUT:-90}"
ns="smoke-$(date +%s)-$RANDOM"
k=("$bin_dir/kubectl" --kubeconfig="$kubeconfig")
passed=0
failed=0

check() {
	local name="$1"; shift
	if "$@"; then
		printf '  PASS %s\n' "$name"
		passed=$((passed + 1))
	else
		printf '  FAIL %s\n' "$name"
		failed=$((failed + 1))
	fi
}

nodes_ready() {
	local ready
	ready="$("${k[@]}" get nodes -l type=kwok \
		-o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
		| grep -c '^True$' || true)"
	echo "    kwok nodes Ready: $ready"
	((ready == 3))
}

deployment_ready() {
	"${k[@]}" -n "$ns" create deployment smoke-web --image=registry.k8s.io/pause:3.10 --replicas=3 >/dev/null
	"${k[@]}" -n "$ns" rollout status deployment/smoke-web --timeout="${timeout}s" >/dev/null || return 1
	local ready
	ready="$("${k[@]}" -n "$ns" get deployment smoke-web -o jsonpath='{.status.readyReplicas}')"
	echo "    deployment/smoke-web readyReplicas: $ready"
	[[ "$ready" == 3 ]]
}

sidecar_pod_ready() {
	"${k[@]}" -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: smoke-sidecar
spec:
  initContainers:
  - name: log-shipper
    image: registry.k8s.io/pause:3.10
    restartPolicy: Always
  - name: setup
    image: registry.k8s.io/pause:3.10
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
EOF
	"${k[@]}" -n "$ns" wait --for=condition=Ready pod/smoke-sidecar --timeout="${timeout}s" >/dev/null || return 1
	local sidecar
	sidecar="$("${k[@]}" -n "$ns" get pod smoke-sidecar \
		-o jsonpath='{.status.initContainerStatuses[?(@.name=="log-shipper")].started}')"
	echo "    native sidecar started: $sidecar"
	[[ "$sidecar" == true ]]
}

namespace_collected() {
	"${k[@]}" delete namespace "$ns" --wait=false >/dev/null
	"${k[@]}" wait --for=delete "namespace/$ns" --timeout="${timeout}s" >/dev/null
}

main() {
	[[ -f "$kubeconfig" ]] || die "no cluster: run make cluster-up"
	echo "cluster smoke check ($ns)"
	"${k[@]}" create namespace "$ns" >/dev/null
	"${k[@]}" -n "$ns" wait --for=create serviceaccount/default --timeout="${timeout}s" >/dev/null
	check "three kwok nodes are Ready" nodes_ready
	check "a plain Deployment reaches 3 ready replicas" deployment_ready
	check "a pod with a native sidecar becomes Ready" sidecar_pod_ready
	check "deleting the namespace removes it and its pods" namespace_collected
	echo "smoke: $passed passed, $failed failed"
	((failed == 0))
}

main "$@"
