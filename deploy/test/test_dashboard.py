"""Checks of the Grafana dashboard (deploy/grafana/ruvector.json), the
compose Prometheus config (deploy/prometheus.yml) and the Grafana
provisioning files, against real `ruvector` processes and `promtool`.

Run from the repository root:

    pytest deploy/test/test_dashboard.py

What is checked:

* the dashboard parses, has the `datasource`, `namespace`, `pod` and `role`
  variables, covers every required view, and every panel has a target with
  an expression; every selector carries the label contract
  `namespace=~"$namespace", pod=~"$pod", role=~"$role"`;
* every metric a query (or a variable) uses is exported by a running router
  or shard (`up` excepted: Prometheus makes it), and every label a query
  matches on, groups by or shows in a legend exists on that metric;
* every expression, variables substituted, is valid PromQL (`promtool check
  rules` on one recording rule per expression);
* `promtool check config deploy/prometheus.yml` passes;
* end to end: a real Prometheus scraping the processes with
  deploy/prometheus.yml (targets rewritten to the loopback addresses)
  answers every panel query with data, and the variable queries find the
  `compose` namespace and the pods.

Environment:

* `RUVECTOR_BIN`: the binary (default `target/debug/ruvector`, built with
  `cargo build -p ruvector-cli` when missing);
* `RUVECTOR_REQUIRE_PROMTOOL=1`: a missing `promtool` (or `prometheus`) is a
  failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "ruvector.json"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus.yml"
GRAFANA_DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "ruvector.yml"

#: Labels the scrape config attaches (or Prometheus itself): not exported
#: by the processes, allowed on any metric.
TARGET_LABELS = {"namespace", "pod", "role", "job", "instance"}
#: Also allowed: histogram bucket bounds and the metric name.
ALLOWED_LABELS = TARGET_LABELS | {"le", "__name__"}
#: Metrics Prometheus generates itself for every target.
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
#: The label contract every selector of every panel query must carry.
CONTRACT = {"namespace": "$namespace", "pod": "$pod", "role": "$role"}

DEADLINE_S = 60.0


# --------------------------------------------------------------------------
# The dashboard


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def query_panels(dashboard: dict) -> list[dict]:
    return [p for p in all_panels(dashboard) if p.get("type") != "row"]


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str
    legend: str

    @property
    def name(self) -> str:
        return f"{self.panel!r} {self.ref}"


def panel_queries(dashboard: dict) -> list[PanelQuery]:
    out = []
    for panel in query_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            out.append(
                PanelQuery(
                    panel["title"], target.get("refId", "?"), target.get("expr", ""), target.get("legendFormat", "")
                )
            )
    return out


def variable_queries(dashboard: dict) -> dict[str, tuple[str, str]]:
    """`label_values(SELECTOR, LABEL)` query variables: name -> (selector, label)."""
    out = {}
    for var in dashboard["templating"]["list"]:
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else (query or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", text)
        assert m, f"variable {var['name']}: expected label_values(selector, label), got {text!r}"
        out[var["name"]] = (m.group(1), m.group(2))
    return out


# --------------------------------------------------------------------------
# A small PromQL scanner: enough to find the metric selectors, their
# matchers and the grouping labels of the expressions a dashboard uses.

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@])
  """,
    re.VERBOSE,
)
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass
class Selector:
    metric: str | None
    matchers: list[tuple[str, str, str]]  # (label, op, value)


@dataclass
class Analysis:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors if s.metric}


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos] == "[":  # range or subquery: durations (and `$__rate_interval`) are not scanned
            end = expr.find("]", pos)
            if end < 0:
                raise ValueError(f"unclosed '[' at {pos} in {expr!r}")
            out.append(("range", expr[pos : end + 1]))
            pos = end + 1
            continue
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot scan {expr[pos : pos + 20]!r} in {expr!r}")
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return s[1:-1]


