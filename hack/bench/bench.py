#!/usr/bin/env python3
"""Serving benchmark driver (called by hack/bench/run.sh): runs, side by side in one run and
on the same models and thread budget,

1. in-process ONNX Runtime from Rust (benches/inprocess.rs): the baseline;
2. `modelpilot serve`, batching off and on;
3. the Python server (hack/bench/pyserver.py: FastAPI + uvicorn + onnxruntime);

with one load generator (wrk + hack/bench/post.lua) for both servers, at concurrency 1 and 16,
then measures time to ready and peak RSS, and writes results.json and report.md.

Every load run is bounded in time (wrk -d, plus a hard `timeout`), targets 127.0.0.1 only,
and every process started here is stopped here (its own process group).
"""

import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
HOST = "127.0.0.1"
# Safety bound on the responses of one load run (hack/bench/post.lua), far above what 10 s
# at the measured rates serve; a run that reaches it is flagged.
MAX_REQUESTS = 5_000_000
OURS_PORT, PY_PORT = 18080, 18090
# Benchmark size -> model made by hack/models/make_models.py.
MODELS = {"tiny": "iris", "mid": "mlp"}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Server:
    """A server process in its own process group, stopped (group-wide) on exit."""

    def __init__(self, cmd, port, env=None):
        self.cmd, self.port, self.env = cmd, port, env
        self.proc = None

    def __enter__(self):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(f"/tmp/bench-{self.port}.log", "wb"))
        return self

    def wait_ready(self, timeout=60.0):
        """Seconds from spawn to the first 200 of /v2/health/ready (polled every 2 ms)."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[0]} exited with {self.proc.returncode}; "
                                   f"see /tmp/bench-{self.port}.log")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=1)
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError(f"{self.cmd} not ready within {timeout}s")

    def peak_rss_mib(self):
        """Peak resident set (VmHWM) of the server and all its descendants, in MiB."""
        return sum(vm_hwm_kib(pid) for pid in descendants(self.proc.pid)) / 1024

    def cpu_seconds(self):
        """User + system CPU time of the server and all its descendants so far."""
        return sum(cpu_seconds(pid) for pid in descendants(self.proc.pid))

    def __exit__(self, *exc):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def descendants(pid):
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in pathlib.Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return pids


def cpu_seconds(pid):
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def server_timings(port):
    """Sums and counts of modelpilot's own infer latency histograms (total, queue, compute),
    or {} for a server without them."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        page = response.read().decode() if response.status == 200 else ""
    except OSError:
        return {}
    found = {}
    for line in page.splitlines():
        for part in ("request", "queue", "compute"):
            for stat in ("sum", "count"):
                prefix = f"modelpilot_inference_{part}_duration_seconds_{stat}{{"
                if line.startswith(prefix) and 'endpoint="infer"' in line:
                    found[f"{part}_{stat}"] = float(line.rsplit(" ", 1)[1])
    return found


def measure(server, port, model, body, concurrency, seconds):
    """One wrk run, plus the server's CPU time per request and (for modelpilot) where the
    server-side time went, from its own metrics, during it."""
    before, timings = server.cpu_seconds(), server_timings(port)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(port, model, body, concurrency, seconds)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = max(result["requests"], 1)
    result["server_cpu_us_per_request"] = (server.cpu_seconds() - before) * 1e6 / requests
    wrk_cpu = (done.ru_utime - children.ru_utime) + (done.ru_stime - children.ru_stime)
    result["loadgen_cpu_us_per_request"] = wrk_cpu * 1e6 / requests
    after = server_timings(port)
    if timings and after:
        n = max(after["request_count"] - timings["request_count"], 1)
        for part in ("request", "queue", "compute"):
            delta = after[f"{part}_sum"] - timings[f"{part}_sum"]
            result[f"server_{part}_us_mean"] = delta * 1e6 / n
    return result


def vm_hwm_kib(pid):
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wrk(port, model, body, concurrency, seconds):
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_PATH=f"/v2/models/{model}/infer",
               BENCH_MAX_REQUESTS=str(MAX_REQUESTS))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(HERE / "post.lua"), f"http://{HOST}:{port}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["throughput"] = result["requests"] / (result["duration_us"] / 1e6)
    if result["requests"] >= MAX_REQUESTS:
        log("  WARNING: the count bound stopped this run early; its throughput is not valid")
    if result["errors"] or result["non2xx"]:
        log(f"  WARNING: {result['errors']} socket errors, {result['non2xx']} non-2xx")
    return result


