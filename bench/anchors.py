#!/usr/bin/env python3
"""Reference ("anchor") ANN benchmarks for ruvector: hnswlib, faiss-cpu and usearch.

Runs the same HNSW experiment as the Rust benchmark on the same data so the numbers can
be compared side by side in one run:

* data: TEXMEX files ``base.fvecs``, ``query.fvecs`` and ``groundtruth.ivecs`` from
  ``--data`` (default: the shared ``pypi-minilm-100k`` dataset, L2-normalised vectors, so
  cosine == inner product and every library is configured for inner product);
* build: an HNSW index with ``--m`` / ``--ef-construction`` using ``--threads`` threads,
  timed wall-clock;
* search: for every ``ef`` in ``--ef``, single-threaded top-10 search in two modes,
  ``batch`` (all queries in one call) and ``single`` (one call per query from a Python
  loop), each preceded by a short warm-up; recall@10 is measured against the exact top-10.

Every library runs in its own subprocess (the script re-invokes itself with the hidden
``--worker LIB`` flag) so that the reported peak RSS belongs to that library alone and,
like the Rust benchmark, includes loading the data. Workers print one JSON object per
(library, mode, ef); the parent either forwards them (``--json``) or prints a table.

With ``--limit N`` only the first N base vectors are indexed and the ground truth is
recomputed by brute force (float64 inner products, ties broken by the lower id), then
handed to the workers through a temporary ``.npy`` file.

Peak RSS caveat: on Linux a child's ``ru_maxrss`` starts at the *parent's* high-water RSS
(it is carried over at fork/vfork + exec). The parent therefore stays small (it only
imports numpy) and the brute-force ground truth, which needs a few hundred MiB, runs in
a separate subprocess rather than in the parent.

Usage::

    pip install hnswlib faiss-cpu usearch numpy
    python3 bench/anchors.py --limit 10000
    python3 bench/anchors.py --json > anchors.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

K = 10
WARMUP_QUERIES = 50
ALL_LIBS = ("hnswlib", "faiss", "usearch")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pypi-minilm-100k"

# A search function maps a (n, d) float32 query block to (n, K) int64 ids.
SearchFn = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- data


def read_vecs(path: Path, dtype: type, limit: int | None = None, chunk_rows: int = 8192) -> np.ndarray:
    """Read a TEXMEX ``.fvecs`` / ``.ivecs`` file into a contiguous (n, d) array.

    Reads in chunks into a preallocated array so that peak memory is the data itself plus
    one small chunk (rather than two full copies, as with fromfile + ascontiguousarray).
    """
    itemsize = np.dtype(dtype).itemsize
    with open(path, "rb") as f:
        dim = int(np.fromfile(f, dtype=np.int32, count=1)[0])
        row_bytes = 4 + dim * itemsize
        total = os.path.getsize(path) // row_bytes
        n = total if limit is None else min(limit, total)
        out = np.empty((n, dim), dtype=dtype)
        f.seek(0)
        for start in range(0, n, chunk_rows):
            rows = min(chunk_rows, n - start)
            raw = np.fromfile(f, dtype=np.int32, count=rows * (dim + 1)).reshape(rows, dim + 1)
            if raw.shape[0] != rows or not np.all(raw[:, 0] == dim):
                raise ValueError(f"{path}: malformed record near row {start}")
            out[start : start + rows] = raw[:, 1:].view(dtype)
    return out


def count_vecs(path: Path) -> int:
    """Number of records in a TEXMEX file (all records have the same dimension)."""
    with open(path, "rb") as f:
        dim = int(np.fromfile(f, dtype=np.int32, count=1)[0])
    return os.path.getsize(path) // (4 + 4 * dim)


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int = K, chunk_rows: int = 20000) -> np.ndarray:
    """Exact top-k base ids per query by inner product (float64, ties to the lower id)."""
    q64 = queries.astype(np.float64)
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    best_scores = np.empty((len(queries), 0), dtype=np.float64)
    for start in range(0, len(base), chunk_rows):
        scores = q64 @ base[start : start + chunk_rows].astype(np.float64).T
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        ids = np.concatenate([best_ids, top + start], axis=1)
        sc = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        order = np.lexsort((ids, -sc), axis=1)[:, :k]
        best_ids = np.take_along_axis(ids, order, axis=1)
        best_scores = np.take_along_axis(sc, order, axis=1)
    return best_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean over queries of |found[:k] ∩ truth[:k]| / k."""
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth))
    return hits / (k * len(truth))


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------ libraries
#
# Each builder takes (base, m, ef_construction, threads), builds the index with the given
# number of threads and returns (set_ef, search): set_ef(ef) configures the search
# breadth, search(queries) runs a single-threaded top-K search.


