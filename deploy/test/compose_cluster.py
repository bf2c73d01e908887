#!/usr/bin/env python3
"""End-to-end test of deploy/docker-compose.yml, through the router only.

Brings the cluster up with a locally built image (RUVECTOR_IMAGE, default
ruvector:local; build it with deploy/local-image.sh), then:

1. creates a collection, upserts vectors, searches, reads and deletes some;
2. stops one shard (SIGTERM, as `docker stop` does) and checks the
   documented failure behaviour: searches answer 503 naming the shard, or the
   live shards' results with `x-ruvector-partial: true` when asked; reads of
   ids on the other shards still work; writes to the stopped shard's ids
   are refused, not acknowledged;
3. starts it again, SIGKILLs another shard right after more acknowledged
   writes, starts that one too, and checks every acknowledged vector is back
   with its value and every deleted one stays deleted;
4. checks container logs carry no ANSI colour codes;
5. when RUVECTOR_PROMETHEUS_IMAGE names a Prometheus image (CI makes a
   stand-in with deploy/test/prometheus-image.sh; prom/prometheus works),
   starts the `monitoring` profile's Prometheus and checks it scrapes the
   router and every shard with the labels the dashboard selects on, and
   sees the data written above.

`docker-compose down -v` runs at the end, also on failure or Ctrl-C. Only
the Python standard library is used. Prints the cold start time (up to the
router's /ready) on stdout as `cold_start_seconds=...`.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
IMAGE = os.environ.get("RUVECTOR_IMAGE", "ruvector:local")
PROJECT = f"ruvector-compose-test-{os.getpid()}"
DIMENSION = 8
COLLECTION = "compose"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
PROMETHEUS_IMAGE = os.environ.get("RUVECTOR_PROMETHEUS_IMAGE")
PROMETHEUS_PORT = free_port()
ENV = {
    **os.environ,
    "RUVECTOR_IMAGE": IMAGE,
    "RUVECTOR_PORT": str(PORT),
    "PROMETHEUS_PORT": str(PROMETHEUS_PORT),
    **({"PROMETHEUS_IMAGE": PROMETHEUS_IMAGE} if PROMETHEUS_IMAGE else {}),
}


def compose(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    command = ["docker-compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), *args]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, env=ENV, check=check, text=True, capture_output=capture)


class Answer:
    def __init__(self, status: int, headers: dict, body: str):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"HTTP {self.status}: {self.body[:300]}"


def call(method: str, path: str, body=None, timeout: float = 30.0, base: str = BASE) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read().decode())


def expect(answer: Answer, status: int, what: str) -> Answer:
    if answer.status != status:
        raise AssertionError(f"{what}: expected HTTP {status}, got {answer!r}")
    return answer


class NotReady(Exception):
    """A service answered 503 while starting: poll again."""


def wait_until(what: str, predicate, timeout: float = 180.0, interval: float = 0.25):
    """Polls `predicate` until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, urllib.error.URLError, NotReady) as error:  # refused or 503 while starting
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def container_health(service: str) -> str:
    ids = compose("ps", "-q", service, capture=True).stdout.split()
    if not ids:
        return "missing"
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}", ids[0]],
        check=True, text=True, capture_output=True,
    )
    return out.stdout.strip()


def router_sees_all_shards_up() -> bool:
    cluster = expect(call("GET", "/cluster"), 200, "GET /cluster").json()
    shards = cluster.get("shards", [])
    return len(shards) == 3 and all(s.get("up") or s.get("status") == "up" for s in shards)


def vector_of(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-1, 1), 4) for _ in range(DIMENSION)]


def upsert(vectors: dict[int, list[float]], ids: list[int]) -> Answer:
    body = {"vectors": [{"id": i, "vector": vectors[i], "payload": {"n": i}} for i in ids]}
    return call("POST", f"/collections/{COLLECTION}/vectors", body)


def owner_shard(answer: Answer) -> str | None:
    """The compose service a 503 names, e.g. 'shard-1'."""
    for name in ("shard-0", "shard-1", "shard-2"):
        if name in answer.body:
            return name
    return None


