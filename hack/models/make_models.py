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


if __name__ == "__main__":
    main()
