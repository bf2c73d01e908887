#!/usr/bin/env python3
"""HTTP load benchmark for a ruvector node (``ruvector serve``) or cluster (``ruvector router``).

What it does (standard library + numpy only, Python 3.11):

1. starts ``ruvector serve`` on a free loopback port with a fresh temporary data directory
   (or uses ``--url`` of a node/router that is already running) and waits for ``/ready``;
2. creates a collection (cosine, ``--m`` 16, ``--ef-construction`` 200) and uploads the
   base vectors in batches of ``--batch`` (1,000) over ``--upload-conns`` keep-alive
   ``http.client`` connections, with every request body serialised *before* the clock
   starts. ``upload_seconds`` runs from the first upload request to "fully searchable":
   the last 201 received **and** ``GET /collections/{name}`` reporting ``size`` == N;
3. for each ``--ef`` and each ``--conns`` value, runs N client threads, each with ONE
   keep-alive ``http.client.HTTPConnection`` and pre-serialised search bodies (k=10), after
   a warm-up; reports QPS, recall@10 (against the first 10 entries of each
   ``groundtruth.ivecs`` row), p50/p90/p99 latency (client side, request sent to body
   read), errors (non-200 or exceptions), and the CPU time the server process(es) and
   this client used per query;
4. optionally (``--wrk``) measures the same search endpoint with ``wrk`` (a fixed body at
   ``--wrk-ef``, 1 and 2 connections), and (``--perf PREFIX``) records ``perf`` cpu-clock
   profiles of the server during the upload and the search phases;
5. ``--cluster N`` starts N shards plus one router on this machine and measures upload and
   search through the router, and *in the same run* a single node holding all the data,
   one after the other (never both at once), so the fan-out cost is visible.

Results: a readable table on stdout (or JSON lines with ``--json``), and the raw results
(command line, host, git commit, every row, raw wrk output) saved as
``bench/results/<timestamp>-<label>.json`` plus the table as ``.txt``.

Vectors are sent as fixed-point decimals with 9 digits after the point (absolute error
<= 5e-10, below a float32 ulp for |x| >= 2^-4; the vectors are L2-normalised so |x| <= 1).
That lets every body be built with vectorised numpy in a second instead of ~100 s of
``json.dumps``; the JSON is valid (a space stands in for the sign of positive values).

Usage::

    CARGO_TARGET_DIR=/work/target-bench cargo build --release -p ruvector-cli
    flock /tmp/bench.lock python3 bench/http_load.py                    # one node
    flock /tmp/bench.lock python3 bench/http_load.py --cluster 3        # 3 shards + router vs one node
    python3 bench/http_load.py --cluster 3 --replication-factors 1,2 --no-single   # replicas
    flock /tmp/bench.lock python3 bench/http_load.py --wrk --ef 64 --conns 1,2
    python3 bench/http_load.py --url http://127.0.0.1:8080 --collection bench --skip-upload
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "pypi-minilm-100k"
DEFAULT_RESULTS = HERE / "results"
K = 10
JSON_HEADERS = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- data


def read_vecs(path: Path, dtype: type, limit: int | None = None) -> np.ndarray:
    """A TEXMEX ``.fvecs`` / ``.ivecs`` file as a contiguous (n, d) array."""
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if limit is not None:
        rows = rows[:limit]
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


_DIGIT_TABLES: dict[int, np.ndarray] = {}


def _digits(width: int) -> np.ndarray:
    """(10**width, width) uint8: the zero-padded decimal digits of every number."""
    if width not in _DIGIT_TABLES:
        n = np.arange(10**width)
        _DIGIT_TABLES[width] = np.stack([ord("0") + (n // 10 ** (width - 1 - i)) % 10 for i in range(width)], axis=1).astype(np.uint8)
    return _DIGIT_TABLES[width]


def format_rows(x: np.ndarray) -> list[bytes]:
    """Each row of ``x`` (|x| <= 1) as the inside of a JSON array: ``" 0.012345679,-0.5..."``.

    Fixed width (12 characters a number), built with numpy only, so 100k x 384 takes about
    a second rather than minutes of ``json.dumps``.
    """
    x = np.asarray(x, dtype=np.float64)
    if np.abs(x).max() > 9.0:
        raise ValueError("format_rows expects |x| < 9 (normalised vectors)")
    n, d = x.shape
    q = np.rint(np.abs(x) * 1e9).astype(np.int64)  # 9 decimals, fixed point
    width = 13  # sign, int digit, '.', 9 decimals, ','
    out = np.empty((n, d, width), dtype=np.uint8)
    out[:, :, 0] = np.where(x < 0, ord("-"), ord(" "))
    out[:, :, 1] = ord("0") + q // 1_000_000_000
    out[:, :, 2] = ord(".")
    rem = (q % 1_000_000_000).astype(np.int32)
    hi, lo = np.divmod(rem, 100_000)  # 4 + 5 decimals, each through a digit table
    out[:, :, 3:7] = _digits(4)[hi]
    out[:, :, 7:12] = _digits(5)[lo]
    out[:, :, 12] = ord(",")
    flat = out.reshape(n, d * width)
    return [flat[i, :-1].tobytes() for i in range(n)]  # drop the trailing comma


def upload_bodies(base: np.ndarray, batch: int) -> list[bytes]:
    rows = format_rows(base)
    bodies = []
    for start in range(0, len(rows), batch):
        items = [b'{"id":%d,"vector":[%s]}' % (i, rows[i]) for i in range(start, min(start + batch, len(rows)))]
        bodies.append(b'{"vectors":[' + b",".join(items) + b"]}")
    return bodies


def search_bodies(queries: np.ndarray, k: int, ef: int) -> list[bytes]:
    return [b'{"vector":[%s],"k":%d,"ef":%d}' % (row, k, ef) for row in format_rows(queries)]


def brute_force_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k by inner product (for ``--limit``), ties to the lower id."""
    out = np.empty((len(queries), k), dtype=np.int64)
    b = base.astype(np.float64)
    for s in range(0, len(queries), 100):
        scores = queries[s : s + 100].astype(np.float64) @ b.T
        for j, row in enumerate(scores):
            out[s + j] = np.lexsort((np.arange(len(row)), -row))[:k]
    return out


