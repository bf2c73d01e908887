#!/usr/bin/env python3
"""Growing a cluster from 3 to 4 shards under load (standard library only).

Four `ruvector serve` shards on loopback ports, a router over the first
three (--replication-factor R), the shared data set's base vectors written
through it (`ruvector stream-bench --count`). Then two client threads run
for the whole experiment — one searching (k 10, ef 64, the data set's
queries), one writing batches of --batch new vectors — while:

1. `before`: --phase seconds with the three-shard router;
2. the router is replaced by one over all four shards (the clients switch
   to it first; the old one gets SIGTERM, so in-flight requests finish);
   `during`: from its start until `GET /cluster` shows every partition
   where the placement wants it, every copy ready (the time to balanced);
3. `after`: --phase seconds more.

Reported per phase: search p50/p99 and QPS, vectors written per second,
errors; and the move: seconds to balanced (and of those, how long moves
waited for the old router's last probe to age out), partitions moved, vectors
copied (the router's `ruvector_router_copied_vectors_total`) and vectors/s,
partition snapshot bytes shipped (`ruvector_router_copied_bytes_total`)
and MB/s.

    CARGO_TARGET_DIR=/work/target-bench cargo build --release -p ruvector-cli
    python3 bench/rebalance.py --binary /work/target-bench/release/ruvector
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replicas import DEFAULT_DATA, ROOT, Proc, free_port, http, read_vectors, stream_bench, wait_ready  # noqa: E402


class Load:
    """One searching and one writing client against a switchable URL."""

    def __init__(self, url: str, queries, vectors, batch: int, id_start: int):
        self.url = url
        self.queries, self.vectors, self.batch = queries, vectors, batch
        self.next_id = id_start
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples: list[tuple[float, str, float, bool]] = []  # (t, kind, seconds, ok)
        self.threads = [threading.Thread(target=self.searcher), threading.Thread(target=self.writer)]

    def record(self, kind: str, t0: float, ok: bool, detail) -> None:
        with self.lock:
            self.samples.append((t0, kind, time.monotonic() - t0, ok))
        if not ok:
            print(f"{kind} failed: {detail}", file=sys.stderr)

    def searcher(self) -> None:
        i = 0
        while not self.stop.is_set():
            q = self.queries[i % len(self.queries)]
            i += 1
            t0 = time.monotonic()
            try:
                status, body = http("POST", self.url + "/collections/rep/search", {"vector": q, "k": 10, "ef": 64},
                                    timeout=30)
                self.record("search", t0, status == 200 and len(body) == 10, (status, body))
            except OSError as e:
                self.record("search", t0, False, e)

    def writer(self) -> None:
        while not self.stop.is_set():
            start = self.next_id
            self.next_id += self.batch
            batch = [{"id": start + j, "vector": self.vectors[(start + j) % len(self.vectors)]}
                     for j in range(self.batch)]
            t0 = time.monotonic()
            try:
                status, body = http("POST", self.url + "/collections/rep/vectors", {"vectors": batch}, timeout=60)
                self.record("write", t0, status == 201, (status, body))
            except OSError as e:
                self.record("write", t0, False, e)

    def phase(self, start: float, end: float, batch: int) -> dict:
        with self.lock:
            rows = [s for s in self.samples if start <= s[0] < end]
        searches = sorted(s[2] * 1000 for s in rows if s[1] == "search" and s[3])
        writes = [s for s in rows if s[1] == "write" and s[3]]
        span = max(end - start, 1e-9)
        pct = lambda q: round(searches[min(len(searches) - 1, int(q * len(searches)))], 2) if searches else None
        return {
            "seconds": round(span, 2),
            "search_qps": round(len(searches) / span, 1),
            "search_p50_ms": pct(0.50),
            "search_p99_ms": pct(0.99),
            "write_vectors_per_s": round(len(writes) * batch / span, 1),
            "errors": sum(1 for s in rows if not s[3]),
        }


def metric(url: str, name: str) -> float:
    import urllib.request
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def balanced(url: str, shards: int, replicas: int, waiting: list | None = None) -> bool:
    status, c = http("GET", url + "/cluster", timeout=10)
    if waiting is not None and status == 200 and c.get("other_routers"):
        waiting.append(time.monotonic())
    if status != 200 or c["moving"] != 0:
        return False
    if any(s != "ready" for col in c["collections"] for row in col["states"] for s in row):
        return False
    counts = [s["partitions"] for s in c["shards"]]
    total = sum(counts)
    return len(counts) == shards and max(counts) - min(counts) <= 1 and total > 0


def run(args) -> dict:
    binary, data = args.binary, args.data
    tmp = Path(tempfile.mkdtemp(prefix="ruvector-rebalance-"))
    ports = [free_port() for _ in range(4)]
    shard_env = {} if args.bulk_link_threads is None else {"RUVECTOR_STORAGE__BULK_LINK_THREADS": str(args.bulk_link_threads)}
    shards = [Proc(binary, ["serve", "--addr", f"127.0.0.1:{p}", "--data", str(tmp / f"s{i}")], tmp / f"s{i}.log",
                   shard_env)
              for i, p in enumerate(ports)]
    for s in shards:
        wait_ready(s.url)
    urls = [s.url for s in shards]
    quiet = {"RUVECTOR_ROUTER__REPAIR_INTERVAL_MS": "0"}
    r = args.replication_factor

    def router(n: int) -> Proc:
        p = Proc(binary, ["router", "--addr", "127.0.0.1:0", "--shards", ",".join(urls[:n]),
                          "--replication-factor", str(r)], tmp / f"router{n}.log", quiet)
        wait_ready(p.url)
        return p

    three = router(3)
    try:
        status, body = http("POST", three.url + "/collections", {"name": "rep", "dimension": 384, "metric": "cosine"})
        assert status == 201, body
        t0 = time.monotonic()
        out = subprocess_stream(binary, three.url, data, args.count)
        load_s = time.monotonic() - t0
        queries = read_vectors(data / "query.fvecs", 500)
        vectors = read_vectors(data / "base.fvecs", 2000)
        load = Load(three.url, queries, vectors, args.batch, 10_000_000)
        for t in load.threads:
            t.start()
        before_start = time.monotonic()
        time.sleep(args.phase)
        before_end = time.monotonic()
        copied_before = 0.0
        four = router(4)
        move_start = time.monotonic()
        load.url = four.url
        time.sleep(0.3)
        three.kill(signal.SIGTERM)
        waiting: list[float] = []
        while not balanced(four.url, 4, r, waiting):
            if time.monotonic() - move_start > args.timeout:
                raise RuntimeError("not balanced in time")
            time.sleep(0.1)
        move_end = time.monotonic()
        time.sleep(args.phase)
        after_end = time.monotonic()
        load.stop.set()
        for t in load.threads:
            t.join()
        copied = metric(four.url, "ruvector_router_copied_vectors_total") - copied_before
        copied_bytes = metric(four.url, "ruvector_router_copied_bytes_total")
        moved = metric(four.url, "ruvector_router_move_duration_seconds_count")
        move_s = move_end - move_start
        status, cluster = http("GET", four.url + "/cluster")
        result = {
            "replication_factor": r,
            "bulk_link_threads": args.bulk_link_threads or os.cpu_count(),
            "loaded_vectors": args.count,
            "load_seconds": round(load_s, 1),
            "seconds_to_balanced": round(move_s, 2),
            # Until the old router's last probe aged out (moves wait while a
            # router with another shard list runs).
            "seconds_waiting_for_old_router": round(max(waiting, default=move_start) - move_start, 2),
            "vectors_copied": int(copied),
            "copied_vectors_per_s": round(copied / move_s, 1),
            "partitions_moved": int(moved),
            "snapshot_bytes": int(copied_bytes),
            "snapshot_mb_per_s": round(copied_bytes / move_s / 1e6, 2),
            "before": load.phase(before_start, before_end, args.batch),
            "during": load.phase(move_start, move_end, args.batch),
            "after": load.phase(move_end, after_end, args.batch),
            "shard_partitions": [s["partitions"] for s in cluster["shards"]],
            "shard_vectors": [s["vectors"] for s in cluster["shards"]],
        }
        four.kill(signal.SIGTERM)
        return result
    finally:
        three.kill(signal.SIGTERM)
        for s in shards:
            s.kill(signal.SIGTERM)


def subprocess_stream(binary: Path, url: str, data: Path, count: int) -> str:
    """Writes the first `count` base vectors (ids from 0) into `rep`."""
    return stream_bench(binary, url, data, ["--count", str(count), "--loads", "2x500", "--id-start", "0"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "ruvector")
    p.add_argument("--data", type=Path, default=Path(os.environ.get("RUVECTOR_DATASET", DEFAULT_DATA)))
    p.add_argument("--replication-factor", type=int, default=1)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--phase", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--bulk-link-threads", type=int, default=None,
                   help="storage.bulk_link_threads of the shards (threads linking partition snapshots)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
