"""Fixtures of the interop tests: the servers started by tests/serve_interop.rs.

The Rust test passes their addresses (host:port) in MODELPILOT_TEST_<MODEL>_ADDR and the
directory of the generated models in MODELPILOT_TEST_MODELS, so the expected outputs can be
computed in process with onnxruntime.
"""

import os

import numpy as np
import onnxruntime
import pytest


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `cargo test --test serve_interop`")
    return value


@pytest.fixture(scope="session")
def addr():
    """host:port of each running server, by model name."""
    return {m: _env(f"MODELPILOT_TEST_{m.upper()}_ADDR") for m in ("iris", "multi", "identity")}


@pytest.fixture(scope="session")
def reference():
    """Runs a model in process, for comparing the server's answers."""
    models = _env("MODELPILOT_TEST_MODELS")
    sessions = {}

    def run(model, feeds):
        if model not in sessions:
            sessions[model] = onnxruntime.InferenceSession(os.path.join(models, f"{model}.onnx"))
        session = sessions[model]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds)))

    return run


@pytest.fixture
def iris_rows():
    rng = np.random.default_rng(3)
    return (rng.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.7], size=(5, 4))).astype(np.float32)
