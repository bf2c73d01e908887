#!/usr/bin/env python3
"""Filtered search benchmark over HTTP on the shared pypi-minilm-100k set (issue 12).

Payloads are derived from the real package summaries in ``texts.tsv``:

- ``words`` (keyword, an array): the distinct lower-cased words of the summary. Filters on
  one word give the single-field cases: ``for`` (~45 %), ``of`` (~10 %), ``search`` (~1 %),
  ``linter`` (~0.1 %) — the words whose share of summaries is nearest each target;
- ``len`` (integer): the summary's length in characters, for ranges;
- ``cluster`` (keyword): the base vector's k-means cluster (10 clusters, seeded), so a
  filter on the query's own cluster is *correlated* with its neighbourhood and one on the
  cluster farthest from the query is *anti-correlated* (each ~10 %).

Two AND cases combine ``words`` and a ``len`` range, with the range chosen so the AND
matches ~4 % and ~1 % of the base.

For every case: exact filtered ground truth by brute force (numpy, inner product = cosine
on these normalised vectors), then one client thread sends the queries one by one over a
keep-alive connection (k 10, ef 64) and measures QPS and recall@10; "short" counts answers
with fewer than min(k, S) hits, "bad" hits that fail the filter. Unfiltered QPS is measured
in the same run, before and after the filtered cases.

Ingest: the base is uploaded with payloads twice, into a collection without payload
indexes and one declaring them at creation, and the time to "fully searchable" compared;
then the indexes are declared on the first collection (built over stored data) and that
time reported. Unfiltered recall and QPS are measured on both collections.

Usage::

    CARGO_TARGET_DIR=/work/target-bench cargo build --release -p ruvector-cli
    flock /tmp/bench.lock python3 bench/filtered.py                 # full run (~6 minutes)
    python3 bench/filtered.py --queries 100 --limit 20000           # quick check
    python3 bench/filtered.py --exact-filter-max 0                  # force the graph walk

Results: a table on stdout and ``bench/results/<timestamp>-filtered.{json,txt}``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import (  # noqa: E402
    DEFAULT_DATA,
    DEFAULT_RESULTS,
    Client,
    Deployment,
    collection_size,
    find_binary,
    format_rows,
    free_port,
    host_info,
    read_vecs,
    start_process,
    wait_listening,
    wait_ready,
)

import tempfile  # noqa: E402

K = 10
EF = 64
WORDS = {"50%": "for", "10%": "of", "1%": "search", "0.1%": "linter"}


def load_texts(path: Path, n: int) -> list[str]:
    texts = [""] * n
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            kind, row, text = line.rstrip("\n").split("\t", 2)
            if kind == "base" and int(row) < n:
                texts[int(row)] = text
    return texts


def kmeans(x: np.ndarray, k: int, iters: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids (normalised), seeded."""
    rng = np.random.default_rng(seed)
    c = x[rng.choice(len(x), k, replace=False)].copy()
    for _ in range(iters):
        labels = np.argmax(x @ c.T, axis=1)
        for j in range(k):
            members = x[labels == j]
            if len(members):
                m = members.mean(axis=0)
                c[j] = m / np.linalg.norm(m)
    return c


def payloads(texts: list[str], labels: np.ndarray) -> list[dict]:
    return [
        {"words": sorted(set(re.findall(r"[a-z0-9]+", t.lower()))), "len": len(t), "cluster": f"c{labels[i]}"}
        for i, t in enumerate(texts)
    ]


def upload_bodies_with_payloads(base: np.ndarray, docs: list[dict], batch: int) -> list[bytes]:
    rows = format_rows(base)
    bodies = []
    for start in range(0, len(rows), batch):
        items = [
            b'{"id":%d,"vector":[%s],"payload":%s}' % (i, rows[i], json.dumps(docs[i], separators=(",", ":")).encode())
            for i in range(start, min(start + batch, len(rows)))
        ]
        bodies.append(b'{"vectors":[' + b",".join(items) + b"]}")
    return bodies


def upload(url: str, name: str, bodies: list[bytes], expected: int) -> float:
    """Seconds from the first batch to ``size == expected`` (one connection, batches in order)."""
    c = Client(url, timeout=600)
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        status, data = c.request("POST", f"/collections/{name}/vectors", body)
        if status != 201:
            raise RuntimeError(f"batch {i}: {status} {data[:300]!r}")
    while collection_size(url, name) != expected:
        time.sleep(0.05)
    c.close()
    return time.perf_counter() - start