def check_all(acknowledged: dict[int, list[float]], deleted: set[int]) -> None:
    for i, vector in acknowledged.items():
        got = expect(call("GET", f"/collections/{COLLECTION}/vectors/{i}"), 200, f"GET acknowledged vector {i}").json()
        if got["vector"] != vector:
            raise AssertionError(f"vector {i} came back as {got['vector']}, acknowledged {vector}")
    for i in deleted:
        expect(call("GET", f"/collections/{COLLECTION}/vectors/{i}"), 404, f"GET deleted vector {i}")
    info = expect(call("GET", f"/collections/{COLLECTION}"), 200, "collection info").json()
    count = info.get("vectors", info.get("count", info.get("size")))
    if count != len(acknowledged):
        raise AssertionError(f"collection info counts {count} vectors, {len(acknowledged)} acknowledged: {info}")


def run() -> None:
    rng = random.Random(7)
    started = time.monotonic()
    compose("up", "-d")
    wait_until("the router's /ready", lambda: call("GET", "/ready", timeout=2).status == 200)
    wait_until("the router to see three shards up", router_sees_all_shards_up)
    cold_start = time.monotonic() - started
    print(f"cold_start_seconds={cold_start:.1f}", flush=True)

    # 1. The basic path.
    expect(call("POST", "/collections", {"name": COLLECTION, "dimension": DIMENSION, "metric": "euclidean"}), 201, "create")
    acknowledged: dict[int, list[float]] = {}
    vectors = {i: vector_of(rng) for i in range(1, 601)}
    for start in range(1, 601, 100):
        ids = list(range(start, start + 100))
        expect(upsert(vectors, ids), 201, f"upsert {start}..")
        acknowledged.update({i: vectors[i] for i in ids})
    hits = expect(call("POST", f"/collections/{COLLECTION}/search", {"vector": vectors[42], "k": 3}), 200, "search").json()
    assert hits[0]["id"] == 42 and hits[0]["distance"] < 1e-4, f"search for vector 42 returned {hits}"
    got = expect(call("GET", f"/collections/{COLLECTION}/vectors/42"), 200, "get").json()
    assert got["vector"] == vectors[42] and got.get("payload") == {"n": 42}, got
    deleted = set(range(1, 31))
    for i in deleted:
        expect(call("DELETE", f"/collections/{COLLECTION}/vectors/{i}"), 200, f"delete {i}")
        del acknowledged[i]
    check_all(acknowledged, deleted)
    print("ok   create, upsert, search, get, delete through the router", flush=True)

    # 2. One shard stopped: the documented failure behaviour.
    compose("stop", "shard-1")
    search = call("POST", f"/collections/{COLLECTION}/search", {"vector": vectors[42], "k": 5})
    expect(search, 503, "search with shard-1 stopped")
    assert owner_shard(search) == "shard-1", f"the 503 must name shard-1: {search!r}"
    partial = expect(
        call("POST", f"/collections/{COLLECTION}/search", {"vector": vectors[42], "k": 5, "allow_partial": True}),
        200, "partial search",
    )
    assert partial.headers.get("x-ruvector-partial") == "true", partial.headers
    assert len(partial.json()) == 5, partial
    on_stopped, on_live = [], []
    for i in list(acknowledged)[:120]:
        answer = call("GET", f"/collections/{COLLECTION}/vectors/{i}")
        if answer.status == 200:
            on_live.append(i)
        else:
            expect(answer, 503, f"GET {i} with its shard stopped")
            assert owner_shard(answer) == "shard-1", answer
            on_stopped.append(i)
    assert on_stopped and on_live, f"ids should spread over shards: {len(on_stopped)} on shard-1, {len(on_live)} elsewhere"
    refused = upsert({on_stopped[0]: [9.0] * DIMENSION}, [on_stopped[0]])
    expect(refused, 503, "upsert to an id on the stopped shard")
    print(f"ok   shard-1 stopped: 503 naming it, partial results on request, {len(on_live)} reads elsewhere served", flush=True)

    # 3. Back up; more writes; a SIGKILL; everything acknowledged is back.
    compose("start", "shard-1")
    wait_until("shard-1 healthy", lambda: container_health("shard-1") == "running/healthy")
    wait_until("the router to see three shards up", router_sees_all_shards_up)
    more = {i: vector_of(rng) for i in range(601, 801)}
    vectors.update(more)
    expect(upsert(vectors, list(more)), 201, "upsert after restart")
    acknowledged.update(more)
    overwritten = list(range(31, 61))
    for i in overwritten:
        vectors[i] = vector_of(rng)
    expect(upsert(vectors, overwritten), 201, "overwrite")
    acknowledged.update({i: vectors[i] for i in overwritten})
    compose("kill", "-s", "SIGKILL", "shard-2")
    compose("start", "shard-2")
    wait_until("shard-2 healthy", lambda: container_health("shard-2") == "running/healthy")
    wait_until("the router to see three shards up", router_sees_all_shards_up)
    check_all(acknowledged, deleted)
    hits = expect(call("POST", f"/collections/{COLLECTION}/search", {"vector": vectors[700], "k": 1}), 200, "search").json()
    assert hits[0]["id"] == 700, hits
    print(f"ok   after a stop/start and a SIGKILL: all {len(acknowledged)} acknowledged vectors back, {len(deleted)} deletes kept", flush=True)

    # 4. Plain logs.
    logs = compose("logs", "--no-color", capture=True).stdout
    assert "listening on" in logs, "no startup line in the logs"
    assert "\x1b[" not in logs, "container logs carry ANSI escape codes"
    print("ok   logs are plain text", flush=True)

    # 5. The monitoring profile's Prometheus scrapes every node.
    if PROMETHEUS_IMAGE:
        check_monitoring(len(acknowledged))
    else:
        print("skip monitoring: set RUVECTOR_PROMETHEUS_IMAGE to check the monitoring profile", flush=True)