# --------------------------------------------------------------------------- HTTP


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str, timeout: float = 60.0):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.timeout = timeout
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body); on a connection error reconnects once and raises."""
        try:
            self.conn.request(method, path, body=body, headers=JSON_HEADERS if body is not None else {})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            raise

    def json(self, method: str, path: str, payload=None) -> tuple[int, object]:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")

    def close(self) -> None:
        self.conn.close()


def wait_ready(url: str, timeout: float, procs: list[subprocess.Popen] | None = None) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        for p in procs or []:
            if p.poll() is not None:
                raise RuntimeError(f"process {p.args} exited with {p.returncode} before {url}/ready")
        try:
            c = Client(url, timeout=2)
            status, _ = c.request("GET", "/ready")
            c.close()
            if status == 200:
                return time.perf_counter() - start
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/ready not 200 after {timeout} s")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    role: str
    url: str
    popen: subprocess.Popen
    log: Path
    data_dir: Path | None = None


@dataclass
class Deployment:
    """Processes this script started (empty for ``--url``) and the URL clients use."""

    label: str
    url: str
    procs: list[Proc] = field(default_factory=list)
    tmp: Path | None = None

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_process(binary: Path, role: str, args: list[str], port: int, log: Path) -> Proc:
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as f:
        p = subprocess.Popen([str(binary), *args], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Proc(role, url, p, log)


def wait_listening(proc: Proc, timeout: float = 30) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.role} exited ({proc.popen.returncode}):\n{proc.log.read_text()[-2000:]}")
        if "listening on" in proc.log.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{proc.role} did not print 'listening on' within {timeout} s")


def start_node(binary: Path, tmp: Path, name: str) -> Proc:
    port = free_port()
    data = tmp / f"{name}-data"
    data.mkdir()
    proc = start_process(binary, name, ["serve", "--addr", f"127.0.0.1:{port}", "--data", str(data)], port, tmp / f"{name}.log")
    proc.data_dir = data
    wait_listening(proc)
    wait_ready(proc.url, 60, [proc.popen])
    return proc


def start_single(binary: Path) -> Deployment:
    tmp = Path(tempfile.mkdtemp(prefix="ruvector-http-load-"))
    dep = Deployment("node", "", tmp=tmp)
    try:
        node = start_node(binary, tmp, "node")
        dep.procs.append(node)
        dep.url = node.url
        return dep
    except BaseException:
        dep.stop()
        raise


def start_cluster(binary: Path, shards: int, replication: int = 1) -> Deployment:
    tmp = Path(tempfile.mkdtemp(prefix="ruvector-http-load-cluster-"))
    dep = Deployment(f"router({shards} shards, R={replication})", "", tmp=tmp)
    try:
        for i in range(shards):
            dep.procs.append(start_node(binary, tmp, f"shard{i}"))
        port = free_port()
        shard_urls = ",".join(p.url for p in dep.procs)
        router = start_process(binary, "router", ["router", "--addr", f"127.0.0.1:{port}", "--shards", shard_urls,
                                                         "--replication-factor", str(replication)], port, tmp / "router.log")
        dep.procs.append(router)
        wait_listening(router)
        wait_ready(router.url, 60, [router.popen])
        dep.url = router.url
        return dep
    except BaseException:
        dep.stop()
        raise


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (all threads), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat)."""
    fields = open("/proc/stat").readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


