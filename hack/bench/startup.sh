#!/usr/bin/env bash
# Time for new capacity to serve (docs/performance.md, "Autoscaling: time for new capacity to
# serve"): scale a ModelDeployment on the local cluster's real node and time every new pod from
# the scale request to its first inference answer, phase by phase (hack/bench/startup.py).
#
#   hack/bench/startup.sh [LABEL] [startup.py run options…]      e.g. hack/bench/startup.sh after --runs 5
#   hack/bench/startup.py compare target/bench/startup/before.json target/bench/startup/after.json
#
# Needs the local cluster (sudo -E make cluster-up) and root (the pods' IPs are dialled from the
# host, the node agent's logs read). Builds the debug `modelpilot` the node agent runs in pods
# (STARTUP_BUILD=0 to skip; with it, again before a run when another checkout sharing the
# target directory replaced it) and uses it for the operator too (--operator BINARY for
# another, e.g. an earlier run's LABEL.modelpilot). Writes
# target/bench/startup/LABEL.json (and LABEL.controller.log) and prints the breakdown.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
label="${1:-run}"
[[ $# -gt 0 ]] && shift
hack/cluster/status.sh >/dev/null || { echo "startup.sh: the local cluster is not up (sudo -E make cluster-up)" >&2; exit 1; }
eval "$(hack/pyenv.sh)"
rebuild=()
if [[ "${STARTUP_BUILD:-1}" != 0 ]]; then
	cargo build --bin modelpilot >&2
	rebuild=(--rebuild) # again before a run if another checkout's build replaced it
fi
out="$repo/target/bench/startup"
models="$repo/target/bench/models"
mkdir -p "$out" "$models"
[[ -f "$models/mlp.onnx" ]] || python hack/models/make_models.py "$models" >&2
exec python hack/bench/startup.py run --label "$label" --out "$out/$label.json" \
	--models "$models" --modelpilot "$repo/target/debug/modelpilot" "${rebuild[@]}" "$@"