def analyse(expr: str) -> Analysis:
    toks = _tokens(expr)
    result = Analysis()
    i = 0

    def at(j: int) -> str:
        return toks[j][1] if j < len(toks) else ""

    def read_matchers(j: int) -> tuple[list[tuple[str, str, str]], int]:
        assert at(j) == "{"
        j += 1
        matchers = []
        while at(j) != "}":
            if at(j) == ",":
                j += 1
                continue
            label, op, value = toks[j], toks[j + 1], toks[j + 2]
            if label[0] != "ident" or op[1] not in ("=", "!=", "=~", "!~") or value[0] != "string":
                raise ValueError(f"bad matcher {label[1]} {op[1]} {value[1]} in {expr!r}")
            matchers.append((label[1], op[1], _unquote(value[1])))
            j += 3
        return matchers, j + 1

    while i < len(toks):
        kind, text = toks[i]
        low = text.lower()
        if kind == "ident" and low in _GROUPING:
            if at(i + 1) == "(":
                j = i + 2
                while at(j) != ")":
                    if toks[j][0] == "ident":
                        result.grouping.add(toks[j][1])
                    j += 1
                i = j + 1
            else:
                i += 1
        elif kind == "ident" and (
            at(i + 1) == "(" or (low in _AGGREGATIONS and at(i + 1).lower() in ("by", "without"))
        ):
            i += 1  # a function or an aggregation
        elif kind == "ident" and low in _KEYWORDS:
            i += 1
        elif kind == "ident":
            if at(i + 1) == "{":
                matchers, i = read_matchers(i + 1)
            else:
                matchers, i = [], i + 1
            result.selectors.append(Selector(text, matchers))
        elif text == "{":
            matchers, i = read_matchers(i)
            names = [v for (label, op, v) in matchers if label == "__name__" and op == "="]
            result.selectors.append(Selector(names[0] if names else None, matchers))
        else:
            i += 1
    return result


def legend_labels(legend: str) -> set[str]:
    return set(re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}", legend))


# --------------------------------------------------------------------------
# Variable substitution (what Grafana sends to Prometheus)

GRAFANA_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", one, expr)


def dashboard_variables(dashboard: dict, **values: str) -> dict[str, str]:
    """Concrete values for every dashboard variable and Grafana built-in."""
    out = dict(GRAFANA_BUILTINS)
    for var in dashboard["templating"]["list"]:
        out[var["name"]] = values.get(var["name"], ".*")
    out["datasource"] = "prometheus"
    return out


# --------------------------------------------------------------------------
# (a) the dashboard's structure


def test_dashboard_variables() -> None:
    dashboard = load_dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41, dashboard["schemaVersion"]
    assert dashboard.get("uid") and dashboard.get("title")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "pod", "role"} <= set(variables), sorted(variables)
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    for name in ("namespace", "pod"):
        var = variables[name]
        assert var["type"] == "query", var
        assert var["datasource"]["uid"] in ("${datasource}", "$datasource"), var["datasource"]
        assert var.get("includeAll") and var.get("multi"), f"{name}: All and multi-value expected"
    role = variables["role"]
    assert role["type"] == "custom", role
    assert {v.strip() for v in role["query"].split(",")} == {"router", "shard", "node"}, role["query"]
    assert set(variable_queries(dashboard)) == {"namespace", "pod"}


def test_every_panel_has_a_query_on_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    panels = query_panels(dashboard)
    assert len(panels) >= 20, f"only {len(panels)} panels"
    ids = [p["id"] for p in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), f"duplicate panel titles: {titles}"
    for p in all_panels(dashboard):
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, f"{p['title']!r}: gridPos {pos}"
    for p in panels:
        exprs = [t.get("expr", "").strip() for t in p.get("targets", []) if not t.get("hide")]
        assert exprs and all(exprs), f"panel {p['title']!r} has no target with an expression"
        assert p["datasource"]["uid"] == "${datasource}", f"{p['title']!r}: datasource {p['datasource']}"
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", f"{p['title']!r}: target datasource {t['datasource']}"
            assert t["datasource"]["type"] == "prometheus"


