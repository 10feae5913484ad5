#!/usr/bin/env python3
"""Time for new capacity to serve (called by hack/bench/startup.sh; see docs/performance.md,
"Autoscaling: time for new capacity to serve").

On the local cluster's real node, one ModelDeployment serves a model from an S3-compatible store
on the node's bridge address; the driver scales it from --base to --to replicas and follows every
new pod until it answers inference requests, then scales back and repeats (--runs). Per new pod it
records, in milliseconds after the API server accepted the scale request (the ModelDeployment
watch event carrying the new spec.replicas):

  deployment   the operator wrote the new replicas to the Deployment (Deployment watch)
  created      the pod object exists (pod watch)
  scheduled    spec.nodeName is set (pod watch)
  agent        the node agent took the pod up (its log: "bound to this node")
  sandbox      network namespace and pod IP ready (node agent log)
  container    the server process was started (node agent log)
  listening    the server listens (server log)
  fetch_start  the server's model request reached the store (store)
  fetched      the model is in the cache and verified (server log)
  loaded       ONNX Runtime sessions created (server log; "-" for servers that do not log it)
  warm         warm-up done (server log; "-" likewise)
  model_ready  the server reports ready (server log)
  direct       first 200 of an inference request sent to the pod IP (polled every --poll-ms)
  started      the startup probe passed (pod watch: containerStatuses[].started)
  ready        the pod's Ready condition (pod watch)
  endpoint     the pod is a ready endpoint of the Service (EndpointSlice watch)
  service      first 200 through the Service's ClusterIP answered by this pod (same polling)

Watch times are when an event reached this process (a few ms after the write; separate watches
can deliver out of order by that much). Pods run target/debug/modelpilot, which another checkout
sharing the target directory may rebuild: every server's ELF build ID is read from its process,
a run in which a server is not the build under test is left out of the summary and repeated
(up to 3 x --runs attempts), with --rebuild after building it again.

Only loopback and the cluster's bridge, pod and Service addresses are dialled; every process
started here (the operator, kubectl watches) is stopped here, and the namespace is deleted.

  startup.py run --out FILE.json --models DIR --modelpilot BIN [--operator BIN] [--rebuild]
                 [--model iris|mlp] [--store-delay-ms 0] [--base 1] [--to 3] [--runs 5]
  startup.py compare BEFORE.json AFTER.json      side-by-side medians of two runs
"""

import argparse
import datetime
import hashlib
import http.client
import http.server
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = REPO / ".cluster"
KUBECONFIG = CLUSTER / "kubeconfig"
KUBECTL = str(CLUSTER / "bin" / "kubectl")
NODE_IP = "10.244.128.1"
BUCKET = "models"
PORT = 8080

# (key, label, the phase its step is measured from; None = the scale request).
PHASES = [
    ("deployment", "operator scaled the Deployment", None),
    ("created", "pod created", "deployment"),
    ("scheduled", "pod scheduled", "created"),
    ("agent", "node agent picked it up", "scheduled"),
    ("sandbox", "sandbox (netns, IP) ready", "agent"),
    ("container", "server process started", "sandbox"),
    ("listening", "server listening", "container"),
    ("fetch_start", "model request reached the store", "listening"),
    ("fetched", "model downloaded and verified", "fetch_start"),
    ("loaded", "ONNX Runtime sessions created", "fetched"),
    ("warm", "warm-up done", "loaded"),
    ("model_ready", "server reports ready", "warm"),
    ("direct", "first inference to the pod IP", "model_ready"),
    ("started", "startup probe passed", "model_ready"),
    ("ready", "pod Ready condition", "started"),
    ("endpoint", "ready in the EndpointSlice", "ready"),
    ("service", "first inference via the Service", "endpoint"),
]
PRED = {key: pred for key, _, pred in PHASES}


def log(msg):
    print(f"[startup] {msg}", file=sys.stderr, flush=True)


