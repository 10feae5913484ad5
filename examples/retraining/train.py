#!/usr/bin/env python3
"""Retraining Job for a modelpilot ModelDeployment: trains a scikit-learn classifier on a CSV,
exports it to ONNX, writes its baseline profile, uploads both under MODELPILOT_OUTPUT_URI and
reports the result in the container's termination message.

The operator starts this Job when it detects drift or a drop in accuracy (or on request). It
passes the trigger and the current model in MODELPILOT_* environment variables (see README.md)
and reads back, from the termination message, JSON like

    {"modelUri": "s3://models/retrain/iris/3/model.onnx", "sha256": "<64 hex>",
     "version": "retrain-3", "profileUri": "s3://models/retrain/iris/3/profile.json",
     "metrics": {"accuracy": 0.95, "f1": 0.95, "trainRows": 450, "testRows": 150}}

Usage:
    train.py --data s3://data/iris/train.csv [--label species] [--model logistic|forest]

Data: a CSV with a header; every column but the label is a numeric feature, in file order
(the model's input "float_input", float32 [N, features]). --data takes s3://bucket/key (boto3,
with AWS_ENDPOINT_URL and the other AWS_* variables), https://..., file:///path or a path.

On failure the script prints the reason, writes it (as plain text, not JSON) to the termination
message and exits 1.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

TERMINATION_LOG = "/dev/termination-log"
# The profile's column holding the model's own predictions (class labels) on the training rows.
PREDICTION_COLUMN = "__prediction__"
# Kubernetes keeps at most this much of a termination message.
MAX_MESSAGE_BYTES = 4096


class JobError(Exception):
    """A failure worth reporting as it is (no traceback)."""


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Retrain a classifier for modelpilot and report it in the termination message.",
    )
    p.add_argument("--data", required=True, help="training CSV: s3://, https://, file:// or a path")
    p.add_argument("--label", default="label", help="name of the label column (default: label)")
    p.add_argument(
        "--model",
        choices=["logistic", "forest"],
        default="logistic",
        help="logistic regression (default) or a small random forest",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the model (default 0)")
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="share of rows held out for evaluation (default 0.25)",
    )
    p.add_argument(
        "--output-uri",
        default=os.environ.get("MODELPILOT_OUTPUT_URI"),
        help="s3:// or file:// prefix ending in '/' (default: $MODELPILOT_OUTPUT_URI)",
    )
    p.add_argument("--version", help="version of the new model (default: retrain-<trigger id>)")
    p.add_argument(
        "--profile-bin",
        help="the modelpilot binary that writes the profile (default: modelpilot on PATH)",
    )
    p.add_argument("--no-profile", action="store_true", help="write no baseline profile")
    p.add_argument(
        "--categorical",
        default="",
        help="feature columns holding category codes, comma-separated (passed to the profile)",
    )
    p.add_argument(
        "--termination-log",
        default=TERMINATION_LOG,
        help=f"where the result goes (default {TERMINATION_LOG}); it is printed too",
    )
    p.add_argument(
        "--degrade",
        action="store_true",
        help="train on shuffled labels: a worse model (to try a rollback)",
    )
    p.add_argument("--fail", action="store_true", help="fail on purpose (to try a failed retraining)")
    args = p.parse_args(argv)
    if not 0.05 <= args.test_fraction <= 0.5:
        p.error("--test-fraction must be between 0.05 and 0.5")
    return args


def trigger():
    """MODELPILOT_TRIGGER as a dict, or None when the script runs outside the operator."""
    text = os.environ.get("MODELPILOT_TRIGGER", "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise JobError(f"MODELPILOT_TRIGGER is not JSON ({e}): {text[:80]!r}") from None
    if not isinstance(value, dict) or not isinstance(value.get("id"), int):
        raise JobError(f"MODELPILOT_TRIGGER has no integer id: {text[:80]!r}")
    return value


# --- storage -------------------------------------------------------------------------------


def s3_client():
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # An S3-compatible server (MinIO, moto, …) is addressed by path, not by bucket host name.
    config = Config(s3={"addressing_style": "path"}) if endpoint else None
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def split_s3(uri):
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise JobError(f"{uri!r} must be s3://<bucket>/<key>")
    return bucket, key


def read_bytes(uri):
    """The bytes at an s3://, https://, file:// URI or a path."""
    try:
        if uri.startswith("s3://"):
            bucket, key = split_s3(uri)
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        if uri.startswith("https://") or uri.startswith("http://"):
            with urllib.request.urlopen(uri, timeout=60) as response:
                return response.read()
        path = urllib.parse.urlparse(uri).path if uri.startswith("file://") else uri
        with open(path, "rb") as f:
            return f.read()
    except JobError:
        raise
    except Exception as e:  # boto3, urllib and open all end here: one clear line
        raise JobError(f"cannot read {uri}: {e}") from None