def build_hnswlib(base: np.ndarray, m: int, ef_construction: int, threads: int):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=ef_construction, random_seed=100)
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    index.set_num_threads(1)

    def set_ef(ef: int) -> None:
        index.set_ef(max(ef, K))  # hnswlib requires ef >= k

    def search(queries: np.ndarray) -> np.ndarray:
        labels, _ = index.knn_query(queries, k=K, num_threads=1)
        return labels.astype(np.int64)

    return set_ef, search


def build_faiss(base: np.ndarray, m: int, ef_construction: int, threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(base.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction  # level assignment uses faiss' fixed default seed
    index.add(base)
    faiss.omp_set_num_threads(1)

    def set_ef(ef: int) -> None:
        index.hnsw.efSearch = ef

    def search(queries: np.ndarray) -> np.ndarray:
        _, ids = index.search(queries, K)
        return ids

    return set_ef, search


def build_usearch(base: np.ndarray, m: int, ef_construction: int, threads: int):
    from usearch.index import Index

    # dtype must be pinned: with dtype=None usearch picks bf16/f16 storage on CPUs that
    # support it, which would not be comparable with the float32 indexes of the others.
    index = Index(ndim=base.shape[1], metric="ip", dtype="f32", connectivity=m, expansion_add=ef_construction)
    index.add(np.arange(len(base), dtype=np.uint64), base, threads=threads)

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    def search(queries: np.ndarray) -> np.ndarray:
        matches = index.search(queries, K, threads=1)
        keys = np.full((len(queries), K), -1, dtype=np.int64)
        found = np.asarray(matches.keys, dtype=np.int64).reshape(len(queries), -1)
        keys[:, : found.shape[1]] = found[:, :K]
        return keys

    return set_ef, search


BUILDERS = {"hnswlib": build_hnswlib, "faiss": build_faiss, "usearch": build_usearch}


def library_version(lib: str) -> str:
    from importlib.metadata import version

    return version({"faiss": "faiss-cpu"}.get(lib, lib))


# --------------------------------------------------------------------------- worker


def timed_search(search: SearchFn, queries: np.ndarray, mode: str) -> tuple[np.ndarray, float]:
    """Run all queries in the given mode; return (ids, wall seconds)."""
    if mode == "batch":
        start = time.perf_counter()
        ids = search(queries)
        return ids, time.perf_counter() - start
    ids = np.empty((len(queries), K), dtype=np.int64)
    start = time.perf_counter()
    for i in range(len(queries)):
        ids[i] = search(queries[i : i + 1])[0]
    return ids, time.perf_counter() - start


def run_worker(args: argparse.Namespace) -> None:
    """Benchmark one library in this process and print one JSON line per (mode, ef)."""
    data = Path(args.data)
    base = read_vecs(data / "base.fvecs", np.float32, args.limit)
    queries = read_vecs(data / "query.fvecs", np.float32)
    if args.gt_file:
        truth = np.load(args.gt_file)
    elif len(base) < count_vecs(data / "base.fvecs"):
        sys.exit("--worker with a partial --limit needs --gt-file (the parent computes it)")
    else:
        truth = read_vecs(data / "groundtruth.ivecs", np.int32)[:, :K]

    start = time.perf_counter()
    set_ef, search = BUILDERS[args.worker](base, args.m, args.ef_construction, args.threads)
    build_seconds = time.perf_counter() - start
    print(
        f"[{args.worker} {library_version(args.worker)}] n={len(base)} d={base.shape[1]} "
        f"built in {build_seconds:.1f}s with {args.threads} thread(s)",
        file=sys.stderr,
        flush=True,
    )

    for ef in args.ef:
        set_ef(ef)
        for mode in ("batch", "single"):
            timed_search(search, queries[:WARMUP_QUERIES], mode)  # warm-up
            ids, seconds = timed_search(search, queries, mode)
            row = {
                "library": args.worker,
                "mode": mode,
                "ef": ef,
                "recall_at_10": round(recall_at_k(ids, truth), 4),
                "qps": round(len(queries) / seconds, 1),
                "build_seconds": round(build_seconds, 3),
                "peak_rss_mib": round(peak_rss_mib(), 1),
            }
            print(json.dumps(row), flush=True)


# --------------------------------------------------------------------------- parent


def run_library(lib: str, args: argparse.Namespace, gt_file: str | None) -> list[dict]:
    """Re-invoke this script as a worker for one library; return its result rows."""
    cmd = [
        sys.executable, os.path.abspath(__file__), "--worker", lib,
        "--data", str(args.data),
        "--m", str(args.m),
        "--ef-construction", str(args.ef_construction),
        "--threads", str(args.threads),
        "--ef", ",".join(map(str, args.ef)),
    ]  # fmt: skip
    if args.limit is not None:
        cmd += ["--limit", str(args.limit)]
    if gt_file:
        cmd += ["--gt-file", gt_file]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"[{lib}] worker failed with exit code {proc.returncode}", file=sys.stderr)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def print_table(rows: list[dict]) -> None:
    header = f"{'library':<8} {'mode':<6} {'ef':>4} {'recall@10':>9} {'QPS':>9} {'build s':>8} {'peak RSS MiB':>12}"
    print(header)
    print("-" * len(header))
    previous = None
    for r in rows:
        if previous is not None and r["library"] != previous:
            print()
        previous = r["library"]
        print(
            f"{r['library']:<8} {r['mode']:<6} {r['ef']:>4} {r['recall_at_10']:>9.4f} {r['qps']:>9.1f} "
            f"{r['build_seconds']:>8.2f} {r['peak_rss_mib']:>12.1f}"
        )


def run_parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ruvector-anchors-") as tmp:
        gt_file = None
        if args.limit is not None and args.limit < count_vecs(args.data / "base.fvecs"):
            gt_file = os.path.join(tmp, "groundtruth.npy")
            print(f"computing exact top-{K} for the first {args.limit} base vectors ...", file=sys.stderr, flush=True)
            subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--data", str(args.data),
                 "--limit", str(args.limit), "--write-groundtruth", gt_file],
                check=True,
            )  # fmt: skip

        rows = []
        for lib in args.libs:
            lib_rows = run_library(lib, args, gt_file)
            if args.json:
                for row in lib_rows:
                    print(json.dumps(row), flush=True)
            rows += lib_rows
    if not args.json:
        # Group the table by library then mode so batch and single read as two sweeps.
        rows.sort(key=lambda r: (args.libs.index(r["library"]), r["mode"] != "batch", r["ef"]))
        print_table(rows)


