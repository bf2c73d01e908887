#!/bin/bash
set -x
# Every benchmark in BENCHMARKS.md, back to back. Run it on an idle machine
# (no compiler running): `cargo build --release -p ruvector-cli` first, and
# `pip install hnswlib faiss-cpu numpy` for the anchors. Outputs go to $OUT.
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-/tmp/ruvector-bench}"
D=${DATA:-../shared/data/pypi-minilm-100k}
B="--base $D/base.fvecs --query $D/query.fvecs --groundtruth $D/groundtruth.ivecs --metric cosine --m 16 --ef-construction 200 --threads 2"
${RUVECTOR:-target/release/ruvector} bench $B --ef 16,32,48,64,96,128,200 --index-cache ${OUT:-/tmp/ruvector-bench}/idx.snap > ${OUT:-/tmp/ruvector-bench}/index.txt 2>&1
python3 bench/anchors.py --libs hnswlib,faiss --ef 16,32,48,64,96,128,200 > ${OUT:-/tmp/ruvector-bench}/anchors.txt 2>&1
rm -rf ${OUT:-/tmp/ruvector-bench}/eng; ${RUVECTOR:-target/release/ruvector} bench $B --ef 32,48,64,128,200 --engine-dir ${OUT:-/tmp/ruvector-bench}/eng > ${OUT:-/tmp/ruvector-bench}/engine.txt 2>&1
${RUVECTOR:-target/release/ruvector} bench $B --ef 16,32,48,64,96,128,200 --churn 0.2 > ${OUT:-/tmp/ruvector-bench}/churn.txt 2>&1
${RUVECTOR:-target/release/ruvector} bench $B --ef 32,48,64,128,200 --quantization sq8 > ${OUT:-/tmp/ruvector-bench}/sq8.txt 2>&1
${RUVECTOR:-target/release/ruvector} bench $B --ef 32,64,128,200 --quantization pq48 > ${OUT:-/tmp/ruvector-bench}/pq48.txt 2>&1
python3 bench/http_load.py --binary ${RUVECTOR:-target/release/ruvector} --ef 32,48,64,96,128,200 --conns 1,2 --wrk --label node-quiet > ${OUT:-/tmp/ruvector-bench}/http.txt 2>&1
cargo bench -p ruvector-index --bench distance > ${OUT:-/tmp/ruvector-bench}/distance.txt 2>&1
python3 bench/streaming.py --binary ${RUVECTOR:-target/release/ruvector} > ${OUT:-/tmp/ruvector-bench}/streaming.txt 2>&1
echo done > ${OUT:-/tmp/ruvector-bench}/DONE