def write_bytes(prefix, name, data):
    """Writes `data` as `name` under the output prefix and returns its URI."""
    uri = prefix + name
    try:
        if uri.startswith("s3://"):
            bucket, key = split_s3(uri)
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        else:
            path = urllib.parse.urlparse(uri).path
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    except JobError:
        raise
    except Exception as e:
        raise JobError(f"cannot write {uri}: {e}") from None
    return uri


def check_output(prefix):
    if not prefix:
        raise JobError("no output location: set MODELPILOT_OUTPUT_URI or pass --output-uri")
    if not prefix.endswith("/"):
        raise JobError(f"the output URI {prefix!r} must end in '/' (it is a prefix)")
    if prefix.startswith("s3://"):
        split_s3(prefix + "x")
    elif not prefix.startswith("file:///"):
        raise JobError(f"the output URI {prefix!r} must start with s3:// or file:///")


# --- data and model ------------------------------------------------------------------------


def load_csv(data, label):
    """(feature names, float32 features, labels) of a CSV with a header."""
    import numpy as np

    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except UnicodeDecodeError as e:
        raise JobError(f"the training data is not UTF-8 text: {e}") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise JobError("the training data needs a header and at least one row")
    header = [h.strip() for h in rows[0]]
    if label not in header:
        raise JobError(f"no label column {label!r} in the header {header} (see --label)")
    at = header.index(label)
    names = [h for i, h in enumerate(header) if i != at]
    if not names:
        raise JobError("the training data has no feature column besides the label")
    x, y = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise JobError(f"line {line}: {len(row)} fields, the header has {len(header)}")
        try:
            x.append([float(v) for i, v in enumerate(row) if i != at])
        except ValueError:
            raise JobError(f"line {line}: a feature is not a number: {row}") from None
        y.append(row[at].strip())
    # Integral labels stay integers, so the model's label output is INT64 as before.
    try:
        labels = np.array([int(v) for v in y], dtype=np.int64)
    except ValueError:
        labels = np.array(y)
    features = np.array(x, dtype=np.float32)
    if not np.isfinite(features).all():
        raise JobError("the training data holds NaN or infinite features")
    return names, features, labels


def train(x, y, args):
    import numpy as np
    from sklearn.model_selection import train_test_split

    if len(set(y.tolist())) < 2:
        raise JobError("the training data has a single label: nothing to learn")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=args.test_fraction, random_state=args.seed, stratify=y
    )
    fit_labels = y_train
    if args.degrade:
        fit_labels = np.random.default_rng(args.seed).permutation(y_train)
    if args.model == "forest":
        from sklearn.ensemble import RandomForestClassifier

        clf = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=args.seed)
    else:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=500, random_state=args.seed)
    clf.fit(x_train, fit_labels)
    return clf, x_test, y_test, len(x_train)


def export(clf, features):
    """ONNX bytes as modelpilot's iris models are made: float_input FP32 [N, F] -> label,
    probabilities (no ZipMap)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = to_onnx(
        clf,
        initial_types=[("float_input", FloatTensorType([None, features]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    return model.SerializeToString()


def predict_labels(onnx_bytes, x):
    """The exported model's labels for rows `x` (ONNX Runtime, as the server runs it)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run(["label"], {"float_input": x})[0]


def evaluate(onnx_bytes, x_test, y_test):
    """Accuracy and macro F1 of the exported model itself (ONNX Runtime) on the held-out rows."""
    from sklearn.metrics import accuracy_score, f1_score

    predicted = predict_labels(onnx_bytes, x_test)
    return {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 6),
        "f1": round(float(f1_score(y_test, predicted, average="macro")), 6),
    }


