#!/usr/bin/env bash
# `make bench`: the serving benchmark, in one run on this machine (see docs/performance.md).
#
#   1. Python env (hack/pyenv.sh) for the ONNX Runtime library, the models and the Python server
#   2. release builds of `modelpilot` and of the in-process baseline (benches/inprocess.rs)
#   3. the test models (hack/models/make_models.py): iris = tiny, mlp = mid-size
#   4. hack/bench/bench.py: in-process vs served vs Python, time to ready, peak RSS
#
# Results: target/bench/results.json and target/bench/report.md (also printed).
# Knobs (environment): BENCH_SECONDS (10), BENCH_THREADS (2), BENCH_READY_RUNS (10).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
for tool in wrk curl; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

eval "$(hack/pyenv.sh)"
out="$repo/target/bench"
models="$out/models"
mkdir -p "$models"

echo "[bench] building release binaries" >&2
# One release build for both, so they share every compiled dependency.
inprocess="$(cargo build --release --bin modelpilot --bench inprocess --message-format=json-render-diagnostics |
	python -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "inprocess":
        print(m["executable"])')"
[[ -x "$inprocess" ]] || { echo "run.sh: could not build benches/inprocess.rs" >&2; exit 1; }

python hack/models/make_models.py "$models" >&2

python hack/bench/bench.py \
	--modelpilot "$repo/target/release/modelpilot" \
	--inprocess "$inprocess" \
	--models "$models" \
	--out "$out" \
	--seconds "${BENCH_SECONDS:-10}" \
	--threads "${BENCH_THREADS:-2}" \
	--ready-runs "${BENCH_READY_RUNS:-10}"