def prometheus(path: str):
    answer = call("GET", path, base=f"http://127.0.0.1:{PROMETHEUS_PORT}", timeout=5)
    if answer.status == 503:
        # Prometheus answers 503 until its storage is loaded.
        raise NotReady(f"Prometheus {path}: {answer!r}")
    expect(answer, 200, f"Prometheus {path}")
    return answer.json()["data"]


def check_monitoring(vectors: int) -> None:
    compose("--profile", "monitoring", "up", "-d", "prometheus")
    expected = {("router", "router"), ("shard", "shard-0"), ("shard", "shard-1"), ("shard", "shard-2")}

    def all_targets_up():
        targets = prometheus("/api/v1/targets?state=active")["activeTargets"]
        seen = {
            (t["labels"].get("role"), t["labels"].get("pod"))
            for t in targets
            if t["health"] == "up" and t["labels"].get("namespace") == "compose"
        }
        return seen == expected

    wait_until("Prometheus to scrape the router and three shards", all_targets_up, timeout=60, interval=1)

    def stored_vectors():
        result = prometheus("/api/v1/query?query=" + urllib.parse.quote(
            'sum(ruvector_collection_vectors{collection="compose",role="shard",namespace="compose"})'))["result"]
        return result and float(result[0]["value"][1]) == vectors

    wait_until(f"Prometheus to see {vectors} vectors over the shards", stored_vectors, timeout=30, interval=1)
    shards_up = prometheus("/api/v1/query?query=" + urllib.parse.quote("sum(ruvector_router_shard_up{role=\"router\"})"))
    assert float(shards_up["result"][0]["value"][1]) == 3, shards_up
    print("ok   monitoring profile: Prometheus scrapes the router and three shards with namespace/pod/role", flush=True)


def main() -> int:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        print(f"image {IMAGE} not found: run deploy/local-image.sh first", file=sys.stderr)
        return 2
    try:
        run()
        print("compose test passed", flush=True)
        return 0
    except BaseException:
        compose("ps", check=False)
        compose("logs", "--no-color", "--tail", "40", check=False)
        raise
    finally:
        compose("--profile", "monitoring", "down", "-v", "--remove-orphans", "--timeout", "30", check=False)


if __name__ == "__main__":
    sys.exit(main())
