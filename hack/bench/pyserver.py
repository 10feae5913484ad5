#!/usr/bin/env python3
"""Python comparison server for the benchmark: FastAPI + uvicorn + onnxruntime speaking the
same Open Inference Protocol v2 JSON as `modelpilot serve`, so one load generator and one
request body drive both.

It is configured the way a careful Python deployment would be on the same thread budget:
`--threads` uvicorn worker processes, each with one ONNX Runtime session using one intra-op
thread, inference off the event loop (onnxruntime releases the GIL while it runs).

Usage: pyserver.py --model M.onnx [--port 8090] [--threads 2]
"""

import argparse
import contextlib
import json
import os

import anyio
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

DTYPES = {
    "BOOL": np.bool_,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP32": np.float32,
    "FP64": np.float64,
}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}

state = {}


def session():
    """The process's session, created on first use (after uvicorn forked the worker)."""
    if "session" not in state:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        model = os.environ["PYSERVER_MODEL"]
        state["session"] = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        state["limiter"] = anyio.CapacityLimiter(1)
        state["name"] = os.path.splitext(os.path.basename(model))[0]
    return state["session"]


@contextlib.asynccontextmanager
async def lifespan(_app):
    session()
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/v2/health/ready")
def ready():
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    sess = session()
    try:
        body = json.loads(await request.body())
        feeds = {
            t["name"]: np.asarray(t["data"], dtype=DTYPES[t["datatype"]]).reshape(t["shape"])
            for t in body["inputs"]
        }
    except (ValueError, KeyError, TypeError) as err:
        raise HTTPException(status_code=400, detail=str(err)) from err
    outputs = await anyio.to_thread.run_sync(sess.run, None, feeds, limiter=state["limiter"])
    answer = {
        "model_name": state["name"],
        "outputs": [
            {
                "name": meta.name,
                "shape": list(value.shape),
                "datatype": NAMES.get(value.dtype, "BYTES"),
                "data": value.ravel().tolist(),
            }
            for meta, value in zip(sess.get_outputs(), outputs)
        ],
    }
    if "id" in body:
        answer["id"] = body["id"]
    return Response(json.dumps(answer), media_type="application/json")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ["PYSERVER_MODEL"] = os.path.abspath(args.model)
    here = os.path.dirname(os.path.abspath(__file__))
    uvicorn.run(
        "pyserver:app",
        app_dir=here,
        host="127.0.0.1",
        port=args.port,
        workers=args.threads,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
