#!/usr/bin/env bash
# Builds the Kubernetes control-plane tools (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, kubectl, kwok, helm)
# and Prometheus (prometheus, promtool; with Kubernetes service discovery,
# which Debian's package lacks) from upstream Go modules through the module
# proxy, at the versions pinned in hack/cluster/versions.env, and links them
# into .cluster/bin/.
#
# Binaries are cached under
#   ${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/k8s-tools/<key>/bin/
# where <key> hashes versions.env, tools/go.mod, tools/go.sum and this
# script, so a second run only re-creates the links.
#
# Usage: hack/cluster/build.sh [--print-bin-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=hack/cluster/versions.env
source "$here/versions.env"

cache_root="${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/k8s-tools"
key="$(cat "$here/versions.env" "$here/tools/go.mod" "$here/tools/go.sum" "$here/build.sh" \
	| sha256sum | cut -c1-16)"
bin_dir="$cache_root/$key/bin"
share_dir="$cache_root/$key/share"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kwok helm prometheus
	promtool)

log() { printf '[build] %s\n' "$*" >&2; }

have_all() {
	local t
	[[ -f "$cache_root/$key/complete" && -f "$share_dir/kwok-stages.yaml" ]] || return 1
	for t in "${tools[@]}"; do [[ -x "$bin_dir/$t" ]] || return 1; done
}

check_replaces() {
	# Every k8s.io staging replace must point at the staging version.
	local bad
	bad="$(grep -E '^\s+k8s\.io/[a-z-]+ => k8s\.io/' "$here/tools/go.mod" \
		| grep -v " $KUBERNETES_STAGING_VERSION\$" || true)"
	if [[ -n "$bad" ]]; then
		log "tools/go.mod replaces do not match KUBERNETES_STAGING_VERSION=$KUBERNETES_STAGING_VERSION:"
		printf '%s\n' "$bad" >&2
		exit 1
	fi
	grep -q "k8s.io/kubernetes $KUBERNETES_VERSION" "$here/tools/go.mod" || {
		log "tools/go.mod does not require k8s.io/kubernetes $KUBERNETES_VERSION"
		exit 1
	}
}

k8s_ldflags() {
	local v="$KUBERNETES_VERSION" major minor date
	major="${v#v}"; major="${major%%.*}"
	minor="${v#v*.}"; minor="${minor%%.*}"
	date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	local pkg flags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
	done
	flags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=gomod-$ETCD_VERSION"
	printf '%s' "$flags"
}

build_into() {
	local out="$1" start=$SECONDS
	export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
	log "building etcd $ETCD_VERSION and Kubernetes $KUBERNETES_VERSION (cold: 10-25 min on 2 cores)"
	(cd "$here/tools" && go build -mod=readonly -trimpath -ldflags "$(k8s_ldflags)" -o "$out/" \
		./etcd \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kube-proxy \
		k8s.io/kubernetes/cmd/kubectl)
	log "building kwok $KWOK_VERSION"
	(cd "$out" && GOBIN="$out" go install -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
		"sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
	log "building helm $HELM_VERSION"
	(cd "$out" && GOBIN="$out" go install -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
		"helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
	build_prometheus "$out"
	collect_kwok_stages "$out/../share"
	log "built ${#tools[@]} tools in $((SECONDS - start))s"
}

# build_prometheus DIR: prometheus and promtool with only the Kubernetes
# service discovery compiled in (upstream's remove_all_sd and
# enable_kubernetes_sd build tags), and no built-in web UI assets (the
# HTTP API is all the cluster uses).
build_prometheus() {
	local out="$1" pkg=github.com/prometheus/common/version
	log "building prometheus $PROMETHEUS_VERSION"
	(cd "$out" && GOBIN="$out" go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
		-ldflags "-s -w -X $pkg.Version=${PROMETHEUS_VERSION#v} -X $pkg.Revision=gomod-$PROMETHEUS_MODULE_VERSION -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
		"github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
		"github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
}

# collect_kwok_stages DIR: kwok run outside kwokctl needs its Stage
# objects as config; take kwok's own fast node/pod stages and the
# lease-based node heartbeat from the kwok module we just built.
collect_kwok_stages() {
	local dir="$1" src f
	src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
	mkdir -p "$dir"
	: >"$dir/kwok-stages.yaml"
	for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		[[ -f "$src/$f" ]] || { log "kwok stage $src/$f not found"; exit 1; }
		{ echo "---"; cat "$src/$f"; } >>"$dir/kwok-stages.yaml"
	done
}

link_into_checkout() {
	local t dest="$repo/.cluster/bin"
	mkdir -p "$dest"
	for t in "${tools[@]}"; do ln -sfn "$bin_dir/$t" "$dest/$t"; done
	ln -sfn "$share_dir" "$repo/.cluster/share"
}

main() {
	command -v go >/dev/null || { log "go is not on PATH (need Go >= 1.26)"; exit 1; }
	check_replaces
	mkdir -p "$cache_root"
	exec 9>"$cache_root/.lock"
	flock 9
	if have_all; then
		log "tools cached in $bin_dir"
	else
		local tmp="$cache_root/$key/tmp.$$"
		rm -rf "$tmp" && mkdir -p "$tmp/bin"
		trap 'rm -rf "$tmp"' EXIT
		build_into "$tmp/bin"
		rm -rf "$bin_dir" "$share_dir"
		mv "$tmp/bin" "$bin_dir" && mv "$tmp/share" "$share_dir" && rm -rf "$tmp"
		trap - EXIT
		touch "$cache_root/$key/complete"
	fi
	link_into_checkout
	if [[ "${1:-}" == "--print-bin-dir" ]]; then printf '%s\n' "$repo/.cluster/bin"; fi
}

main "$@"
