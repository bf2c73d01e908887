#!/usr/bin/env python3
"""Replica figures through real processes (standard library only).

For each replication factor R in --replication-factors (default 1,2): three
`ruvector serve` shards and a `ruvector router --replication-factor R` on
loopback ports, a cosine collection of the shared data set's dimension,
--preload vectors written through the router, then `ruvector stream-bench
--writes-only` for the write loads (--loads, --duration): write throughput
and latency at R.

With R >= 2, also the catch-up figure: a second router with
`--write-quorum 1` keeps taking writes while shard 1 is SIGKILLed;
--missed vectors are written (`stream-bench --count`), shard 1 restarts on
its data, and `POST /cluster/repair` is timed until the copies agree (a
second pass must find nothing to repair).

    CARGO_TARGET_DIR=/work/target-bench cargo build --release -p ruvector-cli
    python3 bench/replicas.py --binary /work/target-bench/release/ruvector
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pypi-minilm-100k"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, timeout: float = 600.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http("GET", url + "/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout} s")


class Proc:
    def __init__(self, binary: Path, args: list[str], log: Path, env=None):
        self.args = args
        self.log = log
        self.popen = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE, stderr=open(log, "ab"),
                                      env={**os.environ, "RUST_LOG": "warn", **(env or {})})
        line = self.popen.stdout.readline().decode()
        m = re.search(r"listening on (http://\S+)", line)
        if not m:
            raise RuntimeError(f"{args}: no listening line ({line!r}); see {log}")
        self.url = m.group(1)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(60)


def stream_bench(binary: Path, url: str, data: Path, extra: list[str]) -> str:
    cmd = [str(binary), "stream-bench", "--url", url, "--collection", "rep",
           "--base", str(data / "base.fvecs"), "--query", str(data / "query.fvecs"), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def run(args) -> dict:
    binary, data = args.binary, args.data
    results = {"replication": {}}
    for r in args.replication_factors:
        tmp = Path(tempfile.mkdtemp(prefix=f"ruvector-replicas-r{r}-"))
        shards = []
        ports = [free_port() for _ in range(3)]
        for i, port in enumerate(ports):
            shards.append(Proc(binary, ["serve", "--addr", f"127.0.0.1:{port}", "--data", str(tmp / f"s{i}")],
                               tmp / f"s{i}.log"))
        for s in shards:
            wait_ready(s.url)
        urls = ",".join(s.url for s in shards)
        quiet = {"RUVECTOR_ROUTER__REPAIR_INTERVAL_MS": "0"}
        router = Proc(binary, ["router", "--addr", "127.0.0.1:0", "--shards", urls,
                               "--replication-factor", str(r)], tmp / "router.log", quiet)
        wait_ready(router.url)
        try:
            status, body = http("POST", router.url + "/collections",
                                {"name": "rep", "dimension": 384, "metric": "cosine"})
            assert status == 201, body
            t0 = time.monotonic()
            stream_bench(binary, router.url, data, ["--count", str(args.preload), "--loads", "2x500", "--id-start", "0"])
            preload_s = time.monotonic() - t0
            out = stream_bench(binary, router.url, data,
                               ["--writes-only", "--loads", args.loads, "--duration", str(args.duration),
                                "--id-start", "1000000"])
            entry = {"preload_vectors": args.preload, "preload_seconds": round(preload_s, 2),
                     "preload_vectors_per_s": round(args.preload / preload_s, 1), "stream_bench": out}
            if r >= 2:
                w1 = Proc(binary, ["router", "--addr", "127.0.0.1:0", "--shards", urls, "--replication-factor",
                                   str(r), "--write-quorum", "1"], tmp / "router-w1.log", quiet)
                wait_ready(w1.url)
                shards[1].kill()
                stream_bench(binary, w1.url, data, ["--count", str(args.missed), "--loads", "4x100",
                                                    "--id-start", "5000000"])
                shards[1] = Proc(binary, shards[1].args, tmp / "s1.log")
                wait_ready(shards[1].url)
                t0 = time.monotonic()
                status, report = http("POST", w1.url + "/cluster/repair")
                repair_s = time.monotonic() - t0
                assert status == 200, report
                status, again = http("POST", w1.url + "/cluster/repair")
                assert again["partitions_diverged"] == 0, again
                entry.update({"missed_writes": args.missed, "repair_seconds": round(repair_s, 2), "repair": report})
                w1.kill(signal.SIGTERM)
            results["replication"][str(r)] = entry
        finally:
            router.kill(signal.SIGTERM)
            for s in shards:
                s.kill(signal.SIGTERM)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "ruvector")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("RUVECTOR_DATASET", DEFAULT_DATA)))
    p.add_argument("--replication-factors", default="1,2")
    p.add_argument("--preload", type=int, default=20000)
    p.add_argument("--missed", type=int, default=10000)
    p.add_argument("--loads", default="4x1,4x100")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = p.parse_args()
    args.replication_factors = [int(x) for x in args.replication_factors.split(",") if x]
    results = run(args)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
