#!/usr/bin/env python3
"""Checks the canary rollout candidates make_models.py writes, and prints the figures its
docstring quotes.

Usage: check_models.py MODELDIR   (after `make_models.py MODELDIR`, in the test venv)

Asserts what the canary end-to-end tests rely on, with ONNX Runtime itself:
  - every candidate but iris_wide.onnx has iris.onnx's signature (names, types, shapes);
    iris_wide.onnx differs;
  - iris_v2.onnx is about as accurate as iris.onnx (>= 0.9), iris_inaccurate.onnx is not (<= 0.5);
  - iris_slow.onnx answers exactly as iris.onnx does, its p99 at batch 1 is >= 5x iris.onnx's and
    < 50 ms;
  - iris_failing.onnx raises a run-time error (not INVALID_ARGUMENT, which the server would answer
    with 400) for every row with petal_length > FAIL_PETAL_LENGTH, answers as iris.onnx for the
    others and for the server's warm-up input (zeros).
"""

import csv
import os
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import FAIL_PETAL_LENGTH  # noqa: E402

SAME_SIGNATURE = ["iris_v2", "iris_slow", "iris_failing", "iris_inaccurate"]


def session(path, threads=0):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 4  # the failing model's refusals are expected
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def signature(s):
    def spec(v):
        return (v.name, v.type, tuple(d if isinstance(d, int) else -1 for d in v.shape))

    return [spec(v) for v in s.get_inputs()], [spec(v) for v in s.get_outputs()]


def eval_rows(d):
    with open(os.path.join(d, "iris.eval.csv")) as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[k]) for k in list(r)[:4]] for r in rows], dtype=np.float32)
    y = np.array([int(r["species"]) for r in rows])
    return x, y


def predict(s, x):
    return s.run(["label"], {"float_input": x})[0]


def p99_ms(s, x, runs=2000):
    for row in x[:50]:
        s.run(None, {"float_input": row[None, :]})
    times = []
    for i in range(runs):
        row = x[i % len(x)][None, :]
        start = time.perf_counter()
        s.run(None, {"float_input": row})
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def class_shares(labels):
    return [round(float(np.mean(labels == c)), 3) for c in range(3)]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    path = lambda name: os.path.join(d, f"{name}.onnx")  # noqa: E731
    x, y = eval_rows(d)
    base = session(path("iris"))
    base_sig = signature(base)
    base_labels = predict(base, x)
    for name in SAME_SIGNATURE:
        assert signature(session(path(name))) == base_sig, name
    assert signature(session(path("iris_wide"))) != base_sig
    print(f"iris.eval.csv: {len(x)} rows, classes {class_shares(y)}")

    acc = {
        n: float(np.mean(predict(session(path(n)), x) == y))
        for n in ["iris", "iris_v2", "iris_inaccurate"]
    }
    inaccurate = predict(session(path("iris_inaccurate")), x)
    print(f"accuracy: {acc}")
    print(
        f"predicted classes: iris {class_shares(base_labels)}, "
        f"iris_inaccurate {class_shares(inaccurate)}"
    )
    assert acc["iris"] >= 0.9 and acc["iris_v2"] >= 0.9 and acc["iris_inaccurate"] <= 0.5
    v2 = session(path("iris_v2"))
    agree = float(np.mean(predict(v2, x) == base_labels))
    base_probs = base.run(["probabilities"], {"float_input": x})[0]
    moved = float(np.abs(v2.run(["probabilities"], {"float_input": x})[0] - base_probs).max())
    print(f"iris_v2 agrees with iris on {agree:.3f} of rows; probabilities up to {moved:.3f} apart")
    assert moved > 0.01, "iris_v2 is a different model"

    slow = session(path("iris_slow"))
    assert (predict(slow, x) == base_labels).all()
    assert np.array_equal(slow.run(["probabilities"], {"float_input": x})[0], base_probs)
    for threads in (0, 1):
        fast_t = p99_ms(session(path("iris"), threads), x)
        slow_t = p99_ms(session(path("iris_slow"), threads), x)
        print(
            f"latency ms (threads={threads or 'all'}): "
            f"iris p50 {fast_t[0]:.3f} p99 {fast_t[1]:.3f}, "
            f"iris_slow p50 {slow_t[0]:.3f} p99 {slow_t[1]:.3f} ({slow_t[1] / fast_t[1]:.0f}x)"
        )
        assert slow_t[1] >= 5 * fast_t[1] and slow_t[1] < 50, (fast_t, slow_t)

    failing = session(path("iris_failing"))
    over = x[:, 2] > FAIL_PETAL_LENGTH
    kinds = set()
    for row, label, bad in zip(x, base_labels, over):
        try:
            got = predict(failing, row[None, :])
        except Exception as e:  # the kind of error decides the server's status code
            assert bad, f"{row} failed: {e}"
            kinds.add(type(e).__name__)
            continue
        assert not bad, f"{row} answered"
        assert got[0] == label
    assert kinds and "InvalidArgument" not in kinds, kinds
    predict(failing, np.zeros((1, 4), dtype=np.float32))
    print(f"iris_failing: {over.mean():.3f} of iris.eval.csv rows fail, as {sorted(kinds)}")
    print("ok")


if __name__ == "__main__":
    main()
