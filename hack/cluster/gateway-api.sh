#!/usr/bin/env bash
# Installs the Gateway API's standard-channel CRDs (GatewayClass, Gateway,
# HTTPRoute, GRPCRoute, ReferenceGrant, BackendTLSPolicy, ListenerSet,
# TCPRoute, TLSRoute, UDPRoute) into the local cluster and waits until each
# is Established, so modelpilot's GatewayAPI traffic mode meets the real
# HTTPRoute schema, CEL rules included (make cluster-up calls it once the
# API server is ready).
#
# The YAML comes from the Go module sigs.k8s.io/gateway-api (it ships its
# CRDs under config/crd/standard/) at the version pinned below, fetched with
# `go mod download` through the module proxy. The module zip is checked
# against the pinned go.sum hash before a file of it is used, and only the
# CRDs are kept: the channel's safe-upgrades ValidatingAdmissionPolicy is
# left out (it is not a CRD, and it would refuse moving this cluster to an
# older pinned version or to the experimental channel).
#
# The extracted CRDs are cached outside the checkout, per version, under
#   ${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/gateway-api/<version>/
# so `go` is needed only the first time. Idempotent: when every CRD is
# already installed at this version and Established it changes nothing;
# otherwise it applies them server-side (field manager
# modelpilot-gateway-api) and waits.
#
# Usage: hack/cluster/gateway-api.sh   (needs a running cluster)
#   env: MODELPILOT_CACHE             cache root (default ~/.cache/modelpilot)
#        CLUSTER_READY_TIMEOUT=90     seconds the CRDs may take to be Established
set -euo pipefail
# shellcheck source=hack/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The newest v1.x the module proxy served when this was pinned. v1.7.0's
# go.mod says `go 1.27.0`, so `go mod download` fetches and verifies the
# zip but does not extract it for an older Go; the YAML is read from the
# zip instead (the files are the same).
GATEWAY_API_VERSION=v1.7.0
GATEWAY_API_SUM=h1:duVnm7nO6oXfMMUWfcDoBph47CYR/ME3NGxccOVglaY=
module=sigs.k8s.io/gateway-api

cache_root="${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}/gateway-api"
cache_dir="$cache_root/$GATEWAY_API_VERSION"
timeout="${CLUSTER_READY_TIMEOUT:-90}"

kubectl() { "$bin_dir/kubectl" --kubeconfig="$kubeconfig" "$@"; }

# extract_crds ZIP DIR: checks ZIP's go.sum hash (dirhash "h1": the SHA-256
# of the sorted "<sha256 of file>  <name>" lines), then writes the
# standard-channel CRD files to DIR/standard/ and their names to
# DIR/crds.txt.
extract_crds() {
	python3 - "$1" "$GATEWAY_API_SUM" "$module@$GATEWAY_API_VERSION/config/crd/standard/" "$2" <<'PY'
import base64, hashlib, pathlib, re, sys, zipfile

zip_path, want, prefix, out = sys.argv[1:5]
with zipfile.ZipFile(zip_path) as z:
    names = sorted(z.namelist())
    lines = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n}\n" for n in names)
    got = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
    if got != want:
        sys.exit(f"{zip_path} hashes to {got}, not the pinned {want}")
    std = pathlib.Path(out) / "standard"
    std.mkdir(parents=True)
    crds = []
    for n in names:
        base = n[len(prefix):]
        if not n.startswith(prefix) or "/" in base or not base.endswith(".yaml"):
            continue
        text = z.read(n).decode()
        if not re.search(r"^kind: CustomResourceDefinition$", text, re.M):
            continue
        m = re.search(r'^metadata:\n(?:  .*\n)*?  name: "?([a-z0-9.-]+)"?$', text, re.M)
        if not m:
            sys.exit(f"{n}: no metadata.name")
        (std / base).write_text(text)
        crds.append(m.group(1))
    if not crds:
        sys.exit(f"no CustomResourceDefinition under {prefix} in {zip_path}")
    (pathlib.Path(out) / "crds.txt").write_text("".join(c + "\n" for c in crds))
PY
}

# fetch: fills the cache for the pinned version unless it is complete.
# Concurrent callers are serialised by a lock; the result is renamed into
# place only when complete.
fetch() {
	[[ -f "$cache_dir/complete" ]] && return 0
	command -v go >/dev/null || die "go is not on PATH (needed once, to fetch $module@$GATEWAY_API_VERSION)"
	mkdir -p "$cache_root"
	exec 7>"$cache_root/.lock"
	flock -w 300 7 || die "another fetch still holds $cache_root/.lock after 300s"
	if [[ ! -f "$cache_dir/complete" ]]; then
		local tmp="$cache_root/tmp.$$" json zip
		rm -rf "$tmp" && mkdir -p "$tmp/work"
		# shellcheck disable=SC2064 # expand $tmp now
		trap "rm -rf '$tmp'" EXIT
		log "fetching $module@$GATEWAY_API_VERSION (go mod download)"
		# Outside any module; GOTOOLCHAIN=local: no toolchain download for
		# the module's go directive (only its files are needed).
		json="$(cd "$tmp/work" && GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
			go mod download -json "$module@$GATEWAY_API_VERSION" 2>"$tmp/go.err")" || true
		zip="$(printf '%s' "$json" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("Zip", ""))' \
			2>/dev/null)" || true
		[[ -n "$zip" && -f "$zip" ]] \
			|| die "go mod download $module@$GATEWAY_API_VERSION failed: ${json:-$(cat "$tmp/go.err")}"
		extract_crds "$zip" "$tmp/out" || die "could not extract the CRDs from $zip"
		rm -rf "$cache_dir"
		mv "$tmp/out" "$cache_dir"
		touch "$cache_dir/complete"
		rm -rf "$tmp"
		trap - EXIT
	fi
	exec 7>&-
}

# installed CRD...: every CRD exists with this bundle version and is
# Established.
installed() {
	local lines name
	lines="$(kubectl get crd -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version} {.status.conditions[?(@.type=="Established")].status}{"\n"}{end}')" \
		|| return 1
	for name in "$@"; do
		grep -qxF "$name $GATEWAY_API_VERSION True" <<<"$lines" || return 1
	done
}

main() {
	[[ -x "$bin_dir/kubectl" ]] || die "$bin_dir/kubectl missing (make tools)"
	[[ -f "$kubeconfig" ]] || die "$kubeconfig missing: the cluster is not up (make cluster-up)"
	fetch
	local crds
	mapfile -t crds <"$cache_dir/crds.txt"
	if installed "${crds[@]}"; then
		log "Gateway API $GATEWAY_API_VERSION CRDs already installed (${#crds[@]})"
		return 0
	fi
	kubectl apply --server-side --force-conflicts --field-manager=modelpilot-gateway-api \
		-f "$cache_dir/standard" >/dev/null
	kubectl wait --for=condition=Established --timeout="${timeout}s" "${crds[@]/#/crd/}" >/dev/null
	log "Gateway API $GATEWAY_API_VERSION CRDs installed and Established: ${crds[*]%%.*}"
}

main "$@"