def truth(base: np.ndarray, q: np.ndarray, mask: np.ndarray, k: int) -> tuple[list[int], int]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return [], 0
    scores = base[idx] @ q
    order = np.lexsort((idx, -scores))[:k]
    return [int(i) for i in idx[order]], len(idx)


def run_case(url: str, name: str, queries: np.ndarray, filters: list[dict | None], gts: list[list[int]], sizes: list[int]) -> dict:
    rows = format_rows(queries)
    bodies = []
    for row, f in zip(rows, filters):
        extra = b"" if f is None else b',"filter":' + json.dumps(f, separators=(",", ":")).encode()
        bodies.append(b'{"vector":[%s],"k":%d,"ef":%d%s}' % (row, K, EF, extra))
    c = Client(url)
    path = f"/collections/{name}/search"
    for body in bodies[:20]:  # warm-up
        c.request("POST", path, body)
    hits = want = short = bad = 0
    lat = []
    start = time.perf_counter()
    for body, gt, s, f in zip(bodies, gts, sizes, filters):
        t0 = time.perf_counter()
        status, data = c.request("POST", path, body)
        lat.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"search: {status} {data[:300]!r}")
        got = [h["id"] for h in json.loads(data)]
        hits += len(set(got) & set(gt))
        want += len(gt)
        short += len(got) < min(K, s)
        bad += sum(1 for i in got if i not in ALLOWED[id(f)]) if f is not None else 0
    seconds = time.perf_counter() - start
    c.close()
    lat_ms = np.array(lat) * 1e3
    return {
        "qps": round(len(bodies) / seconds, 1),
        "recall": round(hits / max(want, 1), 4),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 2),
        "short": short,
        "bad": bad,
    }


ALLOWED: dict[int, set] = {}


