#!/usr/bin/env python3
"""Replica figures through real processes (standard library only).

For each replication factor R in --replication-factors (default 1,2): three
`ruvector serve` shards and a `ruvector router --replication-factor R` on
loopback ports, a cosine collection of the shared data set's dimension,
--preload vectors written through the router, then `ruvector stream-bench
--writes-only` for the write loads (--loads, --duration): write throughput
and latency at R.

With R >= 2, also:

- the catch-up figure: shard 1 is SIGKILLed, --missed vectors are written
  through the router (default write quorum 1, `stream-bench --count`),
  shard 1 restarts on its data, and the time until its `/ready` is 200 —
  recovered *and* caught up by the router's sync — is reported, split into
  recovery (its collection routes answer) and catch-up; the copies'
  digests must then agree;
- a rolling restart under load: two clients search, two upsert and delete
  (threads here, over HTTP), while every shard in turn is SIGTERMed,
  restarted and waited for; failed requests are counted (target 0).

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
import threading
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


def wait_answering(url: str, timeout: float = 120.0) -> None:
    """Until the node has recovered its data (collection routes answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http("GET", url + "/collections", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not recover within {timeout} s")


def digests_agree(urls: list[str], r: int) -> bool:
    """Every partition's digest appears on exactly R shards (the copies)."""
    seen: dict[int, list] = {}
    for url in urls:
        status, assignment = http("GET", url + "/cluster/assignment")
        held = [p["partition"] for c in assignment["collections"] if c["name"] == "rep" for p in (c["held"] or [])]
        status, d = http("GET", url + "/collections/rep/digests")
        for p in held:
            seen.setdefault(p, []).append(d["partitions"][p])
    return all(len(v) == r and all(x == v[0] for x in v) for v in seen.values())


def read_vectors(path: Path, n: int) -> list[list[float]]:
    import struct
    out = []
    with open(path, "rb") as f:
        for _ in range(n):
            head = f.read(4)
            if len(head) < 4:
                break
            (dim,) = struct.unpack("<i", head)
            out.append(list(struct.unpack(f"<{dim}f", f.read(4 * dim))))
    return out


def rolling_restart(url: str, shards: list, tmp: Path, binary: Path, data: Path) -> dict:
    """Every shard SIGTERMed, restarted, waited for (its /ready: caught up),
    under two searching and two writing clients; failures counted."""
    queries = read_vectors(data / "query.fvecs", 200)
    vectors = read_vectors(data / "base.fvecs", 400)
    stop = threading.Event()
    counts = {"searches": 0, "search_failures": 0, "writes": 0, "write_failures": 0}
    lock = threading.Lock()

    def count(kind: str, ok: bool, detail) -> None:
        with lock:
            counts[kind + "es" if kind == "search" else kind + "s"] += 1
            if not ok:
                counts[kind + "_failures"] += 1
                print(f"{kind} failed: {detail}", file=sys.stderr)

    def searcher(seed: int) -> None:
        i = seed
        while not stop.is_set():
            q = queries[i % len(queries)]
            i += 1
            try:
                status, body = http("POST", url + "/collections/rep/search", {"vector": q, "k": 10}, timeout=30)
                count("search", status == 200 and len(body) == 10, (status, body))
            except OSError as e:
                count("search", False, e)

    def writer(base: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            vid = base + i % 400
            try:
                if i % 4 == 0:
                    status, body = http("DELETE", f"{url}/collections/rep/vectors/{vid}", timeout=30)
                    count("write", status in (200, 404), (status, body))
                else:
                    status, body = http("POST", url + "/collections/rep/vectors",
                                        {"vectors": [{"id": vid, "vector": vectors[i % len(vectors)]}]}, timeout=30)
                    count("write", status == 201, (status, body))
            except OSError as e:
                count("write", False, e)

    threads = [threading.Thread(target=searcher, args=(s,)) for s in (0, 100)]
    threads += [threading.Thread(target=writer, args=(b,)) for b in (9_000_000, 9_100_000)]
    for t in threads:
        t.start()
    restarts = []
    try:
        time.sleep(2)
        for i in range(len(shards)):
            t0 = time.monotonic()
            shards[i].kill(signal.SIGTERM)
            shards[i] = Proc(binary, shards[i].args, tmp / f"s{i}.log")
            wait_ready(shards[i].url)
            restarts.append(round(time.monotonic() - t0, 2))
            time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    return {**counts, "restart_seconds": restarts}


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
                shards[1].kill()
                stream_bench(binary, router.url, data, ["--count", str(args.missed), "--loads", "4x100",
                                                        "--id-start", "5000000"])
                t0 = time.monotonic()
                shards[1] = Proc(binary, shards[1].args, tmp / "s1.log")
                wait_answering(shards[1].url)
                recovered_s = time.monotonic() - t0
                wait_ready(shards[1].url)
                ready_s = time.monotonic() - t0
                agree = digests_agree([s.url for s in shards], r)
                entry.update({"missed_writes": args.missed, "restart_to_recovered_seconds": round(recovered_s, 2),
                              "restart_to_ready_seconds": round(ready_s, 2),
                              "catch_up_seconds": round(ready_s - recovered_s, 2), "copies_agree": agree})
                entry["rolling_restart"] = rolling_restart(router.url, shards, tmp, binary, data)
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