#: What the dashboard must show: (what, predicate on one expression).
REQUIRED_VIEWS: list[tuple[str, Callable[[str], bool]]] = []


def _required(what: str, *patterns: str) -> None:
    compiled = [re.compile(p) for p in patterns]
    REQUIRED_VIEWS.append((what, lambda e: all(c.search(e) for c in compiled)))


for _prefix, _who in (("ruvector", "node/shard"), ("ruvector_router", "router")):
    _required(f"{_who} request rate by route", rf"rate\({_prefix}_http_requests_total\{{", r"by \([^)]*route")
    _required(
        f"{_who} 5xx rate by route", rf"{_prefix}_http_requests_total\{{[^}}]*status=~\"5\.\.\"", r"by \([^)]*route"
    )
    _required(
        f"{_who} 4xx rate by route", rf"{_prefix}_http_requests_total\{{[^}}]*status=~\"4\.\.\"", r"by \([^)]*route"
    )
    for _q in ("0.5", "0.99"):
        _required(
            f"{_who} latency q{_q} by route",
            rf"histogram_quantile\({_q},",
            rf"{_prefix}_http_request_duration_seconds_bucket\{{",
            r"by \([^)]*route",
        )
for _q in ("0.5", "0.99"):
    _required(
        f"per-shard fan-out latency q{_q}",
        rf"histogram_quantile\({_q},",
        r"ruvector_router_shard_request_duration_seconds_bucket\{",
        r"by \([^)]*shard",
    )
    _required(
        f"WAL fsync latency q{_q}", rf"histogram_quantile\({_q},", r"ruvector_wal_fsync_duration_seconds_bucket\{"
    )
    _required(
        f"checkpoint latency q{_q}", rf"histogram_quantile\({_q},", r"ruvector_checkpoint_duration_seconds_bucket\{"
    )
_required("shard errors at the router", r"rate\(ruvector_router_shard_errors_total\{", r"by \([^)]*shard")
_required("shard up, router's view", r"ruvector_router_shard_up\{", r"by \([^)]*shard")
_required("shard up, Prometheus' view", r"(^|[^_\w])up\{")
_required("vectors per collection", r"ruvector_collection_vectors\{", r"by \([^)]*collection")
_required("memory per collection", r"ruvector_collection_memory_bytes\{", r"by \([^)]*collection")
_required("maintenance backlog", r"ruvector_maintenance_backlog\{")
_required("process RSS", r"process_resident_memory_bytes\{")
_required("process CPU", r"rate\(process_cpu_seconds_total\{")
_required("restarts", r"changes\(process_start_time_seconds\{")


@pytest.mark.parametrize("what", [w for w, _ in REQUIRED_VIEWS])
def test_required_view_is_present(what: str) -> None:
    predicate = dict(REQUIRED_VIEWS)[what]
    exprs = [q.expr for q in panel_queries(load_dashboard())]
    assert any(predicate(e) for e in exprs), f"no panel query shows {what}"


def test_every_selector_carries_the_label_contract() -> None:
    problems = []
    for q in panel_queries(load_dashboard()):
        analysis = analyse(q.expr)
        assert analysis.selectors, f"{q.name}: no metric selector in {q.expr!r}"
        for s in analysis.selectors:
            have = {(label, op, value) for (label, op, value) in s.matchers}
            for label, var in CONTRACT.items():
                if (label, "=~", var) not in have:
                    problems.append(f'{q.name}: {s.metric} lacks {label}=~"{var}"')
    assert not problems, "\n".join(problems)