class Perf:
    """``perf record -e cpu-clock -g`` on the server processes, if asked for."""

    def __init__(self, out: str | None, pids: list[int]):
        self.p = None
        if out and pids and shutil.which("perf"):
            self.p = subprocess.Popen(
                ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", out, "-p", ",".join(map(str, pids))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)

    def stop(self) -> None:
        if self.p is not None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()


# --------------------------------------------------------------------------- phases


def create_collection(url: str, name: str, dim: int, args) -> None:
    c = Client(url)
    status, body = c.json(
        "POST",
        "/collections",
        {"name": name, "dimension": dim, "metric": "cosine", "m": args.m, "ef_construction": args.ef_construction, "ef_search": 64},
    )
    c.close()
    if status not in (200, 201):
        raise RuntimeError(f"create collection: {status} {body}")


def collection_size(url: str, name: str) -> int | None:
    c = Client(url)
    status, body = c.json("GET", f"/collections/{name}")
    c.close()
    return body.get("size") if status == 200 and isinstance(body, dict) else None


def upload(url: str, name: str, bodies: list[bytes], expected: int, conns: int, pids: list[int]) -> dict:
    path = f"/collections/{name}/vectors"
    clients = [Client(url, timeout=600) for _ in range(conns)]
    lock = threading.Lock()
    next_batch = [0]
    latencies: list[float] = []
    errors: list[str] = []
    last_201 = [0.0]

    def worker(c: Client) -> None:
        while True:
            with lock:
                i = next_batch[0]
                next_batch[0] += 1
            if i >= len(bodies):
                return
            t0 = time.perf_counter()
            try:
                status, data = c.request("POST", path, bodies[i])
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"batch {i}: {e!r}")
                continue
            t1 = time.perf_counter()
            with lock:
                latencies.append(t1 - t0)
                if status == 201:
                    last_201[0] = max(last_201[0], t1)
                else:
                    errors.append(f"batch {i}: {status} {data[:200]!r}")

    cpu0, ccpu0, busy0 = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requests_done = last_201[0] - start
    size = None
    while time.perf_counter() - start < 600:
        size = collection_size(url, name)
        if size == expected:
            break
        time.sleep(0.05)
    searchable = time.perf_counter() - start
    cpu1, ccpu1, busy1 = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    for c in clients:
        c.close()
    lat = np.array(latencies) * 1e3 if latencies else np.array([np.nan])
    return {
        "phase": "upload",
        "vectors": expected,
        "batch": len(bodies) and round(expected / len(bodies)),
        "conns": conns,
        "upload_seconds": round(searchable, 3),
        "last_201_seconds": round(requests_done, 3),
        "vectors_per_second": round(expected / searchable, 1),
        "batch_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "batch_max_ms": round(float(lat.max()), 1),
        "final_size": size,
        "errors": len(errors),
        "error_samples": errors[:3],
        "server_cpu_seconds": round(cpu1 - cpu0, 2) if pids else None,
        "server_rss_mib": rss_mib(pids) if pids else None,
        "other_cores": round(((busy1 - busy0) - (cpu1 - cpu0) - (ccpu1 - ccpu0)) / searchable, 2) if pids else None,
    }


