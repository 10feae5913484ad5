#!/usr/bin/env bash
# Generates the local cluster's PKI with openssl into .cluster/pki/:
# a CA, the API server's serving certificate (127.0.0.1 and the in-cluster
# names), one client certificate per identity, the service-account signing
# key pair, and a kubeconfig per client (certificates embedded).
#
# Client identities (CN / O):
#   admin                  modelpilot-admin / system:masters  -> .cluster/kubeconfig
#   kube-controller-manager system:kube-controller-manager    (bootstrap RBAC role)
#   kube-scheduler          system:kube-scheduler             (bootstrap RBAC role)
#   kwok                    system:kwok-controller / system:masters
#   node-agent              system:node:modelpilot-node-0 / system:nodes (Node authorizer)
#   kube-proxy              system:kube-proxy                 (bootstrap RBAC role)
#   prometheus              modelpilot:prometheus             (manifests/prometheus-rbac.yaml)
#   apiserver-kubelet-client kube-apiserver-kubelet-client / system:masters
#                           (the API server's identity towards the node agent:
#                           logs, exec, port-forward)
#   front-proxy-client      signed by a separate front-proxy CA (aggregation layer)
# Serving certificates: apiserver (127.0.0.1 and the in-cluster names) and
# node-agent-serving (the node's InternalIP 10.244.128.1 and 127.0.0.1).
#
# Usage: hack/cluster/pki.sh API_PORT
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

api_port="${1:?usage: pki.sh API_PORT}"
days=30

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# make_ca NAME CN: a self-signed CA certificate and key.
make_ca() {
	new_key "$pki_dir/$1.key"
	openssl req -x509 -new -key "$pki_dir/$1.key" -days "$days" -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$pki_dir/$1.crt"
}

# sign NAME SUBJECT EXT_USAGE [SAN]: key + CSR + certificate signed by the
# CA named in $ca (default: ca).
sign() {
	local name="$1" subj="$2" eku="$3" san="${4:-}" ca="${ca:-ca}"
	local ext="$pki_dir/$name.ext"
	new_key "$pki_dir/$name.key"
	openssl req -new -key "$pki_dir/$name.key" -subj "$subj" -out "$pki_dir/$name.csr"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$eku"
		echo "authorityKeyIdentifier=keyid"
		[[ -n "$san" ]] && echo "subjectAltName=$san"
	} >"$ext"
	openssl x509 -req -in "$pki_dir/$name.csr" -CA "$pki_dir/$ca.crt" -CAkey "$pki_dir/$ca.key" \
		-CAcreateserial -days "$days" -extfile "$ext" -out "$pki_dir/$name.crt" 2>/dev/null
	rm -f "$pki_dir/$name.csr" "$ext"
}

b64() { base64 -w0 <"$1"; }

# write_kubeconfig FILE CERT_NAME USER
write_kubeconfig() {
	local file="$1" cert="$2" user="$3"
	umask 077
	cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modelpilot-local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(b64 "$pki_dir/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$pki_dir/$cert.crt")
    client-key-data: $(b64 "$pki_dir/$cert.key")
contexts:
- name: modelpilot-local
  context:
    cluster: modelpilot-local
    user: $user
    namespace: default
current-context: modelpilot-local
EOF
}

main() {
	command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
	rm -rf "$pki_dir" && mkdir -p "$pki_dir" && chmod 700 "$pki_dir"
	make_ca ca modelpilot-local-ca
	sign apiserver "/CN=kube-apiserver" serverAuth \
		"IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	sign admin "/O=system:masters/CN=modelpilot-admin" clientAuth
	sign kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
	sign kube-scheduler "/CN=system:kube-scheduler" clientAuth
	sign kwok "/O=system:masters/CN=system:kwok-controller" clientAuth
	sign node-agent "/O=system:nodes/CN=system:node:$node_name" clientAuth
	sign node-agent-serving "/CN=$node_name" serverAuth "IP:$node_ip,IP:127.0.0.1,DNS:$node_name"
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
	sign kube-proxy "/CN=system:kube-proxy" clientAuth
	sign prometheus "/CN=modelpilot:prometheus" clientAuth
	# The aggregation layer's front proxy has a CA of its own, as it should:
	# its client certificate must not be accepted as a user.
	make_ca front-proxy-ca modelpilot-local-front-proxy-ca
	ca=front-proxy-ca sign front-proxy-client "/CN=front-proxy-client" clientAuth
	new_key "$pki_dir/sa.key"
	openssl pkey -in "$pki_dir/sa.key" -pubout -out "$pki_dir/sa.pub"

	write_kubeconfig "$kubeconfig" admin modelpilot-admin
	write_kubeconfig "$pki_dir/kube-controller-manager.kubeconfig" kube-controller-manager system:kube-controller-manager
	write_kubeconfig "$pki_dir/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler
	write_kubeconfig "$pki_dir/kwok.kubeconfig" kwok system:kwok-controller
	write_kubeconfig "$pki_dir/node-agent.kubeconfig" node-agent "system:node:$node_name"
	write_kubeconfig "$pki_dir/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
	log "PKI and kubeconfigs written (.cluster/pki, .cluster/kubeconfig)"
}

main