def plan_counts(url: str) -> dict:
    c = Client(url)
    status, data = c.request("GET", "/metrics")
    c.close()
    out = {}
    for line in data.decode().splitlines():
        m = re.match(r'ruvector_filtered_search_plans_total\{plan="(\w+)"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def faiss_anchor(base, queries, cases, gts_all, unfiltered_gt) -> dict:
    """The same cases on faiss HNSW with a bitmap selector (in-process, one thread)."""
    import faiss

    faiss.omp_set_num_threads(2)
    index = faiss.IndexHNSWFlat(base.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 200
    t0 = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - t0
    print(f"faiss built in {build:.1f} s", flush=True)
    faiss.omp_set_num_threads(1)

    def run(selectors, gts, sizes):
        hits = want = short = 0
        start = time.perf_counter()
        for q, sel, gt, s in zip(queries, selectors, gts, sizes):
            params = faiss.SearchParametersHNSW(efSearch=EF, sel=sel) if sel is not None else faiss.SearchParametersHNSW(efSearch=EF)
            _, ids = index.search(q[None, :], K, params=params)
            got = [int(i) for i in ids[0] if i >= 0]
            hits += len(set(got) & set(gt))
            want += len(gt)
            short += len(got) < min(K, s)
        seconds = time.perf_counter() - start
        return {"qps": round(len(queries) / seconds, 1), "recall": round(hits / max(want, 1), 4), "short": short}

    out = {"version": faiss.__version__, "build_seconds": round(build, 1)}
    out["unfiltered"] = run([None] * len(queries), unfiltered_gt, [len(base)] * len(queries))
    out["cases"] = []
    for (label, _filters, masks), (gts, sizes) in zip(cases, gts_all):
        cache: dict[int, object] = {}
        selectors = []
        keep = []
        for m in masks:
            if id(m) not in cache:
                bits = np.packbits(m.astype(np.uint8), bitorder="little")
                keep.append(bits)
                cache[id(m)] = faiss.IDSelectorBitmap(len(m), faiss.swig_ptr(bits))
            selectors.append(cache[id(m)])
        r = run(selectors, gts, sizes)
        r["case"] = label
        out["cases"].append(r)
        print(f"faiss {label}: {r}", flush=True)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--binary", type=Path)
    p.add_argument("--limit", type=int, default=100_000, help="base vectors used")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--exact-filter-max", type=int, help="passed to the node (default: the node's)")
    p.add_argument("--skip-ingest-comparison", action="store_true", help="upload once, with indexes")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--anchors", action="store_true", help="also faiss HNSW (M 16, efC 200) with an IDSelectorBitmap, in-process, one thread")
    args = p.parse_args(argv)

    binary = find_binary(args.binary)
    base = read_vecs(args.data / "base.fvecs", np.float32, args.limit)
    queries = read_vecs(args.data / "query.fvecs", np.float32, args.queries)
    n = len(base)
    texts = load_texts(args.data / "texts.tsv", n)
    centroids = kmeans(base, 10, 12, seed=7)
    labels = np.argmax(base @ centroids.T, axis=1)
    docs = payloads(texts, labels)
    print(f"{n} base vectors, {len(queries)} queries; payloads derived", flush=True)

    word_sets = collections.defaultdict(set)
    for i, d in enumerate(docs):
        for w in d["words"]:
            if w in WORDS.values() or w in ("python", "data"):
                word_sets[w].add(i)
    lens = np.array([d["len"] for d in docs])

    def has(word: str) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[list(word_sets[word])] = True
        return m

    # AND cases: a word and a length range, the range tuned to the target share.
    def and_case(word: str, target: float) -> tuple[dict, np.ndarray]:
        w = has(word)
        for hi in range(21, 161):
            m = w & (lens < hi)
            if m.mean() >= target:
                f = {"must": [{"key": "words", "eq": word}, {"key": "len", "range": {"lt": hi}}]}
                return f, m
        raise RuntimeError("no length range reaches the target")

    cases: list[tuple[str, list, list]] = []  # (label, filters per query, masks per query)
    nq = len(queries)
    for share, word in WORDS.items():
        f = {"must": [{"key": "words", "eq": word}]}
        cases.append((f"words={word} ({share})", [f] * nq, [has(word)] * nq))
    lo, hi = np.percentile(lens, [40, 60])
    f = {"must": [{"key": "len", "range": {"gte": float(lo), "lt": float(hi)}}]}
    cases.append((f"len in [{lo:.0f},{hi:.0f})", [f] * nq, [(lens >= lo) & (lens < hi)] * nq))
    for word, target in (("python", 0.04), ("data", 0.01)):
        f, m = and_case(word, target)
        cases.append((f"AND words={word}, len<{f['must'][1]['range']['lt']} (~{target:.0%})", [f] * nq, [m] * nq))
    near = np.argmax(queries @ centroids.T, axis=1)
    far = np.argmin(queries @ centroids.T, axis=1)
    cases.append(("cluster = query's (correlated)", [{"must": [{"key": "cluster", "eq": f"c{c}"}]} for c in near], [labels == c for c in near]))
    cases.append(("cluster = farthest (anti-correlated)", [{"must": [{"key": "cluster", "eq": f"c{c}"}]} for c in far], [labels == c for c in far]))

    gts_all = []
    for label, filters, masks in cases:
        gts, sizes = zip(*(truth(base, q, m, K) for q, m in zip(queries, masks)))
        for f, m in zip(filters, masks):
            ALLOWED.setdefault(id(f), set(np.flatnonzero(m).tolist()))
        gts_all.append((list(gts), list(sizes)))
    unfiltered_gt = [truth(base, q, np.ones(n, dtype=bool), K)[0] for q in queries]
    print("ground truth computed", flush=True)

    if args.anchors:
        results_anchor = faiss_anchor(base, queries, cases, gts_all, unfiltered_gt)
    else:
        results_anchor = None

    tmp = Path(tempfile.mkdtemp(prefix="ruvector-filtered-"))
    port = free_port()
    serve = ["serve", "--addr", f"127.0.0.1:{port}", "--data", str(tmp / "data")]
    env_note = {}
    if args.exact_filter_max is not None:
        import os

        os.environ["RUVECTOR_EXACT_FILTER_MAX"] = str(args.exact_filter_max)
        env_note["RUVECTOR_EXACT_FILTER_MAX"] = args.exact_filter_max
    proc = start_process(binary, "node", serve, port, tmp / "node.log")
    dep = Deployment("node", proc.url, [proc], tmp)
    results: dict = {"host": host_info(binary), "n": n, "queries": nq, "k": K, "ef": EF, "env": env_note, "cases": []}
    try:
        wait_listening(proc)
        wait_ready(proc.url, 60, [proc.popen])
        url = proc.url
        bodies = upload_bodies_with_payloads(base, docs, args.batch)
        indexes = {"words": "keyword", "len": "integer", "cluster": "keyword"}
        c = Client(url)

        def create(name: str, with_indexes: bool) -> None:
            body = {"name": name, "dimension": base.shape[1], "metric": "cosine", "m": 16, "ef_construction": 200, "ef_search": EF}
            if with_indexes:
                body["payload_indexes"] = indexes
            status, data = c.json("POST", "/collections", body)
            if status != 201:
                raise RuntimeError(f"create {name}: {status} {data}")

        if not args.skip_ingest_comparison:
            create("plain", False)
            t_plain = upload(url, "plain", bodies, n)
            print(f"ingest without payload indexes: {t_plain:.1f} s", flush=True)
            results["ingest_plain_seconds"] = round(t_plain, 2)
            results["unfiltered_plain"] = run_case(url, "plain", queries, [None] * nq, unfiltered_gt, [n] * nq)
            t0 = time.perf_counter()
            for key, kind in indexes.items():
                status, data = c.json("POST", "/collections/plain/payload_indexes", {"key": key, "type": kind})
                if status != 201:
                    raise RuntimeError(f"declare {key}: {status} {data}")
            results["declare_on_existing_seconds"] = round(time.perf_counter() - t0, 2)
            print(f"declared on stored data in {results['declare_on_existing_seconds']} s", flush=True)
            c.json("DELETE", "/collections/plain")
        create("docs", True)
        t_indexed = upload(url, "docs", bodies, n)
        results["ingest_indexed_seconds"] = round(t_indexed, 2)
        print(f"ingest with payload indexes: {t_indexed:.1f} s", flush=True)
        c.close()

        results["unfiltered_before"] = run_case(url, "docs", queries, [None] * nq, unfiltered_gt, [n] * nq)
        print(f"unfiltered: {results['unfiltered_before']}", flush=True)
        for (label, filters, masks), (gts, sizes) in zip(cases, gts_all):
            before = plan_counts(url)
            r = run_case(url, "docs", queries, filters, gts, sizes)
            after = plan_counts(url)
            r["plans"] = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
            r["case"] = label
            r["selectivity"] = round(float(np.mean([s for s in sizes])) / n, 5)
            results["cases"].append(r)
            print(f"{label}: {r}", flush=True)
        results["unfiltered_after"] = run_case(url, "docs", queries, [None] * nq, unfiltered_gt, [n] * nq)
    finally:
        dep.stop()

    unf = (results["unfiltered_before"]["qps"] + results["unfiltered_after"]["qps"]) / 2
    lines = [
        f"filtered search, {n} x {base.shape[1]} (pypi-minilm), {nq} queries, k {K}, ef {EF}, one client thread over HTTP",
        f"unfiltered QPS {unf:.0f} (before {results['unfiltered_before']['qps']}, after {results['unfiltered_after']['qps']}), recall {results['unfiltered_before']['recall']}",
        "",
        f"| case | selectivity | recall@10 | QPS | ÷ unfiltered | p50 ms | p99 ms | short | bad | plans |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["cases"]:
        plans = ", ".join(f"{k} {v}" for k, v in sorted(r["plans"].items()))
        lines.append(
            f"| {r['case']} | {r['selectivity']:.2%} | {r['recall']:.4f} | {r['qps']:.0f} | {r['qps'] / unf:.2f} | {r['p50_ms']} | {r['p99_ms']} | {r['short']} | {r['bad']} | {plans} |"
        )
    if "ingest_plain_seconds" in results:
        lines += [
            "",
            f"ingest with payloads, one connection, batches of {args.batch}: without indexes {results['ingest_plain_seconds']} s, "
            f"with 3 indexes {results['ingest_indexed_seconds']} s ({results['ingest_indexed_seconds'] / results['ingest_plain_seconds'] - 1:+.1%}); "
            f"declaring the 3 on the stored collection: {results['declare_on_existing_seconds']} s",
            f"unfiltered without indexes: QPS {results['unfiltered_plain']['qps']}, recall {results['unfiltered_plain']['recall']}; "
            f"with: QPS {results['unfiltered_before']['qps']}, recall {results['unfiltered_before']['recall']}",
        ]
    if results_anchor is not None:
        results["faiss"] = results_anchor
        fu = results_anchor["unfiltered"]["qps"]
        lines += [
            "",
            f"faiss {results_anchor['version']} IndexHNSWFlat (M 16, efConstruction 200, inner product), efSearch {EF}, "
            f"IDSelectorBitmap, in-process, one thread: unfiltered QPS {fu:.0f}, recall {results_anchor['unfiltered']['recall']}",
            "",
            "| case | faiss recall@10 | faiss QPS | ÷ faiss unfiltered | short |",
            "|---|---|---|---|---|",
        ]
        for r in results_anchor["cases"]:
            lines.append(f"| {r['case']} | {r['recall']:.4f} | {r['qps']:.0f} | {r['qps'] / fu:.2f} | {r['short']} |")
    table = "\n".join(lines)
    print("\n" + table)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (args.results / f"{stamp}-filtered.json").write_text(json.dumps(results, indent=1))
    (args.results / f"{stamp}-filtered.txt").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