def search_cell(url: str, name: str, bodies: list[bytes], gt: np.ndarray, ef: int, conns: int, args, pids: list[int]) -> dict:
    path = f"/collections/{name}/search"
    nq = len(bodies)
    shares = [list(range(t, nq, conns)) for t in range(conns)]
    clients = [Client(url) for _ in range(conns)]
    found: list[dict[int, list[int]]] = [{} for _ in range(conns)]
    lat: list[list[float]] = [[] for _ in range(conns)]
    errs = [0] * conns  # non-200 answers and failed requests
    exc = [0] * conns  # failed requests (no answer)
    err_samples: list[str] = []
    barrier = threading.Barrier(conns + 1)
    stop_at = [0.0]

    def one(t: int, qi: int, record: bool) -> None:
        c = clients[t]
        t0 = time.perf_counter()
        try:
            status, data = c.request("POST", path, bodies[qi])
        except (OSError, http.client.HTTPException) as e:
            if record:
                errs[t] += 1
                exc[t] += 1
                if len(err_samples) < 3:
                    err_samples.append(repr(e))
            return
        t1 = time.perf_counter()
        if not record:
            return
        lat[t].append(t1 - t0)
        if status != 200:
            errs[t] += 1
            if len(err_samples) < 3:
                err_samples.append(f"{status} {data[:200]!r}")
            return
        if qi not in found[t]:
            found[t][qi] = [h["id"] for h in json.loads(data)]

    def worker(t: int) -> None:
        share = shares[t]
        for j in range(min(args.warmup, len(share) * 10)):
            one(t, share[j % len(share)], False)
        barrier.wait()  # everyone warmed up
        barrier.wait()  # clock started
        j = 0
        # At least one full pass over this thread's share, then until the time is up.
        while j < len(share) or time.perf_counter() < stop_at[0]:
            one(t, share[j % len(share)], True)
            j += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(conns)]
    for t in threads:
        t.start()
    barrier.wait()
    cpu0, ccpu0, busy0 = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    start = time.perf_counter()
    stop_at[0] = start + args.duration
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu1, ccpu1, busy1 = cpu_seconds(pids), time.process_time(), machine_busy_seconds()
    for c in clients:
        c.close()

    all_lat = np.array([x for l in lat for x in l]) * 1e3
    n = len(all_lat)  # requests answered (non-200 answers included, counted in errors)
    results: dict[int, list[int]] = {}
    for f in found:
        results.update(f)
    recall = np.mean([len(set(results[q][:K]) & set(gt[q, :K].tolist())) / K for q in results]) if results else float("nan")
    pct = (lambda p: round(float(np.percentile(all_lat, p)), 3)) if n else (lambda p: None)
    total = n + sum(exc)  # plus requests that failed without an answer
    return {
        "phase": "search",
        "ef": ef,
        "conns": conns,
        "queries": total,
        "seconds": round(elapsed, 3),
        "qps": round(total / elapsed, 1),
        "recall_at_10": round(float(recall), 4),
        "recall_queries": len(results),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "mean_ms": round(float(all_lat.mean()), 3) if n else None,
        "errors": sum(errs),
        "error_samples": err_samples,
        "server_cpu_us_per_query": round((cpu1 - cpu0) / total * 1e6, 1) if pids and total else None,
        "client_cpu_us_per_query": round((ccpu1 - ccpu0) / total * 1e6, 1) if total else None,
        # Cores used by everything else on the machine meanwhile (other users' jobs).
        "other_cores": round(((busy1 - busy0) - (cpu1 - cpu0) - (ccpu1 - ccpu0)) / elapsed, 2) if pids else None,
    }


