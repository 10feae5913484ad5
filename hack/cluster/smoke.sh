#!/usr/bin/env bash
# Smoke check of the local cluster (run by `make test`): the kwok nodes and
# the real node modelpilot-node-0 are registered and Ready; a plain
# Deployment on the kwok nodes reaches its ready replicas through the real
# controller manager and scheduler; a pod with a native sidecar (init
# container with restartPolicy: Always) becomes Ready; kube-proxy programs a
# Service into iptables; Prometheus discovers the Deployment's annotated
# pods; deleting the namespace garbage-collects everything in it.
# The pods here are simulated: they tolerate the kwok nodes' taint and
# select them (nodeSelector type: kwok), so nothing runs on the real node.
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

# poll WHAT CMD...: re-runs CMD until it succeeds; fails (saying so) after
# $timeout seconds.
poll() {
	local what="$1" deadline=$((SECONDS + timeout)); shift
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			echo "    timed out after ${timeout}s waiting for $what"
			return 1
		fi
		sleep 0.25
	done
}

# kwok_placement INDENT: the toleration and node selector that send a pod to
# the kwok nodes, as YAML lines indented by INDENT spaces (a pod spec's level).
kwok_placement() {
	local pad
	pad="$(printf '%*s' "$1" '')"
	printf '\n%s%s' \
		"$pad" "nodeSelector:" "$pad" "  type: kwok" "$pad" "tolerations:" \
		"$pad" "- key: kwok.x-k8s.io/node" "$pad" "  operator: Equal" \
		"$pad" "  value: fake" "$pad" "  effect: NoSchedule"
}

nodes_ready() {
	local ready
	ready="$("${k[@]}" get nodes -l type=kwok \
		-o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
		| grep -c '^True$' || true)"
	echo "    kwok nodes Ready: $ready"
	((ready == 3))
}

real_node_ready() {
	local ready
	ready="$("${k[@]}" get node "$node_name" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
	echo "    $node_name Ready: ${ready:-(no such node)}"
	[[ "$ready" == True ]]
}

deployment_ready() {
	"${k[@]}" -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke-web
spec:
  replicas: 3
  selector:
    matchLabels: {app: smoke-web}
  template:
    metadata:
      labels: {app: smoke-web, modelpilot.io/revision: smoke}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "8080"
    spec:$(kwok_placement 6)
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
EOF
	"${k[@]}" -n "$ns" rollout status deployment/smoke-web --timeout="${timeout}s" >/dev/null || return 1
	local ready
	ready="$("${k[@]}" -n "$ns" get deployment smoke-web -o jsonpath='{.status.readyReplicas}')"
	echo "    deployment/smoke-web readyReplicas: $ready"
	[[ "$ready" == 3 ]] || return 1
	local off
	off="$("${k[@]}" -n "$ns" get pods -l app=smoke-web \
		-o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -vc '^kwok-node-' || true)"
	echo "    pods off the kwok nodes: $off"
	((off == 0))
}

sidecar_pod_ready() {
	"${k[@]}" -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: smoke-sidecar
spec:$(kwok_placement 2)
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

# A Service in front of the smoke-web pods: kube-proxy writes its nat rules
# (KUBE-SVC/KUBE-SEP; kwok's pod IPs as endpoints) on the real node.
service_programmed() {
	"${k[@]}" -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: smoke-svc
spec:
  selector: {app: smoke-web}
  ports:
  - {port: 80, targetPort: 8080}
EOF
	local ip
	ip="$("${k[@]}" -n "$ns" get service smoke-svc -o jsonpath='{.spec.clusterIP}')"
	echo "    service/smoke-svc clusterIP: $ip"
	poll "kube-proxy to program $ns/smoke-svc" kube_proxy_has_service "$ns/smoke-svc" "$ip" || return 1
	echo "    iptables: $(iptables-save -t nat | grep -c -- "$ns/smoke-svc") nat rules for $ns/smoke-svc"
}

kube_proxy_has_service() {
	iptables-save -t nat | grep -- "$1" | grep -q -- "-d $2/32"
}

# Prometheus lists a target for each of the Deployment's annotated pods,
# labelled with namespace, pod, node and revision (the scrapes themselves
# fail: kwok's pod IPs are unreachable by design).
prometheus_discovers() {
	# shellcheck disable=SC1090
	source "$ports_file"
	local url="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets?state=active" n
	poll "Prometheus to discover the smoke-web pods" prometheus_targets_ge 3 "$url" || return 1
	n="$(prometheus_targets "$url")"
	echo "    Prometheus targets in $ns with pod, node and revision labels: $n"
}

prometheus_targets() {
	curl -fsS --max-time 3 "$1" | jq --arg ns "$ns" '[.data.activeTargets[].labels
		| select(.namespace == $ns and .revision == "smoke" and (.pod | startswith("smoke-web-"))
			and (.node | startswith("kwok-node-")))] | length'
}

prometheus_targets_ge() { (($(prometheus_targets "$2") >= $1)); }

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
	check "the real node $node_name is Ready" real_node_ready
	check "a plain Deployment reaches 3 ready replicas on the kwok nodes" deployment_ready
	check "a pod with a native sidecar becomes Ready" sidecar_pod_ready
	check "kube-proxy programs a ClusterIP Service into iptables" service_programmed
	check "Prometheus discovers the annotated pods" prometheus_discovers
	check "deleting the namespace removes it and its pods" namespace_collected
	echo "smoke: $passed passed, $failed failed"
	((failed == 0))
}

main "$@"
