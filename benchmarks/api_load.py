"""Load test of the HTTP API on loopback: dynamic batching on against one request at a time.

    python benchmarks/api_load.py [--requests 300] [--clients 8] [--bad 0.1] [--weights CKPT] [--timeout 600]

For each setting (``--max-batch 8`` and ``--max-batch 1``) it starts ``chromafuse serve`` on a free port,
sends ``--requests`` POST /api/colorize requests from ``--clients`` concurrent clients (a tenth of them bad
files: text, a PDF, a truncated JPEG, a bad option), and prints throughput, p50/p95/p99 latency, the server's
memory (resident before and after, and its peak), the mean batch the server formed, and checks every answer:
each good request got a PNG of its input's size whose colours match the model run in this process (mean
difference under 2 levels), each bad one its JSON error with the expected status. Bounded in count and time.
Pause a training run on the machine (``kill -STOP``) while it runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from skimage import data

from chromafuse import Colorizer

PHOTOS = [data.astronaut, data.coffee, data.chelsea, data.rocket, data.hubble_deep_field, data.immunohistochemistry]
BAD = [  # (file name, bytes, extra form fields, expected status)
    ("notes.txt", b"these are not pixels\n" * 20, {}, 415),
    ("scan.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 4, {}, 415),
    ("cut.jpg", None, {}, 400),  # a JPEG cut in half: filled in below
    ("photo.jpg", None, {"size": "100"}, 400),  # a good photo with a render size that is not a multiple of 32
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def _photos() -> list[tuple[str, bytes, np.ndarray]]:
    """Gray 640x480 JPEGs (name, bytes, decoded gray pixels)."""
    photos = []
    for make in PHOTOS:
        gray = cv2.cvtColor(cv2.resize(make(), (640, 480), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 92])
        photos.append((f"{make.__name__}.jpg", encoded.tobytes(), cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)))
    return photos


def _start(port: int, max_batch: int, args, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "chromafuse", "serve", "--port", str(port), "--max-batch", str(max_batch)]
    command += ["--weights", str(args.weights)] if args.weights else []
    command += ["--backend", args.backend, "--device", args.device]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "chromafuse serve: http" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start:\n" + log.read_text())
        time.sleep(0.3)
    return process


def check(item, response, photos, references, bad) -> str | None:
    """What is wrong with one answer, or None."""
    kind, index = item
    name, expected = (photos[index][0], 200) if kind == "good" else (bad[index][0], bad[index][3])
    if response.status_code != expected:
        return f"{name}: status {response.status_code}, expected {expected}: {response.text[:120]}"
    if kind == "bad":
        message = response.json().get("error", "")
        return None if name in message or "size" in message else f"{name}: the error does not name the file: {message}"
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if rgb.shape != references[index].shape:
        return f"{name}: the answer is {rgb.shape}, the input {references[index].shape[:2]}"
    difference = np.abs(rgb.astype(np.float32) - references[index]).mean()
    return None if difference < 2.0 else f"{name}: colours differ from the in-process model by {difference:.2f} levels"


def run(args, max_batch: int, photos, references, bad) -> dict:
    port = _free_port()
    log = Path(tempfile.mkdtemp(prefix="chromafuse-load-")) / "serve.log"
    process = _start(port, max_batch, args, log)
    url = f"http://127.0.0.1:{port}/api/colorize"
    try:
        with httpx.Client(timeout=120) as warm:  # one request first: the model's first call is slower
            warm.post(url, files={"image": photos[0][:2]}).raise_for_status()
        before = _memory_kb(process.pid)
        step = max(1, round(1 / args.bad)) if args.bad > 0 else args.requests + 1  # every step-th request is bad
        plan = [
            ("bad", i // step % len(bad)) if i % step == step - 1 else ("good", i % len(photos)) for i in range(args.requests)
        ]

        def one(item):
            kind, index = item
            name, body, fields = (*photos[index][:2], {}) if kind == "good" else bad[index][:3]
            started = time.perf_counter()
            with httpx.Client(timeout=120) as client:
                response = client.post(url, files={"image": (name, body)}, data=fields)
            return time.perf_counter() - started, response

        started = time.perf_counter()
        latencies = {"good": [], "bad": []}
        answers = []
        with ThreadPoolExecutor(args.clients) as pool:
            for item, (latency, response) in zip(plan, pool.map(one, plan)):
                latencies[item[0]].append(latency)
                answers.append((item, response))
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"stopped: over --timeout {args.timeout} s")
        wall = time.perf_counter() - started
        # checked after the clock stops, so that decoding the answers does not take the server's CPU
        failures = [f for f in (check(item, response, photos, references, bad) for item, response in answers) if f]
        after = _memory_kb(process.pid)
        health = httpx.get(f"http://127.0.0.1:{port}/api/health").json()
    finally:
        process.terminate()
        process.wait(timeout=60)
    good = np.asarray(latencies["good"])
    return {
        "max_batch": max_batch,
        "wall": wall,
        "good_per_s": len(good) / wall,
        "p50": np.percentile(good, 50),
        "p95": np.percentile(good, 95),
        "p99": np.percentile(good, 99),
        "rss_before_mb": before["VmRSS"] / 1024,
        "rss_after_mb": after["VmRSS"] / 1024,
        "peak_mb": after["VmHWM"] / 1024,
        "mean_batch": health["mean_batch"],
        "good": len(good),
        "bad": len(latencies["bad"]),
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--bad", type=float, default=0.1, help="share of bad files (0.1: every tenth request)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--backend", default="auto", help="the server's --backend: auto, torch or onnx")
    parser.add_argument("--device", default="auto", help="the server's --device: auto, cpu, cuda, cuda:N")
    parser.add_argument("--timeout", type=float, default=600, help="give up a setting after this many seconds")
    args = parser.parse_args()
    if not 1 <= args.requests <= 5000 or not 1 <= args.clients <= 64:
        raise SystemExit("--requests must be in 1..5000 and --clients in 1..64 (this is a bounded test)")
    photos = _photos()
    cut = photos[1][1][: len(photos[1][1]) // 2]
    bad = [(n, b if b is not None else (cut if n == "cut.jpg" else photos[0][1]), f, s) for n, b, f, s in BAD]
    colorizer = Colorizer.load(args.weights, device=args.device, backend=args.backend)
    references = [colorizer.colorize(gray).astype(np.float32) for _, _, gray in photos]
    print(
        f"model {colorizer.name}, {colorizer.device}, {colorizer.precision}; {os.cpu_count()} CPUs; "
        f"{args.requests} requests from {args.clients} clients, {args.bad:.0%} bad; 640x480 gray JPEGs"
    )
    rows = [run(args, max_batch, photos, references, bad) for max_batch in (8, 1)]
    for row in rows:
        label = "batching on (max 8)" if row["max_batch"] > 1 else "one at a time     "
        print(
            f"{label}: {row['good_per_s']:.2f} good images/s, latency p50 {row['p50']:.2f} s, p95 {row['p95']:.2f} s, "
            f"p99 {row['p99']:.2f} s; mean batch {row['mean_batch']:.2f}; server memory {row['rss_before_mb']:.0f} -> "
            f"{row['rss_after_mb']:.0f} MB (peak {row['peak_mb']:.0f} MB); {row['good']} good, {row['bad']} bad; "
            + ("all answers correct" if not row["failures"] else f"{len(row['failures'])} WRONG")
        )
        for failure in row["failures"][:10]:
            print(f"    {failure}")
    print(f"batching / one at a time: {rows[0]['good_per_s'] / rows[1]['good_per_s']:.2f}x")
    if any(row["failures"] for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