WRK_LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk_cell(url: str, name: str, body: bytes, ef: int, conns: int, seconds: float, tmp: Path, pids: list[int]) -> dict:
    script = tmp / f"wrk-search-ef{ef}.lua"
    lua_body = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{lua_body}'\n"
    )
    cmd = ["wrk", f"-t{conns}", f"-c{conns}", f"-d{seconds:g}s", "--latency", "-s", str(script), f"{url}/collections/{name}/search"]
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu1 = cpu_seconds(pids)
    text = out.stdout + out.stderr
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {p: round(float(v) * scale[u], 3) for p, v, u in WRK_LATENCY.findall(text)}
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    reqs = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    sock = re.search(r"Socket errors:.*", text)
    total = int(reqs.group(1)) if reqs else 0
    return {
        "phase": "wrk",
        "ef": ef,
        "conns": conns,
        "queries": total,
        "seconds": seconds,
        "qps": float(rps.group(1)) if rps else None,
        "p50_ms": lat.get("50"),
        "p90_ms": lat.get("90"),
        "p99_ms": lat.get("99"),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (1 if sock else 0),
        "server_cpu_us_per_query": round((cpu1 - cpu0) / total * 1e6, 1) if pids and total else None,
        "command": " ".join(cmd),
        "raw": text,
    }


# --------------------------------------------------------------------------- driver