def write_groundtruth(args: argparse.Namespace) -> None:
    """Brute-force the top-K of every query over the first --limit base vectors."""
    base = read_vecs(args.data / "base.fvecs", np.float32, args.limit)
    queries = read_vecs(args.data / "query.fvecs", np.float32)
    np.save(args.write_groundtruth, exact_topk(base, queries))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def int_list(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    def lib_list(text: str) -> list[str]:
        libs = [x.strip() for x in text.split(",") if x.strip()]
        unknown = sorted(set(libs) - set(ALL_LIBS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown libraries {unknown}; choose from {ALL_LIBS}")
        return libs

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset directory (default: %(default)s)")
    p.add_argument("--libs", type=lib_list, default=list(ALL_LIBS), help="comma-separated subset of hnswlib,faiss,usearch")
    p.add_argument("--m", type=int, default=16, help="HNSW M (links per node on upper layers; 2*M on layer 0)")
    p.add_argument("--ef-construction", type=int, default=200, help="HNSW efConstruction")
    p.add_argument("--threads", type=int, default=2, help="threads used to build the index (search is single-threaded)")
    p.add_argument("--ef", type=int_list, default=[16, 32, 48, 64, 96, 128, 200], help="comma-separated ef values for search")
    p.add_argument("--limit", type=int, default=None, help="index only the first N base vectors (ground truth is recomputed)")
    p.add_argument("--json", action="store_true", help="print one JSON object per (library, mode, ef) instead of a table")
    p.add_argument("--worker", choices=ALL_LIBS, help=argparse.SUPPRESS)
    p.add_argument("--gt-file", help=argparse.SUPPRESS)
    p.add_argument("--write-groundtruth", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < K:
        p.error(f"--limit must be at least {K}")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
    elif args.write_groundtruth:
        write_groundtruth(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
