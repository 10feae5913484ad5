#!/usr/bin/env bash
# Builds Prometheus and promtool from the upstream Go module at the version pinned in
# hack/cluster/prometheus.env, with only the Kubernetes service discovery compiled in
# (build tags remove_all_sd,enable_kubernetes_sd), and links them into .cluster/bin/.
#
# Why not Debian's package: its prometheus is built without kubernetes_sd_configs, which the
# local stack uses to find the inference pods exactly as a user's Prometheus would.
#
# Cached under ${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/prometheus/<key>/bin, <key> hashing
# prometheus.env and this script; a second run only re-creates the links.
#
# Usage: hack/cluster/build-prometheus.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=hack/cluster/prometheus.env
source "$here/prometheus.env"

cache_root="${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/prometheus"
key="$(cat "$here/prometheus.env" "$here/build-prometheus.sh" | sha256sum | cut -c1-16)"
bin_dir="$cache_root/$key/bin"
tools=(prometheus promtool)

log() { printf '[build-prometheus] %s\n' "$*" >&2; }

have_all() {
	local t
	[[ -f "$cache_root/$key/complete" ]] || return 1
	for t in "${tools[@]}"; do [[ -x "$bin_dir/$t" ]] || return 1; done
}

build_into() {
	local out="$1" start=$SECONDS pkg="github.com/prometheus/prometheus"
	local ldflags="-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}"
	ldflags+=" -X github.com/prometheus/common/version.Branch=module"
	export CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false
	log "building Prometheus $PROMETHEUS_VERSION (module $PROMETHEUS_MODULE_VERSION; cold: 3-8 min on 2 cores)"
	(cd "$out" && GOBIN="$out" go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
		-ldflags "$ldflags" \
		"$pkg/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" "$pkg/cmd/promtool@$PROMETHEUS_MODULE_VERSION")
	log "built ${tools[*]} in $((SECONDS - start))s"
}

main() {
	command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
	mkdir -p "$cache_root"
	exec 9>"$cache_root/.lock"
	flock 9
	if have_all; then
		log "cached in $bin_dir"
	else
		local tmp="$cache_root/$key/tmp.$$"
		rm -rf "$tmp" && mkdir -p "$tmp/bin"
		trap 'rm -rf "$tmp"' EXIT
		build_into "$tmp/bin"
		rm -rf "$bin_dir"
		mv "$tmp/bin" "$bin_dir" && rm -rf "$tmp"
		trap - EXIT
		touch "$cache_root/$key/complete"
	fi
	mkdir -p "$repo/.cluster/bin"
	local t
	for t in "${tools[@]}"; do ln -sfn "$bin_dir/$t" "$repo/.cluster/bin/$t"; done
}

main "$@"