def run_target(dep: Deployment, args, data: dict, log) -> list[dict]:
    rows: list[dict] = []
    pids = dep.pids()
    name = args.collection
    n = len(data["base"])

    if not args.skip_upload:
        create_collection(dep.url, name, data["base"].shape[1], args)
        perf = Perf(f"{args.perf}-{slug(dep.label)}-upload.data" if args.perf else None, pids)
        row = upload(dep.url, name, data["upload_bodies"], n, args.upload_conns, pids)
        perf.stop()
        rows.append(row)
        log(f"[{dep.label}] upload: {row['upload_seconds']} s, errors {row['errors']}, size {row['final_size']}")
        if row["final_size"] != n:
            raise RuntimeError(f"collection size {row['final_size']} != {n}: {row['error_samples']}")
    else:
        size = collection_size(dep.url, name)
        if size != n:
            raise RuntimeError(f"--skip-upload: collection {name!r} has size {size}, expected {n}")

    perf = Perf(f"{args.perf}-{slug(dep.label)}-search.data" if args.perf else None, pids)
    for ef in args.ef:
        bodies = search_bodies(data["queries"], K, ef)
        for conns in args.conns:
            row = search_cell(dep.url, name, bodies, data["gt"], ef, conns, args, pids)
            rows.append(row)
            log(f"[{dep.label}] ef={ef} conns={conns}: {row['qps']} qps, recall {row['recall_at_10']}, "
                f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, errors {row['errors']}")
    if args.wrk:
        body = search_bodies(data["queries"][:1], K, args.wrk_ef)[0]
        with tempfile.TemporaryDirectory() as tmp:
            for conns in args.conns:
                row = wrk_cell(dep.url, name, body, args.wrk_ef, conns, args.wrk_seconds, Path(tmp), pids)
                rows.append(row)
                log(f"[{dep.label}] wrk ef={args.wrk_ef} c={conns}: {row['qps']} qps, p50 {row['p50_ms']} ms, "
                    f"p99 {row['p99_ms']} ms, errors {row['errors']}")
    perf.stop()
    for r in rows:
        r["target"] = dep.label
        r["processes"] = len(dep.procs) or None
    return rows


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")


def fmt_table(rows: list[dict]) -> str:
    out = []
    ups = [r for r in rows if r["phase"] == "upload"]
    if ups:
        out.append(f"{'target':<18} {'vectors':>8} {'batch':>6} {'conns':>5} {'upload_s':>9} {'last201_s':>9} "
                   f"{'vec/s':>8} {'batch_p50':>9} {'srv_cpu_s':>9} {'rss_MiB':>8} {'errors':>6} {'other_cores':>11}")
        for r in ups:
            out.append(f"{r['target']:<18} {r['vectors']:>8} {r['batch']:>6} {r['conns']:>5} {r['upload_seconds']:>9.2f} "
                       f"{r['last_201_seconds']:>9.2f} {r['vectors_per_second']:>8.0f} {r['batch_p50_ms']:>9.1f} "
                       f"{r['server_cpu_seconds'] if r['server_cpu_seconds'] is not None else '-':>9} "
                       f"{r['server_rss_mib'] if r['server_rss_mib'] is not None else '-':>8} {r['errors']:>6} {r.get('other_cores', '-')!s:>11}")
        out.append("")
    srch = [r for r in rows if r["phase"] in ("search", "wrk")]
    if srch:
        out.append(f"{'target':<18} {'client':<6} {'ef':>4} {'conns':>5} {'queries':>8} {'qps':>8} {'recall@10':>9} "
                   f"{'p50_ms':>7} {'p90_ms':>7} {'p99_ms':>7} {'errors':>6} {'srv_us/q':>8} {'cli_us/q':>8} {'other_cores':>11}")
        for r in srch:
            client = "python" if r["phase"] == "search" else "wrk"
            rec = f"{r['recall_at_10']:.4f}" if r.get("recall_at_10") is not None else "-"
            f = lambda v, w, p=3: f"{v:>{w}.{p}f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"
            out.append(f"{r['target']:<18} {client:<6} {r['ef']:>4} {r['conns']:>5} {r['queries']:>8} {f(r['qps'], 8, 0)} {rec:>9} "
                       f"{f(r['p50_ms'], 7)} {f(r['p90_ms'], 7)} {f(r['p99_ms'], 7)} {r['errors']:>6} "
                       f"{f(r.get('server_cpu_us_per_query'), 8, 0)} {f(r.get('client_cpu_us_per_query'), 8, 0)} {f(r.get('other_cores'), 11, 2)}")
    return "\n".join(out)


def host_info(binary: Path | None) -> dict:
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "crates"], capture_output=True, text=True).stdout.strip()
    info = {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "numpy": np.__version__,
            "git_commit": commit, "crates_dirty": bool(dirty)}
    if binary is not None:
        st = binary.stat()
        info["binary"] = str(binary)
        info["binary_mtime"] = _dt.datetime.fromtimestamp(st.st_mtime).isoformat(timespec="seconds")
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]
    p.add_argument("--binary", type=Path, default=None,
                   help="ruvector binary (default: $CARGO_TARGET_DIR or /work/target-bench, else ./target, release/ruvector)")
    p.add_argument("--url", help="use this running node or router instead of starting one")
    p.add_argument("--cluster", type=int, default=0, metavar="N",
                   help="start N shards + a router AND a single node (one after the other) and measure both")
    p.add_argument("--replication-factors", type=ints, default=[1],
                   help="(--cluster) run the cluster once per replication factor, e.g. 1,2")
    p.add_argument("--no-single", action="store_true", help="(--cluster) skip the single-node run")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--limit", type=int, help="only the first N base vectors (ground truth recomputed)")
    p.add_argument("--collection", default="bench")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--upload-conns", type=int, default=1, choices=(1, 2))
    p.add_argument("--skip-upload", action="store_true", help="(--url) the collection is already loaded")
    p.add_argument("--ef", type=ints, default=[32, 48, 64, 96, 128, 200])
    p.add_argument("--conns", type=ints, default=[1, 2], help="client threads, one connection each")
    p.add_argument("--warmup", type=int, default=200, help="warm-up requests per connection per cell")
    p.add_argument("--duration", type=float, default=3.0,
                   help="seconds per cell (at least one pass over the 1000 queries is always made)")
    p.add_argument("--wrk", action="store_true", help="also run wrk at --wrk-ef with each --conns")
    p.add_argument("--wrk-ef", type=int, default=64)
    p.add_argument("--wrk-seconds", type=float, default=10)
    p.add_argument("--perf", metavar="PREFIX", help="perf record the server(s): PREFIX-<target>-{upload,search}.data")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout instead of a table")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--label", default=None, help="name of the saved result files")
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--note", default="", help="free text saved with the results (e.g. which commit the binary was built from)")
    a = p.parse_args(argv)
    if a.url and a.cluster:
        p.error("--url and --cluster are exclusive")
    if a.skip_upload and not a.url:
        p.error("--skip-upload needs --url")
    return a