def test_scanner_finds_selectors_and_grouping() -> None:
    # The scanner the other checks rely on; a test that it can see a mistake.
    a = analyse(
        'histogram_quantile(0.99, sum by (route, le) (rate(x_bucket{a="1", b=~"2|3"}[$__rate_interval])))'
        ' / on (pod) group_left (kind) max without (z) (y) and {__name__="w"}'
    )
    assert [s.metric for s in a.selectors] == ["x_bucket", "y", "w"]
    assert a.selectors[0].matchers == [("a", "=", "1"), ("b", "=~", "2|3")]
    assert a.grouping == {"route", "le", "pod", "kind", "z"}
    assert substitute('rate(x{p=~"$pod"}[$__rate_interval])', {"pod": "a|b", "__rate_interval": "1m"}) == (
        'rate(x{p=~"a|b"}[1m])'
    )
    with pytest.raises(KeyError):
        substitute('x{p=~"$nope"}', {})


# --------------------------------------------------------------------------
# Processes


def binary() -> Path:
    path = Path(os.environ.get("RUVECTOR_BIN", "target/debug/ruvector"))
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        if "RUVECTOR_BIN" in os.environ:
            pytest.fail(f"RUVECTOR_BIN={path} does not exist")
        subprocess.run(["cargo", "build", "-p", "ruvector-cli"], cwd=REPO, check=True)
    assert path.exists(), f"{path} missing after cargo build"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, done: Callable[[], object], deadline_s: float = DEADLINE_S) -> object:
    """Polls `done` until it returns something truthy; fails after the deadline."""
    end = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < end:
        try:
            value = done()
            if value:
                return value
        except (requests.RequestException, ValueError, KeyError) as e:
            last_error = e
        time.sleep(0.05)
    pytest.fail(f"timed out after {deadline_s:.0f} s waiting for {what} (last error: {last_error})")