def profile_binary(args):
    """The modelpilot binary that writes the profile; checked before any work is done."""
    if args.no_profile:
        return None
    binary = args.profile_bin or shutil.which("modelpilot")
    if not binary:
        raise JobError(
            "the modelpilot binary (for `modelpilot profile`) is not on PATH: "
            "pass --profile-bin, or --no-profile to skip the baseline profile"
        )
    if not os.access(binary, os.X_OK):
        raise JobError(f"--profile-bin {binary!r} is not an executable file")
    return binary


def profile(binary, names, x, predicted, args, workdir):
    """The baseline profile of the training features, written by `modelpilot profile`, with the
    model's predictions on them as the baseline of the prediction shift."""
    data = os.path.join(workdir, "features.csv")
    with open(data, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(list(names) + [PREDICTION_COLUMN])
        out.writerows(
            [repr(float(v)) for v in row] + [str(p)] for row, p in zip(x, predicted)
        )
    output = os.path.join(workdir, "profile.json")
    command = [binary, "profile", "--data", data, "--output", output, "--input", "float_input"]
    command += ["--prediction", PREDICTION_COLUMN]
    categorical = [c for c in args.categorical.split(",") if c] + [PREDICTION_COLUMN]
    command += ["--categorical", ",".join(categorical)]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JobError(f"cannot run {binary} profile: {e}") from None
    if run.returncode != 0:
        detail = (run.stderr or run.stdout).strip()[-500:]
        raise JobError(f"`{' '.join(command)}` failed ({run.returncode}): {detail}")
    with open(output, "rb") as f:
        return f.read()


# --- the Job -------------------------------------------------------------------------------


def report(path, text):
    """Prints the termination message and writes it where Kubernetes reads it."""
    print(text, flush=True)
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise JobError(
            f"cannot write the termination message to {path}: {e} "
            "(outside Kubernetes pass --termination-log PATH)"
        ) from None


def run(args):
    if args.fail:
        raise JobError("failing on purpose (--fail)")
    check_output(args.output_uri)
    binary = profile_binary(args)
    trig = trigger()
    if trig is not None:
        features = ", ".join(trig.get("features") or []) or "none named"
        print(
            f"retraining {os.environ.get('MODELPILOT_DEPLOYMENT', '?')} for trigger {trig['id']} "
            f"({trig.get('reason', '?')}; features: {features}); serving now "
            f"{os.environ.get('MODELPILOT_MODEL_URI', '?')} "
            f"version {os.environ.get('MODELPILOT_MODEL_VERSION') or '-'}",
            file=sys.stderr,
        )
    version = args.version or (f"retrain-{trig['id']}" if trig is not None else None)

    names, x, y = load_csv(read_bytes(args.data), args.label)
    clf, x_test, y_test, train_rows = train(x, y, args)
    model = export(clf, x.shape[1])
    metrics = evaluate(model, x_test, y_test)
    metrics.update({"trainRows": train_rows, "testRows": len(x_test)})
    print(f"trained {args.model} on {train_rows} rows: {metrics}", file=sys.stderr)
    profile_json = None
    if binary:
        with tempfile.TemporaryDirectory() as workdir:
            predicted = predict_labels(model, x)
            profile_json = profile(binary, names, x, predicted, args, workdir)

    # Everything is made before anything is uploaded: a failed Job leaves no half a result.
    result = {"modelUri": write_bytes(args.output_uri, "model.onnx", model)}
    result["sha256"] = hashlib.sha256(model).hexdigest()
    if version:
        result["version"] = version
    if profile_json is not None:
        result["profileUri"] = write_bytes(args.output_uri, "profile.json", profile_json)
    result["metrics"] = metrics
    text = json.dumps(result, allow_nan=False, separators=(",", ":"))
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise JobError(f"the result is {len(text.encode())} bytes, over {MAX_MESSAGE_BYTES}")
    report(args.termination_log, text)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except JobError as e:
        message = f"train.py: {e}"
        print(message, file=sys.stderr)
        try:
            with open(args.termination_log, "w") as f:
                f.write(message[:MAX_MESSAGE_BYTES])
        except OSError:
            pass
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
