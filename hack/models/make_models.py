#!/usr/bin/env python3
"""Builds the ONNX models modelpilot's serve tests and benchmarks run against.

Usage: make_models.py OUTDIR

Writes (deterministically, fixed seeds):
  iris.onnx          logistic regression on iris-like generated data (skl2onnx, no zipmap):
                     float_input FP32 [-1,4] -> label INT64 [-1], probabilities FP32 [-1,3]
  iris.profile.json  baseline profile of iris.onnx's inputs (drift statistics)
  iris.sample.json   a few rows of the training data with their labels
  mlp.onnx           MLP of a few large MatMul+Relu layers, input FP32 [-1,256] -> output FP32 [-1,16]
  multi.onnx         several inputs and outputs of different datatypes (FP32, INT64, BOOL,
                     STRING, FP16)
  identity.onnx      one Identity per protocol datatype: x_<TYPE> -> y_<TYPE>, shape [-1,-1]

Canary rollout candidates (see make_canary_models; measured with hack/models/check_models.py):
  iris_v2.onnx         a retrained iris classifier: other data seed, stronger regularisation
                       (C=0.3); iris.onnx's signature, about its accuracy (a good candidate)
  iris_slow.onnx       iris.onnx's graph and predictions behind a compute-heavy prefix (two
                       512x512 MatMuls per row) whose result is multiplied by 0 and added to
                       the input (ONNX Runtime cannot fold it: it depends on the input)
  iris_failing.onnx    iris.onnx's graph behind a Reshape that fails at run time (ONNX Runtime
                       status FAIL; the server answers 500) when any row of the request
                       has petal_length > FAIL_PETAL_LENGTH, about half of iris-like rows; the
                       warm-up's zeros pass
  iris_inaccurate.onnx trained with classes 1 and 2 swapped: class 0 right, the others wrong,
                       so accuracy is about 1/3 while the distribution of predicted classes
                       stays as balanced as iris.onnx's (a drop only label feedback reveals)
  iris_wide.onnx       an incompatible signature: float_input FP32 [-1,5] (a fifth feature)
  iris.eval.csv        300 labelled iris-like rows, shuffled (other seed than the training
                       data): sepal_length,sepal_width,petal_length,petal_width,species (0-2),
                       for `modelpilot-loadgen --input-csv iris.eval.csv --label-column species`

Measured with check_models.py (onnxruntime 1.31.1, 2-core development machine, batch 1, 2000
runs after warm-up) and through a local `modelpilot serve` (debug build, loopback, 1000 requests
of iris.eval.csv at concurrency 1 from modelpilot-loadgen):
  accuracy on iris.eval.csv   iris 1.000, iris_v2 1.000 (same labels on every row, probabilities
                              up to 0.145 apart), iris_inaccurate 0.347; predicted class shares
                              iris 0.347/0.330/0.323, iris_inaccurate 0.347/0.323/0.330
  ONNX Runtime latency        iris p50 0.011 ms, p99 0.04-0.06 ms; iris_slow p50 4.3 ms (2
                              threads) / 6.9 ms (1 thread), p99 8.8 / 8.5 ms (about 190x); with
                              parallel builds loading the machine, iris_slow p99 up to 27 ms
  server request duration     mean 0.63 ms iris, 8.9 ms iris_slow (compute 0.16 / 8.1 ms);
                              load generator p99 4.1 ms iris, 17.7 ms iris_slow
  iris_failing                0.473 of iris.eval.csv rows refused (ONNX Runtime status FAIL, so
                              the server's RunError::Runtime, HTTP 500); 476 of 1000 requests
                              answered http_500, the others as iris.onnx
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def iris_data(rng):
    """Three Gaussian classes of 4 features, shaped like the iris measurements."""
    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    scales = np.array([[0.35, 0.38, 0.17, 0.1], [0.5, 0.31, 0.47, 0.2], [0.63, 0.32, 0.55, 0.27]])
    xs, ys = [], []
    for label in range(3):
        xs.append(rng.normal(means[label], scales[label], size=(200, 4)))
        ys.append(np.full(200, label))
    return np.vstack(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def make_iris(out):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x, y = iris_data(rng)
    clf = LogisticRegression(max_iter=500, random_state=0).fit(x, y)
    model = to_onnx(
        clf,
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx.save(model, os.path.join(out, "iris.onnx"))
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    features = []
    for i, name in enumerate(names):
        edges = [float(round(v, 3)) for v in np.quantile(x[:, i], [0.1, 0.25, 0.5, 0.75, 0.9])]
        counts = np.histogram(x[:, i], bins=[-np.inf, *edges, np.inf])[0]
        features.append(
            {
                "name": name,
                "input": "float_input",
                "index": i,
                "edges": edges,
                "counts": [int(c) for c in counts],
                "mean": float(x[:, i].mean()),
                "std": float(x[:, i].std()),
            }
        )
    with open(os.path.join(out, "iris.profile.json"), "w") as f:
        json.dump({"version": 1, "features": features}, f, indent=2)
    picks = rng.choice(len(x), size=8, replace=False)
    with open(os.path.join(out, "iris.sample.json"), "w") as f:
        json.dump({"inputs": x[picks].tolist(), "labels": y[picks].tolist()}, f)


def make_mlp(out, width=256, hidden=1024, layers=3, classes=16):
    rng = np.random.default_rng(11)
    nodes, inits = [], []
    prev, prev_dim = "input", width
    for i in range(layers):
        w = (rng.standard_normal((prev_dim, hidden)) / np.sqrt(prev_dim)).astype(np.float32)
        b = (rng.standard_normal(hidden) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [
            helper.make_node("MatMul", [prev, f"w{i}"], [f"mm{i}"]),
            helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"]),
            helper.make_node("Relu", [f"add{i}"], [f"h{i}"]),
        ]
        prev, prev_dim = f"h{i}", hidden
    w = (rng.standard_normal((prev_dim, classes)) / np.sqrt(prev_dim)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, "wout"))
    nodes.append(helper.make_node("MatMul", [prev, "wout"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    save(graph, os.path.join(out, "mlp.onnx"))


def make_multi(out):
    vi = helper.make_tensor_value_info
    inputs = [
        vi("features", TensorProto.FLOAT, ["batch", 3]),
        vi("count", TensorProto.INT64, ["batch", 1]),
        vi("flag", TensorProto.BOOL, ["batch", 1]),
        vi("text", TensorProto.STRING, ["batch", 1]),
        vi("half", TensorProto.FLOAT16, ["batch", 2]),
    ]
    outputs = [
        vi("total", TensorProto.FLOAT, ["batch", 1]),
        vi("count_x2", TensorProto.INT64, ["batch", 1]),
        vi("not_flag", TensorProto.BOOL, ["batch", 1]),
        vi("text_out", TensorProto.STRING, ["batch", 1]),
        vi("half_neg", TensorProto.FLOAT16, ["batch", 2]),
    ]
    two = numpy_helper.from_array(np.array(2, dtype=np.int64), "two")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("ReduceSum", ["features", "axes"], ["fsum"], keepdims=1),
        helper.make_node("Cast", ["count"], ["count_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["fsum", "count_f"], ["total"]),
        helper.make_node("Mul", ["count", "two"], ["count_x2"]),
        helper.make_node("Not", ["flag"], ["not_flag"]),
        helper.make_node("Identity", ["text"], ["text_out"]),
        helper.make_node("Neg", ["half"], ["half_neg"]),
    ]
    graph = helper.make_graph(nodes, "multi", inputs, outputs, [two, axes])
    save(graph, os.path.join(out, "multi.onnx"))


IDENTITY_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


def make_identity(out):
    vi = helper.make_tensor_value_info
    inputs = [vi(f"x_{n}", t, ["batch", "n"]) for n, t in IDENTITY_TYPES.items()]
    outputs = [vi(f"y_{n}", t, ["batch", "n"]) for n, t in IDENTITY_TYPES.items()]
    nodes = [helper.make_node("Identity", [f"x_{n}"], [f"y_{n}"]) for n in IDENTITY_TYPES]
    save(helper.make_graph(nodes, "identity", inputs, outputs), os.path.join(out, "identity.onnx"))


# Canary rollout candidates: variations of iris.onnx with its exact signature (but iris_wide).

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# iris_failing.onnx refuses a request when a row's petal_length exceeds this (about the median
# of iris-like data: the setosa class never does, most of versicolor's and all of virginica's do).
FAIL_PETAL_LENGTH = 4.3
# iris_slow.onnx runs SLOW_ROUNDS MatMuls of [SLOW_SIZE, SLOW_SIZE] matrices per row.
SLOW_SIZE = 512
SLOW_ROUNDS = 2


def train_iris(x, y, out_name, out, c=1.0):
    """Logistic regression as iris.onnx is made (float_input [-1,F] -> label, probabilities)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=500, random_state=0).fit(x, y)
    model = to_onnx(
        clf,
        initial_types=[("float_input", FloatTensorType([None, x.shape[1]]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx.save(model, os.path.join(out, out_name))


def guard_input(base, out_name, out, nodes, inits):
    """Writes `base` (an iris model) with `nodes` put in front of it: they read `float_input`
    and write `checked_input`, which every node of the original graph reads instead. Both
    outputs then depend on the prefix, whichever outputs a request selects."""
    model = onnx.load(base)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == "float_input":
                node.input[i] = "checked_input"
    original = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + original)
    model.graph.initializer.extend(inits)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, out_name))


def zero_of(value, shape_of_zero):
    """Nodes turning `value` into a zero that still depends on it, added to float_input."""
    return [
        helper.make_node("Mul", [value, "zero_f"], ["zero_term"]),
        helper.make_node("Reshape", ["zero_term", shape_of_zero], ["zero_row"]),
        helper.make_node("Add", ["float_input", "zero_row"], ["checked_input"]),
    ]


def make_iris_slow(out):
    """iris.onnx's answers after SLOW_ROUNDS [S,S]x[S,S] MatMuls per row, built at run time from
    the row (tanh keeps every value finite, so x*0 is exactly 0)."""
    c = numpy_helper.from_array
    inits = [
        c(np.array([1, SLOW_SIZE, SLOW_SIZE], dtype=np.int64), "slow_shape"),
        c(np.array([1], dtype=np.int64), "axis1"),
        c(np.array([1, 2], dtype=np.int64), "axes12"),
        c(np.array([-1, 1], dtype=np.int64), "per_row"),
        c(np.array(0.0, dtype=np.float32), "zero_f"),
        c(np.array(1.0 / SLOW_SIZE, dtype=np.float32), "slow_scale"),
    ]
    nodes = [
        helper.make_node("Tanh", ["float_input"], ["slow_t"]),
        helper.make_node("ReduceMean", ["slow_t"], ["slow_m"], axes=[1], keepdims=1),
        helper.make_node("Unsqueeze", ["slow_m", "axis1"], ["slow_u"]),
        helper.make_node("Expand", ["slow_u", "slow_shape"], ["slow_0"]),
    ]
    for i in range(SLOW_ROUNDS):
        nodes += [
            helper.make_node("MatMul", [f"slow_{i}", "slow_0"], [f"slow_p{i}"]),
            helper.make_node("Mul", [f"slow_p{i}", "slow_scale"], [f"slow_{i + 1}"]),
        ]
    nodes.append(
        helper.make_node("ReduceSum", [f"slow_{SLOW_ROUNDS}", "axes12"], ["slow_sum"], keepdims=0)
    )
    guard_input(
        os.path.join(out, "iris.onnx"),
        "iris_slow.onnx",
        out,
        nodes + zero_of("slow_sum", "per_row"),
        inits,
    )


def make_iris_failing(out):
    """iris.onnx behind a Reshape of a 4-element constant to [4 + rows over the threshold]:
    fine when no row of the request crosses FAIL_PETAL_LENGTH, a run-time error otherwise."""
    c = numpy_helper.from_array
    inits = [
        c(np.array([2], dtype=np.int64), "petal_length_index"),
        c(np.array(FAIL_PETAL_LENGTH, dtype=np.float32), "fail_threshold"),
        c(np.array([4], dtype=np.int64), "four"),
        c(np.zeros(4, dtype=np.float32), "four_zeros"),
        c(np.array([1, 1], dtype=np.int64), "one_by_one"),
        c(np.array(0.0, dtype=np.float32), "zero_f"),
    ]
    nodes = [
        helper.make_node("Gather", ["float_input", "petal_length_index"], ["fail_pl"], axis=1),
        helper.make_node("Greater", ["fail_pl", "fail_threshold"], ["fail_over"]),
        helper.make_node("Cast", ["fail_over"], ["fail_over_i"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["fail_over_i"], ["fail_count"], keepdims=0),
        helper.make_node("Add", ["four", "fail_count"], ["fail_shape"]),
        helper.make_node("Reshape", ["four_zeros", "fail_shape"], ["fail_reshaped"]),
        helper.make_node("ReduceSum", ["fail_reshaped"], ["fail_sum"], keepdims=0),
    ]
    guard_input(
        os.path.join(out, "iris.onnx"),
        "iris_failing.onnx",
        out,
        nodes + zero_of("fail_sum", "one_by_one"),
        inits,
    )


def write_eval_csv(out, rows=300):
    """Labelled iris-like rows (other seed than any training set), shuffled so every stretch of
    the file mixes the classes."""
    x, y = iris_data(np.random.default_rng(21))
    picks = np.random.default_rng(22).permutation(len(x))[:rows]
    with open(os.path.join(out, "iris.eval.csv"), "w") as f:
        f.write(",".join(IRIS_FEATURES + ["species"]) + "\n")
        for i in picks:
            f.write(",".join(f"{v:.4f}" for v in x[i]) + f",{y[i]}\n")


def make_canary_models(out):
    """The candidates of the canary rollout tests (see the module docstring)."""
    x, y = iris_data(np.random.default_rng(8))
    train_iris(x, y, "iris_v2.onnx", out, c=0.3)
    x, y = iris_data(np.random.default_rng(7))
    train_iris(x, np.array([0, 2, 1])[y], "iris_inaccurate.onnx", out)
    extra = np.random.default_rng(9).normal(1.0, 0.3, size=(len(x), 1)).astype(np.float32)
    train_iris(np.hstack([x, extra]), y, "iris_wide.onnx", out)
    make_iris_slow(out)
    make_iris_failing(out)
    write_eval_csv(out)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="modelpilot-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    make_iris(out)
    make_mlp(out)
    make_multi(out)
    make_identity(out)
    make_canary_models(out)


if __name__ == "__main__":
    main()