def _pdeathsig() -> Callable[[], None] | None:
    """A `preexec_fn` that asks Linux to SIGKILL the child when the test
    process dies, so a killed pytest leaves no server behind (teardown
    covers everything else). `prctl` is looked up here, in the parent: the
    child only calls it (no dlopen between fork and exec)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGKILL))


_DIE_WITH_PARENT = _pdeathsig() if os.name == "posix" else None


class Process:
    """A child process; `stop` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 (closed by stop)
        self.popen = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=_DIE_WITH_PARENT,  # noqa: PLW1509 (nothing but one foreign call in the child)
        )
        self.url: str | None = None
        self._listening = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        # Finds the "listening on URL" line, then keeps the pipe empty.
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace")
            if self.url is None and " listening on " in line:
                self.url = line.split(" listening on ", 1)[1].strip()
                self._listening.set()
        self._listening.set()

    def wait_listening(self) -> str:
        if not self._listening.wait(DEADLINE_S) or self.url is None:
            pytest.fail(f"{self.name} did not start: exit {self.popen.poll()}, log:\n{self.tail()}")
        return self.url

    def tail(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_bytes()[-4000:].decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log_file.close()


def wait_ready(url: str, name: str) -> None:
    wait_for(f"{name} {url}/ready to answer 200", lambda: requests.get(f"{url}/ready", timeout=2).status_code == 200)


def call(method: str, url: str, body: object = None, expect: int | tuple[int, ...] = (200, 201)) -> requests.Response:
    r = requests.request(method, url, json=body, timeout=10)
    wanted = (expect,) if isinstance(expect, int) else expect
    assert r.status_code in wanted, f"{method} {url} -> {r.status_code} {r.text[:300]}"
    return r


# --------------------------------------------------------------------------
# Scrapes


@dataclass
class Scrape:
    """The sample names of one `/metrics` page with their label names, and
    each family's type."""

    labels: dict[str, set[str]]
    types: dict[str, str]
    text: str


def parse_exposition(text: str) -> Scrape:
    labels: dict[str, set[str]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind.strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+", line)
        assert m, f"unparsable sample line {line!r}"
        names = set(re.findall(r'([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"', m.group(3) or ""))
        labels.setdefault(m.group(1), set()).update(names)
    return Scrape(labels, types, text)


def scrape(url: str) -> Scrape:
    r = requests.get(f"{url}/metrics", timeout=10)
    r.raise_for_status()
    return parse_exposition(r.text)


@dataclass
class Cluster:
    router: str
    shard: str
    dead_shard: str
    router_metrics: Scrape
    shard_metrics: Scrape


def _router_saw_dead_shard(router: str, dead: str) -> bool:
    s = scrape(router)
    down = re.search(rf'^ruvector_router_shard_up\{{shard="{re.escape(dead)}"\}} 0$', s.text, re.MULTILINE)
    return bool(down) and "ruvector_router_shard_errors_total" in s.labels


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two shards and a router over them, with traffic through the router
    and to a shard directly; then one shard is killed so that the router
    counts shard errors and a partial result. Every process is stopped at
    the end, whatever happened."""
    exe = str(binary())
    tmp = tmp_path_factory.mktemp("dashboard")
    procs: list[Process] = []
    env = {"RUST_LOG": "warn", "RUVECTOR_STORAGE__CHECKPOINT_INTERVAL_SECS": "1"}
    try:
        shards = []
        for i in range(2):
            p = Process(
                f"shard-{i}",
                [exe, "serve", "--addr", "127.0.0.1:0", "--data", str(tmp / f"shard-{i}")],
                tmp / f"shard-{i}.log",
                env,
            )
            procs.append(p)
            shards.append(p)
        urls = [p.wait_listening() for p in shards]
        for p, url in zip(shards, urls):
            wait_ready(url, p.name)
        router_proc = Process(
            "router",
            [exe, "router", "--addr", "127.0.0.1:0", "--shards", ",".join(urls)],
            tmp / "router.log",
            {**env, "RUVECTOR_ROUTER__HEALTH_INTERVAL_MS": "200"},
        )
        procs.append(router_proc)
        router = router_proc.wait_listening()
        wait_ready(router, "router")
        live, dead = urls

        vectors = [{"id": i, "vector": [1.0, i % 3, i % 5, i % 7 + 0.5], "payload": {"n": i}} for i in range(1, 41)]
        query = {"vector": [1.0, 1.0, 0.0, 0.5], "k": 3}
        # Through the router.
        call("POST", f"{router}/collections", {"name": "dash", "dimension": 4, "metric": "cosine"})
        call("POST", f"{router}/collections/dash/vectors", {"vectors": vectors})
        call("POST", f"{router}/collections/dash/search", query)
        call("POST", f"{router}/collections/dash/search/batch", {"searches": [query, query]})
        call("GET", f"{router}/collections/dash/vectors/1")
        call("DELETE", f"{router}/collections/dash/vectors/2")
        call("GET", f"{router}/collections/dash")
        call("GET", f"{router}/collections/missing", expect=404)
        call("GET", f"{router}/cluster")
        # Directly on a shard.
        call("POST", f"{live}/collections", {"name": "direct", "dimension": 4, "metric": "euclidean"})
        call("POST", f"{live}/collections/direct/vectors", {"vectors": vectors[:10]})
        call("POST", f"{live}/collections/direct/search", query)
        call("GET", f"{live}/collections/missing", expect=404)
        # A shard goes away: errors, shard_up 0, a 503 and a partial result at the router.
        shards[1].stop(signal.SIGKILL)
        call("POST", f"{router}/collections/dash/search", query, expect=503)
        r = call("POST", f"{router}/collections/dash/search", {**query, "allow_partial": True}, expect=200)
        assert r.headers.get("x-ruvector-partial") == "true", dict(r.headers)
        wait_for("the router to report the dead shard down", lambda: _router_saw_dead_shard(router, dead))

        yield Cluster(router, live, dead, scrape(router), scrape(live))
    finally:
        for p in reversed(procs):
            p.stop()


# --------------------------------------------------------------------------
# (b) every metric and label the dashboard uses is exported


def _uses(dashboard: dict) -> list[tuple[str, str, str]]:
    """(where, expression, legend) of every panel query and variable selector."""
    out = [(q.name, q.expr, q.legend) for q in panel_queries(dashboard)]
    for name, (selector, label) in variable_queries(dashboard).items():
        out.append((f"variable {name}", selector, "{{" + label + "}}"))
    return out


def exported(*scrapes: Scrape) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Sample name -> label names, and family -> type, over `scrapes`, plus
    the series Prometheus makes itself."""
    known: dict[str, set[str]] = {name: set() for name in PROMETHEUS_METRICS}
    types: dict[str, str] = {}
    for s in scrapes:
        for name, names in s.labels.items():
            known.setdefault(name, set()).update(names)
        types.update(s.types)
    return known, types


def usage_problems(uses: list[tuple[str, str, str]], known: dict[str, set[str]], types: dict[str, str]) -> list[str]:
    """What in `uses` ((where, expression, legend)) names a metric or a label
    that is not exported."""
    problems = []
    for where, expr, legend in uses:
        analysis = analyse(expr)
        metrics = analysis.metrics
        if not metrics:
            problems.append(f"{where}: no metric name in {expr!r}")
        for metric in sorted(metrics - set(known)):
            family = re.sub(r"_(bucket|sum|count)$", "", metric)
            if types.get(metric) == "histogram":
                problems.append(f"{where}: {metric} is a histogram: query {metric}_bucket, _sum or _count")
            elif family != metric and types.get(family) == "histogram":
                problems.append(f"{where}: {metric}: histogram {family} has no such series")
            else:
                problems.append(f"{where}: {metric} is exported by neither the router nor a shard")
        for s in analysis.selectors:
            for label, _, _ in s.matchers:
                if s.metric in known and label not in ALLOWED_LABELS and label not in known[s.metric]:
                    problems.append(f"{where}: {s.metric} has no label {label!r} (has {sorted(known[s.metric])})")
        # Strict: a grouping label must be on every metric of the query (the
        # dashboard's queries each read one family).
        for label in sorted(analysis.grouping - ALLOWED_LABELS):
            for metric in sorted(metrics & set(known)):
                if label not in known[metric]:
                    problems.append(f"{where}: grouping by {label!r}, which {metric} does not have")
        if "histogram_quantile" in expr and "le" not in analysis.grouping:
            problems.append(f"{where}: histogram_quantile without `le` in the grouping")
        # The labels a legend shows must survive the aggregation.
        if analysis.grouping:
            available = analysis.grouping
        else:
            available = set(TARGET_LABELS).union(*(known.get(m, set()) for m in metrics))
        for label in sorted(legend_labels(legend) - available):
            problems.append(f"{where}: legend uses {{{{{label}}}}}, which the query does not keep")
    return problems


def test_every_metric_and_label_is_exported(cluster: Cluster) -> None:
    known, types = exported(cluster.router_metrics, cluster.shard_metrics)
    problems = usage_problems(_uses(load_dashboard()), known, types)
    assert not problems, "\n".join(problems)


def test_scrapes_have_the_series_the_check_relies_on(cluster: Cluster) -> None:
    # The check above is only as good as the scrapes: the traffic must have
    # produced the labelled series (a vector metric without series is absent).
    r, s = cluster.router_metrics.labels, cluster.shard_metrics.labels
    assert {"route", "method", "le"} <= r["ruvector_router_http_request_duration_seconds_bucket"]
    assert {"route", "method", "status"} <= r["ruvector_router_http_requests_total"]
    assert {"shard", "op", "le"} <= r["ruvector_router_shard_request_duration_seconds_bucket"]
    assert {"shard", "kind"} <= r["ruvector_router_shard_errors_total"]
    assert {"route", "method", "le"} <= s["ruvector_http_request_duration_seconds_bucket"]
    assert {"collection", "kind"} <= s["ruvector_maintenance_backlog"]
    assert "process_start_time_seconds" in r and "process_start_time_seconds" in s
    assert "ruvector_collection_vectors" not in r, "the router exports no collection gauges"


def test_usage_check_reports_mistakes() -> None:
    scrape_text = """# TYPE h histogram
h_bucket{route="/a",le="+Inf"} 1
h_sum{route="/a"} 1
h_count{route="/a"} 1
# TYPE c_total counter
c_total{route="/a",status="200"} 1
"""
    known, types = exported(parse_exposition(scrape_text))
    ok = [
        ("ok", 'histogram_quantile(0.5, sum by (route, le) (rate(h_bucket{pod=~"$pod"}[1m])))', "{{route}}"),
        (
            "ok2",
            'sum by (status) (rate(c_total{status=~"5.."}[1m])) / sum by (status) (rate(c_total[1m]))',
            "{{status}}",
        ),
    ]
    assert usage_problems(ok, known, types) == []
    bad = [
        ("bare histogram", "rate(h[1m])", ""),
        ("no such series", "rate(h_total[1m])", ""),
        ("unknown metric", "rate(nope_total[1m])", ""),
        ("unknown matcher", 'rate(c_total{shard="x"}[1m])', ""),
        ("unknown grouping", "sum by (collection) (rate(c_total[1m]))", ""),
        ("quantile without le", "histogram_quantile(0.5, sum by (route) (rate(h_bucket[1m])))", ""),
        ("legend lost", "sum by (route) (rate(c_total[1m]))", "{{status}}"),
    ]
    for case in bad:
        assert usage_problems([case], known, types), f"{case[0]} not reported"


# --------------------------------------------------------------------------
# (c), (d) promtool


def tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install -y --no-install-recommends prometheus)"
    if os.environ.get("RUVECTOR_REQUIRE_PROMTOOL") == "1":
        pytest.fail(message + " and RUVECTOR_REQUIRE_PROMTOOL=1")
    pytest.skip(message)


def recording_rules(dashboard: dict, values: dict[str, str]) -> dict:
    rules = []
    for i, q in enumerate(panel_queries(dashboard)):
        rules.append({"record": f"ruvector_dashboard:query_{i}", "expr": substitute(q.expr, values)})
    for name, (selector, _) in variable_queries(dashboard).items():
        rules.append({"record": f"ruvector_dashboard:variable_{name}", "expr": substitute(selector, values)})
    return {"groups": [{"name": "ruvector-dashboard", "rules": rules}]}


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    promtool = tool("promtool")
    dashboard = load_dashboard()
    values = dashboard_variables(dashboard, namespace="compose", pod="router|shard-0", role="router|shard|node")
    rules = recording_rules(dashboard, values)
    for rule in rules["groups"][0]["rules"]:
        assert "$" not in rule["expr"], f"unsubstituted variable in {rule['expr']!r}"
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    r = subprocess.run([promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True)
    assert r.returncode == 0, f"promtool check rules failed:\n{r.stdout}\n{r.stderr}"


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    # The check above can fail: promtool does reject what Grafana would.
    promtool = tool("promtool")
    path = tmp_path / "broken.rules.yml"
    rules = {"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": "sum by (a) (rate(x[1m])"}]}]}
    path.write_text(yaml.safe_dump(rules))
    r = subprocess.run([promtool, "check", "rules", str(path)], check=False, capture_output=True, text=True)
    assert r.returncode != 0


