#!/usr/bin/env python3
"""Streaming-writes benchmark of one ruvector node (``ruvector serve``).

What it does (standard library + numpy, Python 3.11), on a fresh temporary data directory and
a free loopback port, with the shared 100k set (384-d, cosine):

1. bulk load: ``ruvector import --create --metric cosine --batch 1000 --concurrency 2`` of
   base.fvecs, timed from the start of the import to ``GET /collections/{name}`` reporting
   the full size; then a clean restart (SIGTERM, so the log is checkpointed);
2. ``ruvector stream-bench``: searches alone (one client, ef 64, k 10), then each write load
   (1x1, 4x1, 16x1, 4x10, 4x100 = clients x vectors per upsert) for ``--duration`` seconds
   while one client searches: acknowledged vectors/s and requests/s, write and search
   p50/p99, errors. New ids from 1,000,000 up (inserts), or ``--overwrite`` (updates);
3. trickle write amplification: ``--trickle-seconds`` of single-vector upserts at
   ``--trickle-rate`` requests/s (``max``: 4 closed-loop clients). The server's
   ``/proc/<pid>/io`` ``write_bytes`` is read before and after (each time once the server has
   been quiet: at least ``--settle`` s, so a pending background checkpoint is counted) and
   divided by the bytes of new vector data (vectors x dim x 4); the growth of the data
   directory is a secondary figure;
4. restart after SIGKILL: a clean restart with ``RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS=0``
   (its time to ``/ready`` is the clean-restart figure), exactly ``--kill-records`` (10,000)
   single-vector upserts by 4 clients, SIGKILL, restart: time from spawn to ``/ready`` 200,
   then ``GET /collections/{name}`` must report every record and a sample of the ids must be
   there;
5. the in-process build of the same data (``ruvector bench ... --threads 2 --ef 64``) for
   comparison with the HTTP bulk load; with ``--big FILE`` (e.g. the 300k file that
   ``extend.py`` in the data folder makes) the bulk load and the in-process build of that
   file too, each on a fresh node.

Results: a summary on stdout, and ``bench/results/<timestamp>-<label>.json`` (command line,
host, git commit, every row) plus the summary as ``.txt``. The server and the clients share
the machine's cores.

Usage::

    CARGO_TARGET_DIR=/work/target-bench cargo build --release -p ruvector-cli
    flock /tmp/bench.lock python3 bench/streaming.py                       # the full run
    flock /tmp/bench.lock python3 bench/streaming.py --big /work/data-300k/base-300k.fvecs
    python3 bench/streaming.py --duration 5 --search-seconds 3 --trickle-seconds 15 \\
        --kill-records 500 --no-inprocess --label quick                    # a smoke test
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from http_load import Client, find_binary, free_port, host_info, slug  # noqa: E402

DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "pypi-minilm-100k"
DEFAULT_RESULTS = HERE / "results"
DIM_BYTES = 4  # float32


def log(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


def fvecs_shape(path: Path) -> tuple[int, int]:
    """(rows, dim) of a TEXMEX .fvecs file, from its size and first header."""
    with open(path, "rb") as f:
        dim = int.from_bytes(f.read(4), "little")
    return path.stat().st_size // (4 + 4 * dim), dim


class Node:
    """One ``ruvector serve`` process over a data directory, restartable on new ports."""

    def __init__(self, binary: Path, data: Path, logfile: Path):
        self.binary, self.data, self.logfile = binary, data, logfile
        self.proc: subprocess.Popen | None = None
        self.url = ""
        data.mkdir(parents=True, exist_ok=True)

    def start(self, env: dict[str, str] | None = None, timeout: float = 3600) -> float:
        """Spawns the node; returns seconds from spawn to ``/ready`` answering 200."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **(env or {})}
        with open(self.logfile, "ab") as f:
            f.write(f"\n=== start {_dt.datetime.now():%H:%M:%S} env={env}\n".encode())
            f.flush()
            spawned = time.perf_counter()
            self.proc = subprocess.Popen([str(self.binary), "serve", "--addr", f"127.0.0.1:{port}", "--data", str(self.data)],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env)
        conn = None
        while time.perf_counter() - spawned < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}; see {self.logfile}")
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/ready")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    conn.close()
                    return time.perf_counter() - spawned
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.01 if time.perf_counter() - spawned < 2 else 0.05)  # each 503 is a WARN line in the log
        raise RuntimeError(f"{self.url}/ready not 200 after {timeout} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> float:
        """SIGTERM (drain + checkpoint); returns seconds until the process exited."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("node did not exit within 300 s of SIGTERM")
        if self.proc.returncode != 0:
            raise RuntimeError(f"node exited with {self.proc.returncode} after SIGTERM; see {self.logfile}")
        return time.perf_counter() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def write_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        raise RuntimeError("no write_bytes in /proc/<pid>/io")

    def data_bytes(self, sub: str = "") -> int:
        total = 0
        for root, _dirs, files in os.walk(self.data / sub):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except OSError:
                    pass  # removed meanwhile (a checkpoint replacing files)
        return total

    def size(self, name: str) -> int | None:
        c = Client(self.url)
        try:
            status, body = c.json("GET", f"/collections/{name}")
        finally:
            c.close()
        return body.get("size") if status == 200 and isinstance(body, dict) else None

    def settle(self, minimum: float, quiet: float = 2.0, cap: float = 300) -> float:
        """Waits at least ``minimum`` s, then until write_bytes is unchanged for ``quiet`` s."""
        t0 = time.perf_counter()
        time.sleep(minimum)
        last, since = self.write_bytes(), time.perf_counter()
        while time.perf_counter() - since < quiet and time.perf_counter() - t0 < cap:
            time.sleep(0.25)
            now = self.write_bytes()
            if now != last:
                last, since = now, time.perf_counter()
        return time.perf_counter() - t0


def run(cmd: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    log("$ " + shlex.join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def stream_bench(args, node: Node, extra: list[str]) -> list[dict]:
    cmd = [str(args.binary), "stream-bench", "--url", node.url, "--collection", args.collection,
           "--base", str(args.data / "base.fvecs"), "--query", str(args.data / "query.fvecs"), "--json", *extra]
    if args.overwrite:
        cmd.append("--overwrite")
    return [json.loads(line) for line in run(cmd).stdout.splitlines() if line.startswith("{")]


def bulk_load(args, node: Node, file: Path, label: str) -> dict:
    """``ruvector import`` of ``file``, timed until the collection reports every vector."""
    rows, dim = fvecs_shape(file)
    cmd = [str(args.binary), "import", "--url", node.url, "--collection", args.collection, "--create", "--metric", "cosine",
           "--batch", str(args.batch), "--concurrency", str(args.upload_conns), str(file)]
    t0 = time.perf_counter()
    out = run(cmd, timeout=7200)
    imported = time.perf_counter() - t0
    while node.size(args.collection) != rows:
        if time.perf_counter() - t0 > imported + 600:
            raise RuntimeError(f"collection never reached {rows} vectors")
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    row = {"phase": "bulk_load", "label": label, "file": str(file), "vectors": rows, "dim": dim, "batch": args.batch,
           "conns": args.upload_conns, "seconds": round(seconds, 2), "import_seconds": round(imported, 2),
           "vectors_per_s": round(rows / seconds, 1), "import_output": out.stdout.strip()}
    log(f"bulk load {label}: {rows} vectors in {seconds:.1f} s ({rows / seconds:.0f}/s)")
    return row


def inprocess_build(args, base: Path, gt: Path | None, label: str) -> dict:
    cmd = [str(args.binary), "bench", "--base", str(base), "--query", str(args.data / "query.fvecs"), "--metric", "cosine",
           "--m", "16", "--ef-construction", "200", "--threads", "2", "--ef", "64", "--json"]
    if gt is not None and gt.exists():
        cmd[4:4] = ["--groundtruth", str(gt)]
    out = run(cmd, timeout=7200)
    r = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    log(f"in-process build {label}: {r['build_seconds']:.1f} s, recall@10 {r['recall_at_10']:.4f} at ef 64")
    return {"phase": "inprocess_build", "label": label, "vectors": r.get("n"), "seconds": round(r["build_seconds"], 2),
            "vectors_per_s": round(r["n"] / r["build_seconds"], 1) if r.get("n") else None,
            "recall_at_10_ef64": r["recall_at_10"], "command": shlex.join(cmd)}


def trickle(args, node: Node, next_id: int) -> tuple[dict, int]:
    rate = args.trickle_rate
    extra = ["--writes-only", "--loads", "4x1", "--duration", str(args.trickle_seconds), "--id-start", str(next_id)]
    if rate != "max":
        extra += ["--rate", str(float(rate))]
    waited = node.settle(args.settle)
    io0, disk0, wal0 = node.write_bytes(), node.data_bytes(), node.data_bytes("wal")
    [r] = stream_bench(args, node, extra)
    settle = node.settle(args.settle)
    io1, disk1, wal1 = node.write_bytes(), node.data_bytes(), node.data_bytes("wal")
    new_bytes = r["write_vectors"] * args.dim * DIM_BYTES
    row = {"phase": "trickle", "rate": rate, "seconds": r["seconds"], "vectors": r["write_vectors"],
           "vectors_per_s": r["write_vectors_per_s"], "write_p50_ms": r["write_p50_ms"], "write_p99_ms": r["write_p99_ms"],
           "errors": r["write_errors"], "new_vector_bytes": new_bytes, "proc_write_bytes": io1 - io0,
           "write_amplification": round((io1 - io0) / new_bytes, 2) if new_bytes else None,
           "data_dir_bytes_before": disk0, "data_dir_bytes_after": disk1, "data_dir_growth": disk1 - disk0,
           "data_dir_growth_ratio": round((disk1 - disk0) / new_bytes, 2) if new_bytes else None,
           "wal_bytes_before": wal0, "wal_bytes_after": wal1, "settled_before_s": round(waited, 1),
           "settled_after_s": round(settle, 1), "error_sample": r.get("error_sample")}
    log(f"trickle: {row['vectors']} vectors, amplification {row['write_amplification']} (/proc io), "
        f"data dir growth ratio {row['data_dir_growth_ratio']}")
    return row, r["next_id"]


def kill_restart(args, node: Node, next_id: int) -> tuple[list[dict], int]:
    env = {"RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS": "0"}
    node.stop()
    clean = node.start(env)
    size0 = node.size(args.collection)
    log(f"clean restart (checkpoint interval 0): ready in {clean:.3f} s, size {size0}")
    n = args.kill_records
    [r] = stream_bench(args, node, ["--count", str(n), "--loads", "4x1", "--id-start", str(next_id)])
    wal = node.data_bytes("wal")
    node.kill()
    crash = node.start(env)
    size1 = node.size(args.collection)
    expected = size0 + (0 if args.overwrite else n) if size0 is not None else None
    ids = sorted(set(random.Random(7).sample(range(n), min(n, args.verify_sample)) + [0, n - 1]))
    rows_total = fvecs_shape(args.data / "base.fvecs")[0]
    c = Client(node.url)
    missing = []
    for i in ids:
        vid = (r["n_first"] + i) % rows_total if args.overwrite else next_id + r["n_first"] + i
        status, _ = c.request("GET", f"/collections/{args.collection}/vectors/{vid}")
        if status != 200:
            missing.append(vid)
    c.close()
    ok = size1 == expected and not missing
    log(f"SIGKILL restart with {n} records in the log (log files: {wal} bytes): ready in {crash:.3f} s; "
        f"size {size1} (expected {expected}), {len(ids) - len(missing)}/{len(ids)} sampled ids found")
    rows = [
        {"phase": "restart_clean", "seconds_to_ready": round(clean, 3), "size": size0, "env": env},
        {"phase": "restart_sigkill", "records": n, "write_vectors_per_s": r["write_vectors_per_s"], "wal_bytes": wal,
         "seconds_to_ready": round(crash, 3), "size": size1, "expected_size": expected, "sampled_ids": len(ids),
         "missing_ids": missing[:20], "verified": ok, "env": env},
    ]
    if not ok:
        raise RuntimeError(f"after SIGKILL: size {size1} (expected {expected}), missing ids {missing[:20]}")
    return rows, r["next_id"]


def fmt_summary(rows: list[dict]) -> str:
    f = lambda v, p=2: "-" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))
    out = []
    for r in (r for r in rows if r["phase"] in ("bulk_load", "inprocess_build")):
        kind = "HTTP bulk load" if r["phase"] == "bulk_load" else "in-process build"
        out.append(f"{kind:<17} {r['label']:<6} {r['vectors']:>8} vectors {r['seconds']:>8.1f} s {f(r['vectors_per_s'], 0):>8} vectors/s")
    sb = [r for r in rows if r["phase"] in ("search", "write")]
    if sb:
        out += ["", f"{'load':<8} {'vectors/s':>10} {'requests/s':>10} {'w_p50_ms':>9} {'w_p99_ms':>9} {'w_errs':>6} "
                    f"{'searches':>8} {'s_p50_ms':>9} {'s_p99_ms':>9} {'s_errs':>6}"]
        for r in sb:
            load = "search" if r["phase"] == "search" else r["load"]
            out.append(f"{load:<8} {f(r['write_vectors_per_s'], 1):>10} {f(r['write_requests_per_s'], 1):>10} "
                       f"{f(r['write_p50_ms']):>9} {f(r['write_p99_ms']):>9} {r['write_errors']:>6} {r['searches']:>8} "
                       f"{f(r['search_p50_ms']):>9} {f(r['search_p99_ms']):>9} {r['search_errors']:>6}")
    for r in rows:
        if r["phase"] == "trickle":
            out += ["", f"trickle at {r['rate']}/s for {r['seconds']} s: {r['vectors']} vectors ({r['vectors_per_s']}/s, "
                        f"p50 {r['write_p50_ms']} ms, errors {r['errors']}); disk writes {r['proc_write_bytes']:,} B / "
                        f"new vector data {r['new_vector_bytes']:,} B = write amplification {r['write_amplification']}; "
                        f"data dir growth {r['data_dir_growth']:,} B (x{r['data_dir_growth_ratio']})"]
        elif r["phase"] == "restart_after_load":
            out += ["", f"clean restart after the bulk load: /ready after {r['seconds_to_ready']:.3f} s"]
        elif r["phase"] == "restart_clean":
            out.append(f"clean restart before the SIGKILL test: /ready after {r['seconds_to_ready']:.3f} s ({r['size']} vectors)")
        elif r["phase"] == "restart_sigkill":
            out.append(f"SIGKILL restart with {r['records']} single-vector records in the log (log files: {r['wal_bytes']:,} B): "
                       f"/ready after {r['seconds_to_ready']:.3f} s; size {r['size']} (expected {r['expected_size']}), "
                       f"{r['sampled_ids'] - len(r['missing_ids'])}/{r['sampled_ids']} sampled ids found")
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, default=None,
                   help="ruvector binary (default: $CARGO_TARGET_DIR or /work/target-bench, else ./target, release/ruvector)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with base.fvecs, query.fvecs, groundtruth.ivecs")
    p.add_argument("--collection", default="bench")
    p.add_argument("--batch", type=int, default=1000, help="vectors per request of the bulk load")
    p.add_argument("--upload-conns", type=int, default=2)
    p.add_argument("--duration", type=float, default=20, help="seconds of each write load")
    p.add_argument("--loads", default="1x1,4x1,16x1,4x10,4x100", help="CLIENTSxBATCH write loads")
    p.add_argument("--search-seconds", type=float, default=10, help="seconds of searches alone")
    p.add_argument("--ef", type=int, default=64)
    p.add_argument("--overwrite", action="store_true", help="write to existing ids 0..N (updates) instead of new ids")
    p.add_argument("--trickle-rate", default="200", help="single-vector upserts per second, or 'max' (4 closed-loop clients)")
    p.add_argument("--trickle-seconds", type=float, default=60)
    p.add_argument("--settle", type=float, default=8,
                   help="seconds to wait (then until disk writes stop) around the trickle, > the checkpoint interval")
    p.add_argument("--kill-records", type=int, default=10_000, help="single-vector upserts in the log before SIGKILL")
    p.add_argument("--verify-sample", type=int, default=200, help="ids checked by GET after the SIGKILL restart")
    p.add_argument("--no-inprocess", action="store_true", help="skip the in-process build (ruvector bench)")
    p.add_argument("--big", type=Path, help="a larger .fvecs (e.g. base-300k.fvecs from extend.py): bulk load + in-process build")
    p.add_argument("--big-groundtruth", type=Path, help="ground truth of --big (default: groundtruth-<N>k.ivecs beside it)")
    p.add_argument("--skip", default="", help="comma-separated phases to skip: stream,trickle,kill")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--label", default="streaming")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--workdir", type=Path, default=None,
                   help="parent of the temporary data directory (default: the system's; must be a real disk, not tmpfs)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directories")
    p.add_argument("--note", default="", help="free text saved with the results")
    a = p.parse_args(argv)
    if a.trickle_rate != "max":
        try:
            if float(a.trickle_rate) <= 0:
                raise ValueError
        except ValueError:
            p.error("--trickle-rate must be a positive number or 'max'")
    a.skip = {s for s in a.skip.split(",") if s}
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.binary = find_binary(args.binary)
    base = args.data / "base.fvecs"
    n, args.dim = fvecs_shape(base)
    started = _dt.datetime.now()
    tmp = Path(tempfile.mkdtemp(prefix="ruvector-streaming-", dir=args.workdir))
    log(f"binary {args.binary}, data {args.data} ({n} x {args.dim}), work dir {tmp}")
    rows: list[dict] = []
    node = Node(args.binary, tmp / "node-data", tmp / "node.log")
    try:
        first = node.start()
        rows.append(bulk_load(args, node, base, f"{n // 1000}k"))
        node.stop()
        rows.append({"phase": "restart_after_load", "seconds_to_ready": round(node.start(), 3), "first_start_s": round(first, 3)})
        next_id = 1_000_000
        if "stream" not in args.skip:
            sb = stream_bench(args, node, ["--duration", str(args.duration), "--loads", args.loads, "--ef", str(args.ef),
                                           "--search-seconds", str(args.search_seconds), "--id-start", str(next_id)])
            rows += sb
            next_id = max(r["next_id"] for r in sb)
        if "trickle" not in args.skip:
            row, next_id = trickle(args, node, next_id)
            rows.append(row)
        if "kill" not in args.skip:
            kill_rows, next_id = kill_restart(args, node, next_id)
            rows += kill_rows
        node.stop()
        if not args.no_inprocess:
            rows.append(inprocess_build(args, base, args.data / "groundtruth.ivecs", f"{n // 1000}k"))
        if args.big:
            big_rows = fvecs_shape(args.big)[0]
            big = Node(args.binary, tmp / "big-data", tmp / "big.log")
            try:
                big.start()
                rows.append(bulk_load(args, big, args.big, f"{big_rows // 1000}k"))
            finally:
                big.stop()
            if not args.no_inprocess:
                gt = args.big_groundtruth or args.big.with_name(f"groundtruth-{big_rows // 1000}k.ivecs")
                rows.append(inprocess_build(args, args.big, gt, f"{big_rows // 1000}k"))
    finally:
        node.kill()
        if args.keep:
            log(f"kept {tmp}")
        else:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)

    summary = fmt_summary(rows)
    print(summary)
    if not args.no_save:
        args.results.mkdir(parents=True, exist_ok=True)
        stem = args.results / f"{started:%Y%m%d-%H%M%S}-{slug(args.label)}"
        record = {"command": shlex.join(["python3", sys.argv[0], *argv]), "started": started.isoformat(timespec="seconds"),
                  "host": host_info(args.binary), "notes": f"{os.cpu_count()} CPUs shared by the node and the clients",
                  "note": args.note, "rows": rows}
        stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        stem.with_suffix(".txt").write_text(f"$ {record['command']}\n# {record['started']} {record['notes']}\n# {args.note}\n\n{summary}\n")
        log(f"saved {stem}.json and .txt")
    errors = sum((r.get("write_errors") or 0) + (r.get("search_errors") or 0) + (r.get("errors") or 0) for r in rows)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