def kubectl(*args, stdin=None, check=True):
    result = subprocess.run(
        [KUBECTL, f"--kubeconfig={KUBECONFIG}", *args],
        input=stdin, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def parse_ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Store:
    """A minimal S3-compatible object store (path-style GET /<bucket>/<key>, credentials not
    checked: all the server's S3 client asks of it) on the node's bridge address, recording
    when each client IP's request arrived and finished."""

    def __init__(self, files, delay):
        self.files, self.requests, self.lock = files, [], threading.Lock()
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                start = time.time()
                key = self.path.split("?")[0].removeprefix(f"/{BUCKET}/")
                body = store.files.get(key)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
                self.send_header("Last-Modified", "Fri, 27 Nov 2026 12:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)
                with store.lock:
                    store.requests.append((self.client_address[0], start, time.time()))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((NODE_IP, 0), Handler)
        self.url = f"http://{NODE_IP}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first_request(self, ip, after):
        with self.lock:
            return next((s for c, s, _ in self.requests if c == ip and s >= after), None)


class Watch:
    """`kubectl get --raw <path>?watch=1`: every event with the time it arrived."""

    def __init__(self, path):
        sep = "&" if "?" in path else "?"
        self.proc = subprocess.Popen(
            [KUBECTL, f"--kubeconfig={KUBECONFIG}", "get", "--raw",
             f"{path}{sep}watch=1&timeoutSeconds=3600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events, self.lock = [], threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.time()
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self.lock:
                self.events.append((now, event["type"], event["object"]))

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def pod_state(watch):
    """name -> latest pod object of the pods not deleted (from the watch so far)."""
    pods = {}
    for _, kind, obj in watch.snapshot():
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            pods.pop(name, None)
        else:
            pods[name] = obj
    return pods


def is_ready(pod):
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def first_time(events, name, pred, after):
    return next((t for t, kind, obj in events
                 if t >= after and kind != "DELETED" and obj["metadata"]["name"] == name
                 and pred(obj)), None)


def request(addr, method, path, body=None, timeout=2.0):
    """One request to (host, port) on a fresh connection: (status, headers), or (None, {})
    when it failed."""
    conn = http.client.HTTPConnection(*addr, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "Connection": "close"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    except OSError:
        return None, {}
    finally:
        conn.close()


def infer_body(host, model):
    """An inference request of zeros for the model's inputs (dynamic dimensions = 1)."""
    conn = http.client.HTTPConnection(host, PORT, timeout=5)
    conn.request("GET", f"/v2/models/{model}")
    meta = json.loads(conn.getresponse().read())
    conn.close()
    inputs = []
    for spec in meta["inputs"]:
        shape = [1 if d < 0 else d for d in spec["shape"]]
        n = 1
        for d in shape:
            n *= d
        zero = False if spec["datatype"] == "BOOL" else ("" if spec["datatype"] == "BYTES" else 0)
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": shape,
                       "data": [zero] * n})
    return json.dumps({"inputs": inputs})


class Pollers:
    """First successful inference per new pod: to its IP, and through the Service."""

    def __init__(self, model, body, service, every):
        self.path, self.body, self.service, self.every = \
            f"/v2/models/{model}/infer", body, service, every
        self.direct, self.via_service, self.ips = {}, {}, {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._via_service, daemon=True).start()

    def watch_pod(self, name, ip):
        with self.lock:
            if name in self.ips:
                return
            self.ips[name] = ip
        threading.Thread(target=self._direct, args=(name, ip), daemon=True).start()

    def _direct(self, name, ip):
        while not self.stop.is_set():
            status, _ = request((ip, PORT), "POST", self.path, self.body)
            if status == 200:
                with self.lock:
                    self.direct[name] = time.time()
                return
            time.sleep(self.every)

    def _via_service(self):
        while not self.stop.is_set():
            status, headers = request(self.service, "POST", self.path, self.body)
            pod = headers.get("x-modelpilot-pod")
            if status == 200 and pod:
                with self.lock:
                    self.via_service.setdefault(pod, time.time())
            time.sleep(self.every)


# A tracing text line of the node agent or the server: timestamp, level, target, message.
LOG_LINE = re.compile(r"^(\S+Z)\s+\w+\s+\S+: (.*)$")


def agent_times(ns, name, after):
    """The node agent's own timestamps for the pod: bound, sandbox, container started."""
    found = {}
    wanted = {"bound to this node": "agent", "sandbox ready": "sandbox", "started": "container"}
    with open(CLUSTER / "logs" / "node-agent.log", errors="replace") as f:
        for line in f:
            if f"pod={ns}/{name} " not in line.rstrip() + " ":
                continue
            m = LOG_LINE.match(line.strip())
            if not m:
                continue
            t = parse_ts(m.group(1))
            for prefix, key in wanted.items():
                if m.group(2).startswith(prefix + " ") and t >= after and key not in found:
                    found[key] = t
    return found


def server_times(ns, pod):
    """The server's phases from its log file under the node agent's state directory."""
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    path = CLUSTER / "agent" / "pods" / f"{ns}_{name}_{uid}" / "logs" / "modelpilot-server"
    path = path / "0.log"
    wanted = {"listening": "listening", "model downloaded": "fetched",
              "model found in cache": "fetched", "sessions created": "loaded",
              "warmed up": "warm", "model ready": "model_ready"}
    found = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        m = LOG_LINE.match(line.strip())
        if not m:
            continue
        for prefix, key in wanted.items():
            if m.group(2).startswith(prefix) and key not in found:
                found[key] = parse_ts(m.group(1))
    return found


def wait_until(what, timeout, pred, every=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.ns = f"mp-bench-startup-{os.getpid()}"
        self.name = "capacity"
        self.controller = None
        self.store = None
        self.watches = []

    def setup(self):
        a = self.args
        model_path = pathlib.Path(a.models) / f"{a.model}.onnx"
        data = model_path.read_bytes()
        self.store = Store({f"{a.model}.onnx": data}, a.store_delay_ms / 1000)
        if subprocess.run([KUBECTL, f"--kubeconfig={KUBECONFIG}", "get", "crd",
                           "modeldeployments.modelpilot.io"], capture_output=True).returncode:
            crd = subprocess.run([a.modelpilot, "crd"], capture_output=True, text=True,
                                 check=True).stdout
            kubectl("apply", "--server-side", "--field-manager=modelpilot-bench", "-f", "-",
                    stdin=crd)
            kubectl("wait", "--for=condition=Established",
                    "crd/modeldeployments.modelpilot.io", "--timeout=60s")
        kubectl("create", "namespace", self.ns)
        kubectl("-n", self.ns, "wait", "--for=create", "serviceaccount/default", "--timeout=60s")
        # The operator runs from a copy: the shared target directory may be rebuilt meanwhile.
        self.expected_build = build_id(a.modelpilot)
        operator = pathlib.Path(a.out).with_suffix(".modelpilot")
        shutil.copy2(a.operator or a.modelpilot, operator)
        log_path = pathlib.Path(a.out).with_suffix(".controller.log")
        self.controller = subprocess.Popen(
            [str(operator), "controller", "--namespace", self.ns, "--lease-namespace", self.ns,
             "--leader-elect=false", "--metrics-addr", "127.0.0.1:0"],
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": f"{self.name}-s3"},
                  "stringData": {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                                 "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.store.url}}
        mdep = {"apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": self.name},
                "spec": {"replicas": a.base,
                         "model": {"name": a.model, "uri": f"s3://{BUCKET}/{a.model}.onnx",
                                   "sha256": hashlib.sha256(data).hexdigest(),
                                   "credentialsSecret": f"{self.name}-s3"}}}
        for obj in (secret, mdep):
            kubectl("-n", self.ns, "apply", "-f", "-", stdin=json.dumps(obj))
        base = f"/namespaces/{self.ns}"
        sel = f"labelSelector=modelpilot.io/name={self.name}"
        self.mdeps = Watch(f"/apis/modelpilot.io/v1alpha1{base}/modeldeployments")
        self.deploys = Watch(f"/apis/apps/v1{base}/deployments")
        self.pods = Watch(f"/api/v1{base}/pods?{sel}")
        self.slices = Watch(f"/apis/discovery.k8s.io/v1{base}/endpointslices"
                            f"?labelSelector=kubernetes.io/service-name={self.name}")
        self.watches = [self.mdeps, self.deploys, self.pods, self.slices]
        wait_until(f"{a.base} ready pods", a.timeout, lambda: self.settled(a.base))
        svc = json.loads(kubectl("-n", self.ns, "get", "service", self.name, "-o", "json"))
        self.service = (svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"])
        first = next(iter(pod_state(self.pods).values()))
        self.body = infer_body(first["status"]["podIP"], a.model)
        wait_until("the Service to answer", a.timeout, lambda: request(
            self.service, "POST", f"/v2/models/{a.model}/infer", self.body)[0] == 200)
        deploy = json.loads(kubectl("-n", self.ns, "get", "deployment", "-l",
                                    f"modelpilot.io/name={self.name}", "-o", "json"))["items"][0]
        server = deploy["spec"]["template"]["spec"]["containers"][0]
        self.probes = {k: {f: server.get(k, {}).get(f) for f in
                           ("periodSeconds", "failureThreshold", "timeoutSeconds")}
                       | {"path": server.get(k, {}).get("httpGet", {}).get("path")}
                       for k in ("startupProbe", "readinessProbe", "livenessProbe")}
        log(f"namespace {self.ns}: {a.base} pod(s) serving {a.model}; probes {self.probes}")

    def ready_ips(self):
        ips, latest = set(), {}
        for _, kind, obj in self.slices.snapshot():
            latest[obj["metadata"]["name"]] = None if kind == "DELETED" else obj
        for obj in filter(None, latest.values()):
            for e in obj.get("endpoints") or []:
                if (e.get("conditions") or {}).get("ready"):
                    ips.update(e.get("addresses") or [])
        return ips

    def settled(self, n):
        """Exactly n pods, all Ready, and exactly their IPs ready in the EndpointSlices."""
        pods = pod_state(self.pods)
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        if len(pods) != n or len(live) != n or not all(map(is_ready, live)):
            return False
        return {p["status"].get("podIP") for p in live} == self.ready_ips()

    def one_run(self, index):
        a = self.args
        if a.rebuild and build_id(a.modelpilot) != self.expected_build:
            log(f"run {index}: {a.modelpilot} was replaced by another build; rebuilding it")
            subprocess.run(["cargo", "build", "--bin", "modelpilot"], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.expected_build = build_id(a.modelpilot)
        expected = self.expected_build
        before = set(pod_state(self.pods))
        issued = time.time()
        kubectl("-n", self.ns, "scale", f"mdep/{self.name}", f"--replicas={a.to}")
        returned = time.time()
        pollers = Pollers(a.model, self.body, self.service, a.poll_ms / 1000)
        try:
            def done():
                pods = pod_state(self.pods)
                new = {n: p for n, p in pods.items() if n not in before}
                for n, p in new.items():
                    if (p.get("status") or {}).get("podIP"):
                        pollers.watch_pod(n, p["status"]["podIP"])
                return (len(new) == a.to - a.base and all(map(is_ready, new.values()))
                        and set(new) <= set(pollers.direct) and set(new) <= set(pollers.via_service)
                        and new)
            new = wait_until(f"run {index}: {a.to - a.base} new pods serving", a.timeout, done,
                             every=0.01)
        finally:
            pollers.stop.set()
        accepted = first_any(self.mdeps.snapshot(), issued,
                             lambda o: o["spec"].get("replicas") == a.to) or issued
        t0 = accepted
        deployment = first_any(self.deploys.snapshot(), issued,
                               lambda o: o["spec"].get("replicas") == a.to)
        events = self.pods.snapshot()
        slices = self.slices.snapshot()
        rows = []
        for name, pod in sorted(new.items()):
            ip = pod["status"]["podIP"]
            t = {
                "deployment": deployment,
                "created": first_time(events, name, lambda o: True, issued),
                "scheduled": first_time(events, name,
                                        lambda o: (o.get("spec") or {}).get("nodeName"), issued),
                "started": first_time(events, name, lambda o: any(
                    c.get("started") for c in (o.get("status") or {}).get(
                        "containerStatuses") or []), issued),
                "ready": first_time(events, name, is_ready, issued),
                "endpoint": next((ts for ts, kind, o in slices if ts >= issued and kind != "DELETED"
                                  and any(ip in (e.get("addresses") or [])
                                          and (e.get("conditions") or {}).get("ready")
                                          for e in o.get("endpoints") or [])), None),
                "fetch_start": self.store.first_request(ip, issued),
                "direct": pollers.direct.get(name),
                "service": pollers.via_service.get(name),
            }
            t |= agent_times(self.ns, name, issued - 1)
            t |= server_times(self.ns, pod)
            rows.append({"pod": name, "build": server_build(pod),
                         "ms": {k: None if v is None else round((v - t0) * 1000)
                                for k, v in t.items()}})
        valid = all(r["build"] == expected for r in rows)
        log(f"run {index}: kubectl scale took {round((returned - issued) * 1000)} ms; "
            + "; ".join(f"{r['pod']} ready {r['ms']['ready']} ms, service {r['ms']['service']} ms"
                        for r in rows)
            + ("" if valid else f"; left out: a server ran build "
               f"{[r['build'] for r in rows]}, not {expected}"))
        kubectl("-n", self.ns, "scale", f"mdep/{self.name}", f"--replicas={a.base}")
        wait_until(f"run {index}: back to {a.base} pods", a.timeout,
                   lambda: self.settled(a.base))
        time.sleep(a.pause)
        return {"run": index, "valid": valid, "build": expected,
                "kubectl_scale_ms": round((returned - issued) * 1000), "pods": rows}

    def teardown(self):
        for w in self.watches:
            w.stop()
        if self.controller:
            self.controller.terminate()
            try:
                self.controller.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.controller.kill()
        kubectl("delete", "namespace", self.ns, "--wait=false", check=False)
        if self.store:
            self.store.server.shutdown()


def build_id(path):
    """The ELF build ID (first 12 hex digits) of a binary, or of a process via /proc/PID/exe,
    which still reads the running build after the file was replaced."""
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1)[:12] if m else None


def server_build(pod):
    """The build the pod's server process runs (containerID modelpilot://PID)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    cid = statuses[0].get("containerID", "") if statuses else ""
    pid = cid.removeprefix("modelpilot://")
    return build_id(f"/proc/{pid}/exe") if pid.isdigit() else None


def first_any(events, after, pred):
    return next((t for t, kind, o in events if t >= after and kind != "DELETED" and pred(o)), None)


def summarize(runs):
    """Per phase: median and max of the time since the scale was accepted, over every new pod,
    and the median step from its predecessor phase (or the predecessor's own, when a build does
    not log that one)."""
    rows = [r["ms"] for run in runs if run["valid"] for r in run["pods"]]
    out = {}
    for key, _, _ in PHASES:
        values = [r[key] for r in rows if r.get(key) is not None]
        steps = []
        for r in rows:
            if r.get(key) is None:
                continue
            pred = PRED[key]
            while pred is not None and r.get(pred) is None:
                pred = PRED[pred]
            steps.append(r[key] - (0 if pred is None else r[pred]))
        out[key] = {"n": len(values),
                    "median": statistics.median(values) if values else None,
                    "max": max(values) if values else None,
                    "step": statistics.median(steps) if steps else None}
    return out


def fmt(v):
    return "-" if v is None else f"{v / 1000:.2f}"


def report(result):
    s, meta = result["summary"], result["meta"]
    delay = f" (store delay {meta['store_delay_ms']:g} ms)" if meta["store_delay_ms"] else ""
    lines = [f"{meta['label']}: {meta['model']}{delay}, {meta['base']} -> {meta['to']} replicas, "
             f"{meta['runs'] - meta['left_out']} runs ({s['service']['n']} new pods), "
             f"commit {meta['commit']} "
             f"(server build {meta['build']}; {meta['left_out']} run(s) left out where a pod "
             f"ran another build), load average {meta['load_before']} -> {meta['load_after']}",
             f"probes: {json.dumps(meta['probes'])}", "",
             "| phase | since scale accepted, median s | max s | step, median s | step from |",
             "|---|---|---|---|---|"]
    for key, label, pred in PHASES:
        p = s[key]
        lines.append(f"| {label} | {fmt(p['median'])} | {fmt(p['max'])} | {fmt(p['step'])} "
                     f"| {pred or 'scale accepted'} |")
    return "\n".join(lines)


def compare(before, after):
    sb, sa = before["summary"], after["summary"]
    lines = [f"before: {before['meta']['label']} ({before['meta']['commit']}), "
             f"after: {after['meta']['label']} ({after['meta']['commit']}); "
             f"{sb['service']['n']} / {sa['service']['n']} new pods", "",
             "| phase | before: median s (max) | step | after: median s (max) | step |",
             "|---|---|---|---|---|"]
    for key, label, _ in PHASES:
        b, a = sb[key], sa[key]
        lines.append(f"| {label} | {fmt(b['median'])} ({fmt(b['max'])}) | {fmt(b['step'])} "
                     f"| {fmt(a['median'])} ({fmt(a['max'])}) | {fmt(a['step'])} |")
    return "\n".join(lines)


def run(args):
    bench = Bench(args)
    load_before = os.getloadavg()[0]
    runs = []
    try:
        bench.setup()
        attempt = 0
        while sum(r["valid"] for r in runs) < args.runs and attempt < 3 * args.runs:
            attempt += 1
            runs.append(bench.one_run(attempt))
    finally:
        bench.teardown()
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    result = {"meta": {"label": args.label, "model": args.model, "base": args.base,
                       "store_delay_ms": args.store_delay_ms,
                       "to": args.to, "runs": len(runs), "poll_ms": args.poll_ms,
                       "commit": commit, "probes": bench.probes,
                       "build": " ".join(sorted({r["build"] for r in runs if r["valid"]})),
                       "left_out": sum(not r["valid"] for r in runs),
                       "when": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"),
                       "cpus": os.cpu_count(), "kernel": platform.release(),
                       "load_before": round(load_before, 2),
                       "load_after": round(os.getloadavg()[0], 2)},
              "runs": runs, "summary": summarize(runs)}
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
    print(report(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True, help="results JSON (the operator's log beside it)")
    r.add_argument("--label", default="run")
    r.add_argument("--models", required=True, help="directory of make_models.py's output")
    r.add_argument("--model", default="iris", help="iris (tiny) or mlp (9.5 MB)")
    r.add_argument("--modelpilot", required=True,
                   help="the build the node agent runs in pods (target/debug/modelpilot)")
    r.add_argument("--operator", help="another modelpilot binary for the operator (for example "
                   "an earlier run's LABEL.modelpilot, to compare the pods it builds)")
    r.add_argument("--store-delay-ms", type=float, default=0,
                   help="hold every model download this long (a slower store or larger model)")
    r.add_argument("--base", type=int, default=1)
    r.add_argument("--to", type=int, default=3)
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--rebuild", action="store_true",
                   help="cargo build --bin modelpilot again before a run when another build "
                   "has replaced it")
    r.add_argument("--poll-ms", type=float, default=20)
    r.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    r.add_argument("--timeout", type=float, default=180.0)
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    args = p.parse_args()
    if args.cmd == "compare":
        print(compare(*(json.loads(pathlib.Path(f).read_text()) for f in (args.before,
                                                                           args.after))))
    else:
        if args.to <= args.base:
            p.error("--to must be larger than --base")
        run(args)


if __name__ == "__main__":
    main()