def test_promtool_check_config() -> None:
    promtool = tool("promtool")
    r = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)], check=False, capture_output=True, text=True
    )
    assert r.returncode == 0, f"promtool check config failed:\n{r.stdout}\n{r.stderr}"


COMPOSE_TARGETS = {
    "router:8080": "router",
    "shard-0:8080": "shard",
    "shard-1:8080": "shard",
    "shard-2:8080": "shard",
}


def test_prometheus_config_attaches_the_label_contract() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    seen = {}
    for job in config["scrape_configs"]:
        interval = job.get("scrape_interval", config.get("global", {}).get("scrape_interval"))
        assert interval == "5s", f"job {job['job_name']}: scrape interval {interval}"
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                seen[target] = group.get("labels", {})
    assert set(seen) == set(COMPOSE_TARGETS), sorted(seen)
    for target, labels in seen.items():
        assert labels.get("namespace") == "compose", (target, labels)
        assert labels.get("role") == COMPOSE_TARGETS[target], (target, labels)
        assert labels.get("pod") == target.split(":")[0], (target, labels)


def test_grafana_provisioning_matches() -> None:
    datasources = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"]
    prom = [d for d in datasources if d["type"] == "prometheus"]
    assert len(prom) == 1 and prom[0]["url"] == "http://prometheus:9090" and prom[0].get("isDefault"), prom
    providers = yaml.safe_load(GRAFANA_DASHBOARDS.read_text())["providers"]
    assert len(providers) == 1 and providers[0]["type"] == "file", providers
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards", providers[0]


