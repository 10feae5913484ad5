"""Renders hack/bench/bench.py's results as Markdown: the measurements, the ratios against
the in-process baseline and the Python server, and each target met or missed.

Usage on its own: python hack/bench/report.py target/bench/results.json
"""

import json
import sys


def _cell(r):
    cpu = [r.get(k) for k in ("server_cpu_us_per_request", "loadgen_cpu_us_per_request")]
    cpu = [f"{v:.0f}" if v is not None else "-" for v in cpu]
    return (f"{r['throughput']:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} "
            f"| {cpu[0]} | {cpu[1]}")


def _best(results, model, c):
    """Our better configuration (batching off or on) at this concurrency, by throughput."""
    runs = [(mode, results["ours"].get(f"{model}/c{c}/{mode}")) for mode in ("nobatch", "batch")]
    runs = [(m, r) for m, r in runs if r]
    return max(runs, key=lambda mr: mr[1]["throughput"])


def measurements(results, models, concurrencies):
    lines = [
        "| model | conc. | setup | req/s | p50 ms | p99 ms | server CPU us/req "
        "| wrk CPU us/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        for c in concurrencies:
            rows = [
                ("in-process ort (Rust)", results["inprocess"].get(f"{model}/c{c}")),
                ("modelpilot serve, batching off", results["ours"].get(f"{model}/c{c}/nobatch")),
                ("modelpilot serve, batching on", results["ours"].get(f"{model}/c{c}/batch")),
                ("Python FastAPI + onnxruntime", results["python"].get(f"{model}/c{c}")),
            ]
            for name, r in rows:
                if r:
                    lines.append(f"| {model} | {c} | {name} | {_cell(r)} |")
    return lines


def ratios(results, models, concurrencies):
    lines = [
        "| model | conc. | batching | served / in-process req/s | ours / Python req/s "
        "| ours / Python p99 |",
        "|---|---|---|---|---|---|",
    ]
    for model in models:
        for c in concurrencies:
            base = results["inprocess"].get(f"{model}/c{c}")
            py = results["python"].get(f"{model}/c{c}")
            for mode in ("nobatch", "batch"):
                r = results["ours"].get(f"{model}/c{c}/{mode}")
                if not (r and base and py):
                    continue
                lines.append(
                    f"| {model} | {c} | {'on' if mode == 'batch' else 'off'} "
                    f"| {r['throughput'] / base['throughput']:.2f}x "
                    f"| {r['throughput'] / py['throughput']:.1f}x "
                    f"| {r['p99_us'] / py['p99_us']:.2f}x |")
    return lines


def _target_checks(results, concurrencies):
    """Each target as a function returning (description, measured, met)."""

    def served_ratio(model, c, mode):
        r = results["ours"][f"{model}/c{c}/{mode}"]
        return r["throughput"] / results["inprocess"][f"{model}/c{c}"]["throughput"]

    def mid_served(c):
        mode, _ = _best(results, "mid", c)
        v = served_ratio("mid", c, mode)
        return (f"mid, concurrency {c}: served >= 0.9x in-process req/s",
                f"{v:.2f}x (batching {'on' if mode == 'batch' else 'off'})", v >= 0.9)

    def tiny_batched():
        v = served_ratio("tiny", 16, "batch")
        return ("tiny, concurrency 16, batching on: served >= 0.5x in-process req/s",
                f"{v:.2f}x", v >= 0.5)

    def versus_python(model, c):
        mode, r = _best(results, model, c)
        py = results["python"][f"{model}/c{c}"]
        thr, p99 = r["throughput"] / py["throughput"], r["p99_us"] / py["p99_us"]
        return (f"{model}, concurrency {c}: >= 5x Python req/s and p99 <= 0.3x",
                f"{thr:.1f}x req/s, p99 {p99:.2f}x (batching "
                f"{'on' if mode == 'batch' else 'off'})", thr >= 5 and p99 <= 0.3)

    def ready():
        r = results["ready_seconds"]
        return ("time to ready, tiny local model <= 0.5 s (every run)",
                f"median {r['median'] * 1000:.0f} ms, max {r['max'] * 1000:.0f} ms",
                r["max"] <= 0.5)

    checks = [lambda c=c: mid_served(c) for c in concurrencies] + [tiny_batched]
    checks += [lambda m=m, c=c: versus_python(m, c) for m in ("tiny", "mid")
               for c in concurrencies]
    return checks + [ready]


def targets(results, concurrencies):
    """Each target with data in this run as (description, measured, met)."""
    out = []
    for check in _target_checks(results, concurrencies):
        try:
            out.append(check())
        except (KeyError, ValueError):
            continue  # that size or concurrency was not part of this run
    return out


def breakdown(results, models, concurrencies):
    """Where modelpilot's server-side time went, from its own latency histograms."""
    lines = [
        "| model | conc. | batching | server total us (mean) | queue us | compute us "
        "| protocol + HTTP us |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models:
        for c in concurrencies:
            for mode in ("nobatch", "batch"):
                r = results["ours"].get(f"{model}/c{c}/{mode}", {})
                if "server_request_us_mean" not in r:
                    continue
                total, queue, compute = (r[f"server_{k}_us_mean"] for k in
                                         ("request", "queue", "compute"))
                lines.append(
                    f"| {model} | {c} | {'on' if mode == 'batch' else 'off'} | {total:.0f} "
                    f"| {queue:.0f} | {compute:.0f} | {total - queue - compute:.0f} |")
    return lines


def render(results):
    models = sorted({k.split("/")[0] for k in results["inprocess"]}, key=["tiny", "mid"].index)
    concurrencies = sorted({int(k.split("/c")[1]) for k in results["inprocess"]})
    m = results["machine"]
    lines = [
        f"Run {m['date']} on {m['cpus']} CPUs ({m['cpu']}), kernel {m['kernel']}, "
        f"commit {m['commit']}; thread budget {results['threads']}, "
        f"{results['seconds']} s per measurement, nice {results.get('nice', 0)}; "
        f"load average before/after "
        f"{m['loadavg_before'][0]:.2f}/{m['loadavg_after'][0]:.2f}.",
        "",
        *measurements(results, models, concurrencies),
        "",
        *ratios(results, models, concurrencies),
        "",
        *breakdown(results, models, concurrencies),
        "",
        "| peak RSS (VmHWM, all processes) | MiB |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in sorted(results["rss_mib"].items())],
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for description, measured, met in targets(results, concurrencies):
        lines.append(f"| {description} | {measured} | {'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(render(json.load(f)))
