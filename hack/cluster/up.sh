#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1 for tests and the
# demo: etcd, kube-apiserver (secure port, RBAC, client-certificate auth),
# kube-controller-manager, kube-scheduler and kwok, which keeps three fake
# Nodes Ready and drives scheduled pods to Running/Ready.
#
# Idempotent: when the cluster is already up and healthy it says so and
# exits 0; a half-up cluster is stopped and started afresh.
# State lives in .cluster/ (kubeconfig, bin/, pki/, logs/, run/, etcd/).
#
# Usage: hack/cluster/up.sh          (env: CLUSTER_READY_TIMEOUT=90)
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ready_timeout="${CLUSTER_READY_TIMEOUT:-90}"

any_started() {
	local name
	for name in "${control_plane[@]}"; do [[ -f "$(pid_file "$name")" ]] && return 0; done
	return 1
}

choose_ports() {
	local ports
	read -r -a ports <<<"$(free_ports 6)" || die "could not find free loopback ports"
	((${#ports[@]} == 6)) || die "could not find free loopback ports"
	mkdir -p "$run_dir"
	cat >"$ports_file" <<EOF
ETCD_CLIENT_PORT=${ports[0]}
ETCD_PEER_PORT=${ports[1]}
API_PORT=${ports[2]}
KCM_PORT=${ports[3]}
SCHEDULER_PORT=${ports[4]}
KWOK_PORT=${ports[5]}
EOF
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
		--service-cluster-ip-range=10.96.0.0/16 \
		--endpoint-reconciler-type=none \
		--requestheader-client-ca-file="$pki_dir/front-proxy-ca.crt" \
		--requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User \
		--requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$pki_dir/front-proxy-client.crt" \
		--proxy-client-key-file="$pki_dir/front-proxy-client.key" \
		--profiling=false
	local args; mapfile -t args < <(admin_curl_args)
	wait_http kube-apiserver "https://127.0.0.1:$API_PORT/readyz" "$ready_timeout" "${args[@]}"
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

start_kwok() {
	# KWOK_WORKDIR keeps a user's ~/.kwok/kwok.yaml out of this cluster.
	mkdir -p "$state_dir/kwok"
	KWOK_WORKDIR="$state_dir/kwok" start_daemon kwok "$bin_dir/kwok" \
		--kubeconfig="$pki_dir/kwok.kubeconfig" \
		--config="$state_dir/share/kwok-stages.yaml" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--node-lease-duration-seconds=40 \
		--cidr=10.244.0.0/16 \
		--server-address="127.0.0.1:$KWOK_PORT"
	wait_http kwok "http://127.0.0.1:$KWOK_PORT/healthz" "$ready_timeout"
}

add_nodes() {
	local k=("$bin_dir/kubectl" --kubeconfig="$kubeconfig")
	"${k[@]}" apply -f "$cluster_here/manifests/kwok-nodes.yaml" >/dev/null
	"${k[@]}" wait --for=condition=Ready node -l type=kwok --timeout="${ready_timeout}s" >/dev/null
	# The ServiceAccount admission plugin rejects pods until the namespace's
	# default ServiceAccount exists; wait for the controller to create it.
	"${k[@]}" -n default wait --for=create serviceaccount/default --timeout="${ready_timeout}s" >/dev/null
	log "nodes ready: $("${k[@]}" get nodes -l type=kwok -o name | tr '\n' ' ')"
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
	start_kwok
	add_nodes
}

main() {
	lock_state
	if cluster_is_up; then
		log "cluster already up (https://127.0.0.1:$API_PORT, KUBECONFIG=$kubeconfig): nothing to do"
		return 0
	fi
	if any_started; then
		log "cluster is partly up; stopping it before a fresh start"
		"$cluster_here/down.sh"
	fi
	"$cluster_here/build.sh"
	local t
	for t in "${control_plane[@]}" kubectl; do
		[[ -x "$bin_dir/$t" ]] || die "$bin_dir/$t missing after build"
	done
	command -v curl >/dev/null || die "curl is required"
	local start=$SECONDS attempt
	trap 'log "interrupted; stopping what was started"; "$cluster_here/down.sh"; exit 130' INT TERM
	# A second attempt on new ports covers a port taken by someone else
	# between choosing it and the daemon binding it.
	for attempt in 1 2; do
		if "$cluster_here/up.sh" __start; then
			# shellcheck disable=SC1090
			source "$ports_file"
			log "cluster up in $((SECONDS - start))s: https://127.0.0.1:$API_PORT"
			log "  export KUBECONFIG=$kubeconfig PATH=$bin_dir:\$PATH"
			return 0
		fi
		log "start attempt $attempt failed (logs in .cluster/logs); stopping what was started"
		"$cluster_here/down.sh"
	done
	die "the control plane did not start"
}

if [[ "${1:-}" == __start ]]; then
	[[ "${CLUSTER_LOCK_HELD:-}" == 1 ]] || die "__start is internal to up.sh"
	start_once
else
	main "$@"
fi
