#!/usr/bin/env bash
# `make test`: everything CI checks, in one run against a real control plane.
#
#   0. root check: the local cluster runs a real node (network namespaces,
#      a bridge, kube-proxy's iptables rules); without root this says so
#      and stops before anything else
#   1. Python env for tests (hack/pyenv.sh: onnxruntime, ORT_DYLIB_PATH)
#   2. the local cluster: started if it is not up, and then stopped again
#      on exit (down.sh then asserts nothing is left); a cluster that was
#      already up is left running
#   3. cluster smoke check (nodes, a Deployment, a native-sidecar pod,
#      kube-proxy, Prometheus discovery)
#   4. shellcheck of these scripts (when installed), cargo fmt --check,
#      cargo clippy --workspace --all-targets -D warnings
#   5. cargo test --workspace for every target but the benches (unit tests
#      of the modelpilot crate and the hack/ tools, integration tests
#      against the cluster and the real binaries, CRD staleness). The
#      benches are harness=false drivers that need arguments (make bench);
#      clippy --all-targets still compiles them.
#
# Every step runs even when an earlier one failed (except those that need
# the cluster when it could not start); the summary lists each step's
# result and time, and the exit status is non-zero if any step failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

summary=()
failures=0
started_cluster=0

say() { printf '\n==> %s\n' "$*"; }

# step NAME CMD...: runs CMD, records its result and duration.
step() {
	local name="$1"; shift
	local start=$SECONDS rc=0
	say "$name"
	"$@" || rc=$?
	local took=$((SECONDS - start))
	if ((rc == 0)); then
		summary+=("$(printf '  ok    %-54s %5ss' "$name" "$took")")
	else
		summary+=("$(printf '  FAIL  %-54s %5ss (exit %s)' "$name" "$took" "$rc")")
		failures=$((failures + 1))
	fi
	return "$rc"
}

skip() { summary+=("$(printf '  skip  %-54s (%s)' "$1" "$2")"); failures=$((failures + 1)); }

python_env() {
	local exports
	exports="$(hack/pyenv.sh)" || return 1
	eval "$exports"
	echo "ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-unset}"
}

cluster_up() {
	if hack/cluster/status.sh; then
		echo "using the running cluster; it stays up afterwards"
		return 0
	fi
	started_cluster=1
	hack/cluster/up.sh
}

on_exit() {
	local rc=$?
	if ((started_cluster)); then
		say "stopping the cluster this run started"
		hack/cluster/down.sh || rc=1
	fi
	exit "$rc"
}

print_summary() {
	say "summary (${SECONDS}s in all)"
	printf '%s\n' "${summary[@]}"
	if ((failures == 0)); then
		echo "make test: all ${#summary[@]} steps ok"
	else
		echo "make test: $failures of ${#summary[@]} steps failed"
	fi
}

main() {
	hack/cluster/net.sh preflight "make test (hack/test.sh)"
	trap on_exit EXIT
	trap 'exit 130' INT TERM
	if [[ -x hack/pyenv.sh ]]; then
		step "python env (hack/pyenv.sh)" python_env || true
	fi
	local cluster_ok=1
	step "cluster up" cluster_up || cluster_ok=0
	export KUBECONFIG="$repo/.cluster/kubeconfig"
	export PATH="$repo/.cluster/bin:$PATH"
	if ((cluster_ok)); then
		step "cluster smoke check" hack/cluster/smoke.sh || true
	else
		skip "cluster smoke check" "no cluster"
	fi
	if command -v shellcheck >/dev/null; then
		step "shellcheck (cluster, test, demo, CI scripts)" \
			shellcheck -x hack/cluster/*.sh hack/test.sh hack/demo.sh .ci/run || true
	fi
	step "cargo fmt --check" cargo fmt --all -- --check || true
	step "cargo clippy --workspace --all-targets -D warnings" \
		cargo clippy --workspace --all-targets -- -D warnings || true
	step "cargo test --workspace --doc (worked examples)" cargo test --workspace --doc || true
	if ((cluster_ok)); then
		step "cargo test --workspace (lib, bins, tests, examples)" \
			cargo test --workspace --no-fail-fast --lib --bins --tests --examples || true
	else
		skip "cargo test --workspace (lib, bins, tests, examples)" "no cluster"
	fi
	print_summary
	((failures == 0))
}

main "$@"
