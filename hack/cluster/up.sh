#!/usr/bin/env bash
# Starts the local Kubernetes cluster for tests and the demo, on this host:
#
#   etcd, kube-apiserver,          on 127.0.0.1; RBAC, client-certificate auth
#   kube-controller-manager,
#   kube-scheduler
#   modelpilot-node-agent          the real node modelpilot-node-0 (hack/node-agent):
#                                  pods are host processes in network namespaces
#                                  on the bridge mp-br0 (10.244.128.1/24)
#   kwok                           three fake nodes, tainted kwok.x-k8s.io/node=fake,
#                                  whose pods are reported Running without running
#   kube-proxy                     iptables mode for modelpilot-node-0: Service IPs
#                                  (10.96.0.0/16) work on this host and in its pods
#   prometheus                     scrapes annotated pods (hack/cluster/prometheus/)
#                                  on 127.0.0.1
#   Gateway API CRDs               standard channel (gateway-api.sh), once the API
#                                  server is ready
#
# Needs root (network namespaces, a bridge, routes, iptables rules) and says
# so before doing anything else. Installs the guard routes (net.sh), builds
# the control-plane tools and Prometheus (build.sh), the node agent and the modelpilot
# binary (cargo, debug profile), and writes the node agent's image table
# (.cluster/agent/images.yaml).
#
# Idempotent: when the cluster is already up and healthy it says so and
# exits 0; a half-up cluster is stopped and started afresh.
# State lives in .cluster/ (kubeconfig, bin/, pki/, logs/, run/, etcd/,
# agent/, prometheus/); the chosen ports are in .cluster/run/ports.env.
#
# Usage: hack/cluster/up.sh
#   env: CLUSTER_READY_TIMEOUT=90  seconds each component may take
#        NODE_AGENT_BIN=PATH       run this node agent executable instead of
#                                  the debug build (then not built); give
#                                  down.sh the same
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ready_timeout="${CLUSTER_READY_TIMEOUT:-90}"

kubectl() { "$bin_dir/kubectl" --kubeconfig="$kubeconfig" "$@"; }

any_started() {
	local name
	for name in "${control_plane[@]}"; do [[ -f "$(pid_file "$name")" ]] && return 0; done
	return 1
}

# The node agent listens on the bridge address, everything else on
# 127.0.0.1; a port free on 127.0.0.1 serves for the agent too (nothing
# else binds the bridge address).
port_names=(ETCD_CLIENT_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHEDULER_PORT KWOK_PORT AGENT_PORT
	KUBE_PROXY_HEALTHZ_PORT KUBE_PROXY_METRICS_PORT PROMETHEUS_PORT)