def inprocess(binary, model_path, concurrency, seconds, threads):
    cmd = [binary, "--model", str(model_path), "--threads", str(threads),
           "--concurrency", str(concurrency), "--seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    return json.loads(out.strip().splitlines()[-1])


def request_body(onnx_path, out_dir):
    """A one-row JSON inference request for the model's single FP32 input [N, F]."""
    import random

    import onnx

    graph = onnx.load(str(onnx_path)).graph
    [tensor] = graph.input
    width = tensor.type.tensor_type.shape.dim[-1].dim_value
    rng = random.Random(7)
    data = [round(rng.uniform(-1.0, 1.0), 4) for _ in range(width)]
    body = {"inputs": [{"name": tensor.name, "shape": [1, width], "datatype": "FP32",
                        "data": data}]}
    path = pathlib.Path(out_dir) / f"{onnx_path.stem}.request.json"
    path.write_text(json.dumps(body))
    return path


def fmt(r):
    return f"{r['throughput']:9.0f} req/s  p50 {r['p50_us']:8.0f} us  p99 {r['p99_us']:8.0f} us"


def run_servers(args, results):
    models = pathlib.Path(args.models)
    ours_base = [args.modelpilot, "serve", "--http-host", HOST, "--http-port", str(OURS_PORT),
                 "--threads", str(args.threads)]
    for size in args.sizes:
        model = MODELS[size]
        onnx = models / f"{model}.onnx"
        body = request_body(onnx, args.out)
        for c in args.concurrency:
            r = inprocess(args.inprocess, onnx, c, args.seconds, args.threads)
            results["inprocess"][f"{size}/c{c}"] = r
            log(f"in-process {size:4} c{c:<2}         {fmt(r)}")
        for batching in (False, True):
            cmd = ours_base + ["--model-uri", str(onnx), "--model-name", model]
            # Batching on: greedy (no added wait); see docs/performance.md.
            cmd += ["--batching", "--max-queue-delay-ms", "0"] if batching else []
            with Server(cmd, OURS_PORT) as server:
                server.wait_ready()
                wrk(OURS_PORT, model, body, 16, args.warmup)
                for c in args.concurrency:
                    r = measure(server, OURS_PORT, model, body, c, args.seconds)
                    mode = "batch" if batching else "nobatch"
                    results["ours"][f"{size}/c{c}/{mode}"] = r
                    log(f"modelpilot {size:4} c{c:<2} {mode:7} {fmt(r)}")
                results["rss_mib"][f"modelpilot serve, {size}, batching {'on' if batching else 'off'}"] = (
                    server.peak_rss_mib())
        cmd = [sys.executable, str(HERE / "pyserver.py"), "--model", str(onnx),
               "--port", str(PY_PORT), "--threads", str(args.threads)]
        with Server(cmd, PY_PORT) as server:
            server.wait_ready()
            wrk(PY_PORT, model, body, 16, args.warmup)
            for c in args.concurrency:
                r = measure(server, PY_PORT, model, body, c, args.seconds)
                results["python"][f"{size}/c{c}"] = r
                log(f"python     {size:4} c{c:<2}         {fmt(r)}")
            results["rss_mib"][f"Python server, {size}"] = server.peak_rss_mib()


def time_to_ready(args, results):
    onnx = pathlib.Path(args.models) / f"{MODELS['tiny']}.onnx"
    cmd = [args.modelpilot, "serve", "--http-host", HOST, "--http-port", str(OURS_PORT),
           "--threads", str(args.threads), "--model-uri", str(onnx)]
    times = []
    for _ in range(args.ready_runs):
        with Server(cmd, OURS_PORT) as server:
            times.append(server.wait_ready())
    results["ready_seconds"] = {"runs": times, "median": statistics.median(times),
                                "max": max(times)}
    log(f"time to ready (tiny, local): median {statistics.median(times)*1000:.0f} ms, "
        f"max {max(times)*1000:.0f} ms over {len(times)} runs")


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "loadavg_before": os.getloadavg(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--modelpilot", required=True)
    p.add_argument("--inprocess", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ready-runs", type=int, default=10)
    p.add_argument("--sizes", nargs="+", default=["tiny", "mid"], choices=sorted(MODELS))
    p.add_argument("--concurrency", nargs="+", type=int, default=[1, 16])
    p.add_argument("--nice", type=int, default=-10,
                   help="priority for the benchmark and everything it starts (needs root "
                        "for < 0; ignored when not allowed)")
    args = p.parse_args()
    try:
        # Same priority for servers, load generator and baseline (children inherit it), above
        # whatever else the machine runs, so background work perturbs all setups less.
        os.nice(args.nice)
        log(f"running at nice {os.nice(0)}")
    except OSError as err:
        log(f"running at nice {os.nice(0)} (could not change it: {err})")
    results = {"machine": machine(), "threads": args.threads, "seconds": args.seconds,
               "nice": os.nice(0),
               "models": {size: MODELS[size] for size in args.sizes},
               "inprocess": {}, "ours": {}, "python": {}, "rss_mib": {}}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_servers(args, results)
    time_to_ready(args, results)
    results["machine"]["loadavg_after"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(results, indent=2))
    sys.path.insert(0, str(HERE))
    import report  # noqa: E402 (the table formatting lives beside this driver)

    text = report.render(results)
    (out / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