# --------------------------------------------------------------------------
# (e) end to end: a real Prometheus with deploy/prometheus.yml


#: Panel queries that may rightly be empty in the test cluster: nothing
#: makes a node answer 5xx on demand.
MAY_BE_EMPTY = {"Nodes: 5xx errors by route"}


def _prom_query(prom: str, expr: str) -> list[dict]:
    r = requests.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr!r}: {r.status_code} {body}"
    return body["data"]["result"]


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the test cluster with deploy/prometheus.yml,
    only the targets rewritten: router:8080 -> the router, shard-0:8080 ->
    the live shard, shard-1:8080 -> the killed one, shard-2:8080 -> a port
    nothing listens on."""
    exe = tool("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    rewrite = {
        "router:8080": cluster.router,
        "shard-0:8080": cluster.shard,
        "shard-1:8080": cluster.dead_shard,
        "shard-2:8080": f"http://127.0.0.1:{free_port()}",
    }
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            group["targets"] = [rewrite[t].removeprefix("http://") for t in group["targets"]]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = Process(
        "prometheus",
        [
            exe,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("prometheus to be ready", lambda: requests.get(f"{url}/-/ready", timeout=2).status_code == 200)

        def scraped_thrice() -> bool:
            got = _prom_query(url, 'count_over_time(up{pod="router"}[1m])')
            return bool(got) and float(got[0]["value"][1]) >= 3

        wait_for("three scrapes of the router", scraped_thrice)
        yield url
    finally:
        proc.stop()


def test_prometheus_answers_every_panel_query(prometheus: str) -> None:
    dashboard = load_dashboard()
    values = dashboard_variables(dashboard, namespace="compose", pod=".*", role="router|shard|node")
    empty = []
    for q in panel_queries(dashboard):
        if not _prom_query(prometheus, substitute(q.expr, values)) and q.panel not in MAY_BE_EMPTY:
            empty.append(f"{q.name}: {q.expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_prometheus_variables_find_the_compose_pods(prometheus: str) -> None:
    dashboard = load_dashboard()
    values = dashboard_variables(dashboard, namespace="compose", role="router|shard|node")
    found = {}
    for name, (selector, label) in variable_queries(dashboard).items():
        found[name] = {s["metric"].get(label) for s in _prom_query(prometheus, substitute(selector, values))}
    assert found["namespace"] == {"compose"}, found
    assert found["pod"] == {"router", "shard-0", "shard-1", "shard-2"}, found
    up = {s["metric"]["pod"]: s["value"][1] for s in _prom_query(prometheus, 'up{namespace="compose"}')}
    assert up == {"router": "1", "shard-0": "1", "shard-1": "0", "shard-2": "0"}, up