def find_binary(explicit: Path | None) -> Path:
    if explicit:
        return explicit
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "ruvector")
    candidates += [Path("/work/target-bench/release/ruvector"), REPO / "target" / "release" / "ruvector"]
    for c in candidates:
        if c.exists():
            return c
    raise SystemExit(f"no ruvector binary in {candidates}; build with cargo build --release -p ruvector-cli")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    binary = None if args.url else find_binary(args.binary)

    t0 = time.perf_counter()
    base = read_vecs(args.data / "base.fvecs", np.float32, args.limit)
    queries = read_vecs(args.data / "query.fvecs", np.float32)
    if args.limit:
        gt = brute_force_top(base, queries, K)
    else:
        gt = read_vecs(args.data / "groundtruth.ivecs", np.int32)[:, :K]
    data = {"base": base, "queries": queries, "gt": gt}
    if not args.skip_upload:
        data["upload_bodies"] = upload_bodies(base, args.batch)
    log(f"data: {len(base)} x {base.shape[1]} base, {len(queries)} queries, bodies ready in {time.perf_counter() - t0:.1f} s")

    started = _dt.datetime.now()
    rows: list[dict] = []
    if args.url:
        rows += run_target(Deployment("url", args.url.rstrip("/")), args, data, log)
    else:
        # Single node first, then (with --cluster) the cluster once per
        # replication factor; never two deployments running at once.
        if not args.no_single:
            dep = start_single(binary)
            try:
                rows += run_target(dep, args, data, log)
            finally:
                dep.stop()
        for replication in (args.replication_factors if args.cluster else []):
            dep = start_cluster(binary, args.cluster, replication)
            try:
                rows += run_target(dep, args, data, log)
            finally:
                dep.stop()

    table = fmt_table(rows)
    if args.json:
        for r in rows:
            print(json.dumps({k: v for k, v in r.items() if k != "raw"}))
    else:
        print(table)
    if not args.no_save:
        args.results.mkdir(parents=True, exist_ok=True)
        label = args.label or ("cluster%d" % args.cluster if args.cluster else ("url" if args.url else "node"))
        stem = args.results / f"{started:%Y%m%d-%H%M%S}-{slug(label)}"
        record = {
            "command": " ".join(["python3", *sys.argv]) if argv is sys.argv[1:] else " ".join(["python3", sys.argv[0], *argv]),
            "started": started.isoformat(timespec="seconds"),
            "host": host_info(binary),
            "notes": (f"{os.cpu_count()} CPUs shared by client and server process(es)"
                      + (f"; cluster: {args.cluster} shards + 1 router + this client on the same machine" if args.cluster else "")),
            "note": args.note,
            "rows": rows,
        }
        stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
        stem.with_suffix(".txt").write_text(f"$ {record['command']}\n# {record['started']} {record['notes']}\n# {args.note}\n\n{table}\n")
        log(f"saved {stem}.json and .txt")
    bad = sum(r.get("errors") or 0 for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