choose_ports() {
	local ports n=${#port_names[@]} i
	read -r -a ports <<<"$(free_ports "$n")" || die "could not find free loopback ports"
	((${#ports[@]} == n)) || die "could not find free loopback ports"
	mkdir -p "$run_dir"
	for ((i = 0; i < n; i++)); do printf '%s=%s\n' "${port_names[i]}" "${ports[i]}"; done >"$ports_file"
	# shellcheck disable=SC1090
	source "$ports_file"
}

start_etcd() {
	rm -rf "$etcd_data_dir"
	# --unsafe-no-fsync: a throw-away test store; durability is not needed
	# and fsync dominates API latency on slow disks.
	start_daemon etcd "$bin_dir/etcd" \
		--name=modelpilot --data-dir="$etcd_data_dir" \
		--listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster="modelpilot=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync --log-level=warn
	wait_http etcd "http://127.0.0.1:$ETCD_CLIENT_PORT/health" "$ready_timeout"
}

# The kubernetes Service's endpoints would point at 127.0.0.1, which the
# endpoint reconciler refuses (loopback); no pod here dials the API server
# through that Service, so the reconciler is off.
# The API server reaches the node agent (logs, exec) at the node's
# InternalIP with the kubelet-client certificate, and checks the agent's
# serving certificate against the cluster CA.
start_apiserver() {
	start_daemon kube-apiserver "$bin_dir/kube-apiserver" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
		--etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--tls-cert-file="$pki_dir/apiserver.crt" --tls-private-key-file="$pki_dir/apiserver.key" \
		--client-ca-file="$pki_dir/ca.crt" \
		--authorization-mode=Node,RBAC --anonymous-auth=false \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$pki_dir/sa.pub" \
		--service-account-signing-key-file="$pki_dir/sa.key" \
		--service-cluster-ip-range="$service_cidr" \
		--endpoint-reconciler-type=none \
		--requestheader-client-ca-file="$pki_dir/front-proxy-ca.crt" \
		--requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User \
		--requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$pki_dir/front-proxy-client.crt" \
		--proxy-client-key-file="$pki_dir/front-proxy-client.key" \
		--kubelet-client-certificate="$pki_dir/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$pki_dir/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$pki_dir/ca.crt" \
		--kubelet-preferred-address-types=InternalIP \
		--profiling=false
	local args; mapfile -t args < <(admin_curl_args)
	wait_http kube-apiserver "https://127.0.0.1:$API_PORT/readyz" "$ready_timeout" "${args[@]}"
	kubectl apply -f "$cluster_here/manifests/prometheus-rbac.yaml" >/dev/null
	"$cluster_here/gateway-api.sh"
}

start_controller_manager() {
	local kc="$pki_dir/kube-controller-manager.kubeconfig"
	start_daemon kube-controller-manager "$bin_dir/kube-controller-manager" \
		--kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$run_dir/kcm-certs" \
		--controllers='*' --use-service-account-credentials=true \
		--service-account-private-key-file="$pki_dir/sa.key" --root-ca-file="$pki_dir/ca.crt" \
		--cluster-signing-cert-file="$pki_dir/ca.crt" --cluster-signing-key-file="$pki_dir/ca.key" \
		--cluster-name=modelpilot-local --leader-elect=false --profiling=false
	wait_http kube-controller-manager "https://127.0.0.1:$KCM_PORT/healthz" "$ready_timeout" \
		--insecure
}

start_scheduler() {
	local kc="$pki_dir/kube-scheduler.kubeconfig"
	start_daemon kube-scheduler "$bin_dir/kube-scheduler" \
		--kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
		--bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --cert-dir="$run_dir/scheduler-certs" \
		--leader-elect=false --profiling=false
	wait_http kube-scheduler "https://127.0.0.1:$SCHEDULER_PORT/readyz" "$ready_timeout" --insecure
}

# start_node_agent: the real node. It creates the bridge, registers the
# Node, serves the kubelet API (logs, exec) on the bridge address, and runs
# the pods bound to it. Ready is awaited later (wait_real_node), so kwok
# starts meanwhile.
start_node_agent() {
	start_daemon node-agent "$node_agent_bin" run \
		--kubeconfig "$pki_dir/node-agent.kubeconfig" --node-name "$node_name" \
		--state-dir "$agent_dir" --pod-cidr "$pod_cidr" --bridge "$bridge" \
		--service-cidr "$service_cidr" --cluster-cidr "$cluster_cidr" --cni-bin-dir "$cni_bin_dir" \
		--images "$agent_dir/images.yaml" --listen "$node_ip:$AGENT_PORT" \
		--tls-cert "$pki_dir/node-agent-serving.crt" --tls-key "$pki_dir/node-agent-serving.key" \
		--client-ca "$pki_dir/ca.crt"
}

start_kwok() {
	# KWOK_WORKDIR keeps a user's ~/.kwok/kwok.yaml out of this cluster.
	mkdir -p "$state_dir/kwok"
	KWOK_WORKDIR="$state_dir/kwok" start_daemon kwok "$bin_dir/kwok" \
		--kubeconfig="$pki_dir/kwok.kubeconfig" \
		--config="$state_dir/share/kwok-stages.yaml" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--node-lease-duration-seconds=40 \
		--cidr="$kwok_cidr" \
		--server-address="127.0.0.1:$KWOK_PORT"
	wait_http kwok "http://127.0.0.1:$KWOK_PORT/healthz" "$ready_timeout"
}

add_kwok_nodes() {
	kubectl apply -f "$cluster_here/manifests/kwok-nodes.yaml" >/dev/null
	kubectl wait --for=condition=Ready node -l type=kwok --timeout="${ready_timeout}s" >/dev/null
	# The ServiceAccount admission plugin rejects pods until the namespace's
	# default ServiceAccount exists; wait for the controller to create it.
	kubectl -n default wait --for=create serviceaccount/default --timeout="${ready_timeout}s" >/dev/null
	log "kwok nodes ready: $(kubectl get nodes -l type=kwok -o name | tr '\n' ' ')"
}

node_is_ready() {
	[[ "$(kubectl get node "$node_name" \
		-o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

# wait_real_node: the agent registers its Node and reports it Ready; fails
# at once (with the agent's log tail) if the agent exits.
wait_real_node() {
	wait_daemon node-agent "node/$node_name Ready" "$ready_timeout" node_is_ready
}

# start_kube_proxy: kube-proxy for the real node, iptables mode. It changes
# no sysctl (conntrack settings 0 = leave as they are; no localhost
# NodePorts, which would need route_localnet), serves NodePorts on the
# bridge address only, and counts the whole pod network as local.
# masqueradeAll: Service traffic is SNATed to the bridge address, so the
# reply of a pod behind a Service to a client pod on the same bridge comes
# back through the host (and is un-NATed) even where bridged traffic skips
# iptables (no br_netfilter), and the host's FORWARD policy accepts it
# (kube-proxy's KUBE-FORWARD accepts marked packets).
start_kube_proxy() {
	local config="$run_dir/kube-proxy.yaml"
	cat >"$config" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $pki_dir/kube-proxy.kubeconfig
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $cluster_cidr
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: ["$node_ip/32"]
oomScoreAdj: 0
iptables:
  localhostNodePorts: false
  masqueradeAll: true
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
	start_daemon kube-proxy "$bin_dir/kube-proxy" --config="$config"
	wait_http kube-proxy "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz" "$ready_timeout"
}

# start_prometheus: hack/cluster/prometheus/prometheus.yml with the API
# server's port and the certificate directory filled in; fresh storage.
start_prometheus() {
	local config="$prometheus_dir/prometheus.yml" out
	rm -rf "$prometheus_dir" && mkdir -p "$prometheus_dir"
	sed -e "s|\${API_PORT}|$API_PORT|g" -e "s|\${PKI_DIR}|$pki_dir|g" \
		"$cluster_here/prometheus/prometheus.yml" >"$config"
	out="$("$bin_dir/promtool" check config "$config" 2>&1)" || die "invalid Prometheus config $config: $out"
	start_daemon prometheus "$bin_dir/prometheus" \
		--config.file="$config" --storage.tsdb.path="$prometheus_dir/data" \
		--storage.tsdb.retention.time=1d \
		--web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
	wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" "$ready_timeout"
}

# start_once: one attempt at starting every daemon on fresh ports; run as a
# child process (`up.sh __start`) so errexit holds and a failed attempt can
# be cleaned up and retried by the parent.
start_once() {
	choose_ports
	"$cluster_here/pki.sh" "$API_PORT"
	start_etcd
	start_apiserver
	start_controller_manager
	start_scheduler
	start_node_agent
	start_kwok
	add_kwok_nodes
	wait_real_node
	start_kube_proxy
	start_prometheus
}

# build_binaries: the node agent, and the modelpilot binary the image table
# maps modelpilot/modelpilot to (debug profile, the project's target dir).
build_binaries() {
	command -v cargo >/dev/null || die "cargo is not on PATH (keep your PATH under sudo: sudo -E)"
	if [[ -z "${NODE_AGENT_BIN:-}" ]]; then
		log "building modelpilot-node-agent (cargo, debug)"
		(cd "$repo_root" && CARGO_TARGET_DIR="$cargo_target_dir" \
			cargo build -q -p modelpilot-node-agent --bin modelpilot-node-agent)
	fi
	log "building modelpilot (cargo, debug)"
	(cd "$repo_root" && CARGO_TARGET_DIR="$cargo_target_dir" cargo build -q --bin modelpilot)
	[[ -x "$node_agent_bin" ]] || die "$node_agent_bin missing after build"
	[[ -x "$modelpilot_bin" ]] || die "$modelpilot_bin missing after build"
}

# yaml_str S: S as a double-quoted YAML scalar.
yaml_str() {
	local s="${1//\\/\\\\}"
	printf '"%s"' "${s//\"/\\\"}"
}

# write_images: the node agent's image table. Images are host executables:
# modelpilot/modelpilot:<tag> is the debug build (with ONNX Runtime from the
# project's venv), python:<tag> the venv's python (hack/pyenv.sh),
# busybox:<tag> the host's /bin tools. Any other image fails to "pull".
write_images() {
	local exports venv_bin
	exports="$("$repo_root/hack/pyenv.sh")" || die "hack/pyenv.sh failed"
	eval "$exports"
	[[ -n "${MODELPILOT_PYTHON:-}" && -n "${ORT_DYLIB_PATH:-}" ]] \
		|| die "hack/pyenv.sh did not export MODELPILOT_PYTHON and ORT_DYLIB_PATH"
	venv_bin="$(dirname "$MODELPILOT_PYTHON")"
	mkdir -p "$agent_dir"
	cat >"$agent_dir/images.yaml.tmp" <<EOF
# Image table of the local node agent (written by hack/cluster/up.sh).
images:
  - repository: modelpilot/modelpilot
    entrypoint: [$(yaml_str "$modelpilot_bin")]
    path: [$(yaml_str "$(dirname "$modelpilot_bin")")]
    env: {ORT_DYLIB_PATH: $(yaml_str "$ORT_DYLIB_PATH")}
    keep: [$(yaml_str "$(dirname "$modelpilot_bin")"), $(yaml_str "$(dirname "$ORT_DYLIB_PATH")")]
  - repository: python
    entrypoint: [$(yaml_str "$venv_bin/python3")]
    path: [$(yaml_str "$venv_bin")]
    keep: [$(yaml_str "$(dirname "$venv_bin")")]
  - repository: busybox
    entrypoint: [/bin/sh]
    path: [/usr/local/bin, /usr/bin, /bin]
EOF
	mv "$agent_dir/images.yaml.tmp" "$agent_dir/images.yaml"
}

main() {
	"$cluster_here/net.sh" preflight "make cluster-up"
	lock_state
	"$cluster_here/net.sh" guard
	if cluster_is_up; then
		"$cluster_here/gateway-api.sh" # a cluster started before they were added gets them
		log "cluster already up (https://127.0.0.1:$API_PORT, KUBECONFIG=$kubeconfig): nothing to do"
		return 0
	fi
	if any_started; then
		log "cluster is partly up; stopping it before a fresh start"
		"$cluster_here/down.sh"
	fi
	"$cluster_here/build.sh"
	local t
	for t in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kwok kubectl prometheus \
		promtool; do
		[[ -x "$bin_dir/$t" ]] || die "$bin_dir/$t missing after build"
	done
	command -v curl >/dev/null || die "curl is required"
	build_binaries
	write_images
	local start=$SECONDS attempt
	trap 'log "interrupted; stopping what was started"; "$cluster_here/down.sh"; exit 130' INT TERM
	# A second attempt on new ports covers a port taken by someone else
	# between choosing it and the daemon binding it.
	for attempt in 1 2; do
		if "$cluster_here/up.sh" __start; then
			# shellcheck disable=SC1090
			source "$ports_file"
			log "cluster up in $((SECONDS - start))s: https://127.0.0.1:$API_PORT," \
				"Prometheus http://127.0.0.1:$PROMETHEUS_PORT"
			log "  export KUBECONFIG=$kubeconfig PATH=$bin_dir:\$PATH"
			return 0
		fi
		log "start attempt $attempt failed (logs in .cluster/logs); stopping what was started"
		"$cluster_here/down.sh"
	done
	die "the cluster did not start"
}

if [[ "${1:-}" == __start ]]; then
	[[ "${CLUSTER_LOCK_HELD:-}" == 1 ]] || die "__start is internal to up.sh"
	start_once
else
	main "$@"
fi
