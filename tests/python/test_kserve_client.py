"""modelpilot serve driven by KServe's v2 REST client (InferenceRESTClient)."""

import asyncio

import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def run(coro_fn):
    async def wrapper():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
        try:
            return await coro_fn(client)
        finally:
            await client.close()

    return asyncio.run(wrapper())


def test_health(addr):
    base = f"http://{addr['iris']}"

    async def check(client):
        assert await client.is_server_live(base)
        assert await client.is_server_ready(base)
        assert await client.is_model_ready(base, "iris")

    run(check)


@pytest.mark.parametrize("binary", [False, True])
def test_infer_matches_onnxruntime(addr, reference, iris_rows, binary):
    base = f"http://{addr['iris']}"
    inp = InferInput("float_input", list(iris_rows.shape), "FP32")
    inp.set_data_from_numpy(iris_rows, binary_data=binary)
    request = InferRequest(model_name="iris", infer_inputs=[inp], request_id="k-1")

    async def infer(client):
        return await client.infer(base, request, model_name="iris")

    response = run(infer)
    expected = reference("iris", {"float_input": iris_rows})
    assert response.id == "k-1"
    by_name = {o.name: o.as_numpy() for o in response.outputs}
    np.testing.assert_array_equal(by_name["label"], expected["label"])
    np.testing.assert_allclose(by_name["probabilities"], expected["probabilities"], rtol=1e-5)


def test_unknown_model_is_an_http_error(addr, iris_rows):
    base = f"http://{addr['iris']}"
    inp = InferInput("float_input", list(iris_rows.shape), "FP32")
    inp.set_data_from_numpy(iris_rows, binary_data=False)
    request = InferRequest(model_name="nope", infer_inputs=[inp])

    async def infer(client):
        return await client.infer(base, request, model_name="nope")

    with pytest.raises(Exception, match="404"):
        run(infer)
