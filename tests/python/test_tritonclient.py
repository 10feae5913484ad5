"""modelpilot serve driven by tritonclient.http: health, metadata, JSON and binary tensors."""

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


@pytest.fixture
def client(addr):
    with httpclient.InferenceServerClient(url=addr["iris"]) as c:
        yield c


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", model_version="1")
    assert not client.is_model_ready("nope")
    server = client.get_server_metadata()
    assert server["name"] == "modelpilot"
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("iris")
    assert meta["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
def test_infer_matches_onnxruntime(client, reference, iris_rows, binary_in, binary_out):
    inp = httpclient.InferInput("float_input", list(iris_rows.shape), "FP32")
    inp.set_data_from_numpy(iris_rows, binary_data=binary_in)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=binary_out),
        httpclient.InferRequestedOutput("probabilities", binary_data=binary_out),
    ]
    result = client.infer("iris", [inp], outputs=outputs, request_id="t-1")
    expected = reference("iris", {"float_input": iris_rows})
    assert result.get_response()["id"] == "t-1"
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-5)


def test_default_outputs_are_all_outputs(client, reference, iris_rows):
    inp = httpclient.InferInput("float_input", list(iris_rows.shape), "FP32")
    inp.set_data_from_numpy(iris_rows)
    result = client.infer("iris", [inp])
    expected = reference("iris", {"float_input": iris_rows})
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])


def test_errors_surface_as_exceptions(client):
    bad = httpclient.InferInput("float_input", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException, match="shape"):
        client.infer("iris", [bad])
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("nope", [bad])


def test_every_datatype_binary_and_json(addr):
    samples = {
        "BOOL": np.array([[True, False]]),
        "UINT8": np.array([[0, 255]], dtype=np.uint8),
        "UINT16": np.array([[1, 65535]], dtype=np.uint16),
        "UINT32": np.array([[7, 2**32 - 1]], dtype=np.uint32),
        "UINT64": np.array([[0, 2**64 - 1]], dtype=np.uint64),
        "INT8": np.array([[-128, 127]], dtype=np.int8),
        "INT16": np.array([[-2, 300]], dtype=np.int16),
        "INT32": np.array([[-5, 2**31 - 1]], dtype=np.int32),
        "INT64": np.array([[-(2**53) - 1, 3]], dtype=np.int64),
        "FP16": np.array([[1.5, -2.0]], dtype=np.float16),
        "FP32": np.array([[0.25, -1.5]], dtype=np.float32),
        "FP64": np.array([[0.1, 1e300]], dtype=np.float64),
        "BYTES": np.array([["héllo".encode(), b""]], dtype=np.object_),
    }
    with httpclient.InferenceServerClient(url=addr["identity"]) as client:
        for binary in (True, False):
            inputs, outputs = [], []
            for dt, arr in samples.items():
                inp = httpclient.InferInput(f"x_{dt}", list(arr.shape), dt)
                inp.set_data_from_numpy(arr, binary_data=binary)
                inputs.append(inp)
                outputs.append(httpclient.InferRequestedOutput(f"y_{dt}", binary_data=binary))
            result = client.infer("identity", inputs, outputs=outputs)
            for dt, arr in samples.items():
                got = result.as_numpy(f"y_{dt}")
                if dt == "BYTES" and not binary:
                    got = np.vectorize(lambda s: s if isinstance(s, bytes) else s.encode(), otypes=[object])(got)
                np.testing.assert_array_equal(got, arr, err_msg=f"{dt} binary={binary}")


def test_mixed_datatype_model(addr, reference):
    feeds = {
        "features": np.array([[1, 2, 3], [0.5, 0.5, 0]], dtype=np.float32),
        "count": np.array([[10], [-1]], dtype=np.int64),
        "flag": np.array([[True], [False]]),
        "text": np.array([["a b"], ["ç"]], dtype=object),
        "half": np.array([[1, -0.5], [2, 0]], dtype=np.float16),
    }
    datatypes = {"features": "FP32", "count": "INT64", "flag": "BOOL", "text": "BYTES", "half": "FP16"}
    with httpclient.InferenceServerClient(url=addr["multi"]) as client:
        inputs = []
        for name, arr in feeds.items():
            inp = httpclient.InferInput(name, list(arr.shape), datatypes[name])
            data = np.array([[s.encode() for s in row] for row in arr], dtype=object) if name == "text" else arr
            inp.set_data_from_numpy(data)
            inputs.append(inp)
        result = client.infer("multi", inputs)
    expected = reference("multi", feeds)
    for name in ("total", "count_x2", "not_flag", "half_neg"):
        np.testing.assert_array_equal(result.as_numpy(name), expected[name], err_msg=name)
    assert [s.decode() for s in result.as_numpy("text_out").flatten()] == ["a b", "ç"]
