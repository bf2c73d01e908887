#!/usr/bin/env bash
# Hostile input against the served OpenAPI documents (issue 13): starts a
# real node and a real router over two shards, all with API keys, and runs
# schemathesis over every operation of each process's own
# `GET /openapi.json` — examples, coverage (boundary values and invalid
# inputs), fuzzing and stateful sequences along the documents' links
# (create a collection -> upsert -> get / search / delete ...).
#
# Fails on any failed check: a 5xx, a status code the document does not
# list, a body or content type or header that does not match it, schema-
# invalid input accepted, a wrong `Allow` header, auth ignored, ... — every
# check schemathesis has except `positive_data_acceptance`: a request can
# match the schema and still be refused for what a schema cannot say (a
# vector of the wrong dimension, a partition route on a collection created
# without partitions, a page size over the configured limit), and the
# document lists those 400s. Also fails when a process died meanwhile.
#
#   tests/schemathesis/run.sh            # bounded: the CI run (~2.5 minutes)
#   ST_EXAMPLES=200 ST_SEED=7 tests/schemathesis/run.sh
#
# Environment: RUVECTOR_BIN (default target/debug/ruvector, built by
# `cargo build -p ruvector-cli`), ST (the schemathesis CLI, default
# .cache/venv/bin/st; `pip install -r tests/schemathesis/requirements.txt`),
# ST_EXAMPLES (examples per operation and phase, default 25), ST_SEED
# (default 20261203), ST_REPORTS (a directory for JUnit reports and logs;
# default a temporary one, removed unless the run fails).
set -euo pipefail
cd "$(dirname "$0")/../.."

here=$PWD/tests/schemathesis
BIN=$(realpath "${RUVECTOR_BIN:-target/debug/ruvector}")
ST=$(realpath "${ST:-.cache/venv/bin/st}")
EXAMPLES=${ST_EXAMPLES:-25}
SEED=${ST_SEED:-20261203}
RW_KEY=schemathesis-rw
RO_KEY=schemathesis-ro

[ -x "$BIN" ] || { echo "no ruvector binary at $BIN (cargo build -p ruvector-cli)" >&2; exit 2; }
[ -x "$ST" ] || { echo "no schemathesis at $ST (pip install -r tests/schemathesis/requirements.txt)" >&2; exit 2; }

work=$(mktemp -d)
reports=${ST_REPORTS:-$work/reports}
mkdir -p "$reports"
pids=()
failed=1
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$failed" = 0 ] && [ -z "${ST_REPORTS:-}" ]; then rm -rf "$work"; else echo "logs and reports: $reports" >&2; fi
}
trap cleanup EXIT

# start NAME ENV... -- ARGS...: starts the binary on port 0, records its
# pid and prints its URL (from the `listening on` line it prints once bound).
started_url=""
start() {
  local name=$1; shift
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  env "${env[@]}" "$BIN" "$@" >"$reports/$name.log" 2>&1 &
  pids+=($!)
  local pid=$! deadline=$((SECONDS + 30))
  started_url=""
  until started_url=$(grep -o -m1 'listening on http://[0-9.:]*' "$reports/$name.log" | sed 's/listening on //'); do
    kill -0 "$pid" 2>/dev/null || { cat "$reports/$name.log" >&2; echo "$name exited" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || { echo "$name did not bind within 30 s" >&2; exit 1; }
    sleep 0.05
  done
}

# wait_ready URL: polls /ready (the readiness signal) with a deadline.
wait_ready() {
  local deadline=$((SECONDS + 60))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/ready")" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "$1 not ready within 60 s" >&2; exit 1; }
    sleep 0.1
  done
}

keys=(RUVECTOR_API_KEY=$RW_KEY RUVECTOR_READ_ONLY_API_KEY=$RO_KEY)
start node "${keys[@]}" -- serve --addr 127.0.0.1:0 --data "$work/node"
node=$started_url
start shard0 "${keys[@]}" -- serve --addr 127.0.0.1:0 --data "$work/shard0"
shard0=$started_url
start shard1 "${keys[@]}" -- serve --addr 127.0.0.1:0 --data "$work/shard1"
shard1=$started_url
start router RUVECTOR_ROUTER__API_KEY=$RW_KEY RUVECTOR_ROUTER__READ_ONLY_API_KEY=$RO_KEY \
  -- router --addr 127.0.0.1:0 --shards "$shard0,$shard1"
router=$started_url
for url in "$node" "$shard0" "$shard1" "$router"; do wait_ready "$url"; done

status=0
# run NAME URL: schemathesis over the document URL serves.
run() {
  local name=$1 url=$2 start=$SECONDS
  echo "== schemathesis against the $name at $url ($EXAMPLES examples per operation, seed $SEED)"
  # From the scratch directory: schemathesis keeps replay data in ./.schemathesis.
  if (cd "$work" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here" "$ST" run "$url/openapi.json" --url "$url" \
      -H "Authorization: Bearer $RW_KEY" \
      --checks all --exclude-checks positive_data_acceptance \
      --phases examples,coverage,fuzzing,stateful \
      --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
      --generation-database none --request-timeout 30 \
      --report junit --report-junit-path "$reports/$name.xml" \
      --no-color) 2>&1 | tee "$reports/$name.txt"; then
    echo "== $name: passed in $((SECONDS - start)) s"
  else
    echo "== $name: FAILED (report above; $reports/$name.txt)" >&2
    status=1
  fi
}
run node "$node"
run router "$router"

for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "process ${pids[$i]} died during the run (logs in $reports)" >&2
    status=1
  fi
done
if grep -l 'panicked' "$reports"/*.log >&2; then
  echo "a process logged a panic" >&2
  status=1
fi
failed=$status
exit "$status"
