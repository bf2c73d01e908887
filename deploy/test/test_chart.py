"""Checks of the helm chart helm/ruvector, offline (no Kubernetes).

    pytest deploy/test/test_chart.py

Every value set in deploy/test/values/ is linted (`helm lint --strict`),
rendered, and validated against the Kubernetes API schemas
(`kubernetes-validate --strict`, Kubernetes 1.30 — the chart's minimum —
and the newest version shipped); the ServiceMonitor (a CRD) is checked
structurally. The other tests assert what the chart promises: the routers'
shard list is exactly the StatefulSet's pod DNS names, probes, the
restricted security context, PDBs, checksums, shutdown timing, the values
schema, and that the rendered TOML only uses keys the binaries know (read
from the Rust sources).
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib
from typing import Any

import pytest
import yaml

from conftest import CHART, REPO, VALUE_SETS, Rendered, dump, helm_template, values_file

KUBE_MIN = "1.30.0"
KUBE_LATEST = "1.37.0"
CRD_KINDS = {"ServiceMonitor"}
# The kubernetes-validate CLI of this interpreter's installation.
KUBERNETES_VALIDATE = [sys.executable, "-m", "kubernetes_validate"]
NODE_UID = 10001


# ---------------------------------------------------------------- helpers


def workloads(r: Rendered) -> list[dict[str, Any]]:
    return r.all("Deployment") + r.all("StatefulSet")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "Pod":
        return workload["spec"]
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, dump(containers)
    return containers[0]


def config_map(r: Rendered) -> dict[str, Any]:
    return r.one("ConfigMap")


def node_toml(r: Rendered) -> dict[str, Any]:
    return tomllib.loads(config_map(r)["data"]["node.toml"])


def router_toml(r: Rendered) -> dict[str, Any]:
    return tomllib.loads(config_map(r)["data"]["router.toml"])


def shard_sts(r: Rendered) -> dict[str, Any]:
    return r.by_component("StatefulSet", "shard")


def router_deploy(r: Rendered) -> dict[str, Any]:
    return r.by_component("Deployment", "router")


def mounted_config(r: Rendered, workload: dict[str, Any]) -> tuple[str, str]:
    """(path of the file given to --config, its content from the ConfigMap)."""
    c = container(workload)
    args = c["args"]
    path = args[args.index("--config") + 1]
    mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == mount["name"])
    cm = volume["configMap"]
    assert cm["name"] == config_map(r)["metadata"]["name"]
    rel = path[len(mount["mountPath"].rstrip("/")) + 1 :]
    item = next(i for i in cm["items"] if i["path"] == rel)
    return path, config_map(r)["data"][item["key"]]


def env_of(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(workload).get("env", [])}


def rust_fields(path: str, struct: str) -> set[str]:
    """The field names of `pub struct <struct> { ... }` in a Rust source."""
    source = (REPO / path).read_text()
    match = re.search(r"pub struct " + struct + r" \{(.*?)\n\}", source, re.S)
    assert match, f"struct {struct} not found in {path}"
    return set(re.findall(r"^\s*pub (\w+):", match.group(1), re.M))


def expected_shard_urls(r: Rendered) -> list[str]:
    """The pod DNS names Kubernetes gives the StatefulSet's pods."""
    sts = shard_sts(r)
    name = sts["metadata"]["name"]
    service = sts["spec"]["serviceName"]
    port = next(p["containerPort"] for p in container(sts)["ports"] if p["name"] == "http")
    domain = r.values.get("clusterDomain", "cluster.local")
    return [
        f"http://{name}-{i}.{service}.{r.namespace}.svc.{domain}:{port}" for i in range(sts["spec"]["replicas"])
    ]


# ---------------------------------------------------------- lint, schemas


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint_strict(helm, value_set):
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), "-f", str(values_file(value_set)), "--namespace", "ruvector"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_value_sets_exist():
    assert {"defaults", "single", "cluster-5-observed", "existing-secret"} <= set(VALUE_SETS)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_kubernetes_validate_strict(render, tmp_path, value_set):
    r = render(files=[values_file(value_set)])
    plain = [d for d in r.docs if d["kind"] not in CRD_KINDS]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(plain))
    for version in (KUBE_MIN, KUBE_LATEST):
        result = subprocess.run(
            [*KUBERNETES_VALIDATE, "--strict", "--quiet", "-k", version, str(path)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"Kubernetes {version}:\n{result.stdout}{result.stderr}"


def test_kubernetes_validate_catches_a_bad_field(render, tmp_path):
    """The validator is strict: a misspelt field in a rendered pod fails."""
    r = render()
    sts = shard_sts(r)
    container(sts)["lifecycle"]["preStop"]["slep"] = container(sts)["lifecycle"]["preStop"].pop("sleep")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sts))
    result = subprocess.run(
        [*KUBERNETES_VALIDATE, "--strict", "--quiet", "-k", KUBE_MIN, str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_kube_version_floor(helm):
    """The native preStop sleep needs Kubernetes 1.30; older clusters are refused."""
    assert helm_template(helm, extra_args=["--kube-version", "1.29.0"]).returncode != 0
    assert helm_template(helm, extra_args=["--kube-version", "1.30.0"]).returncode == 0
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"].startswith(">=1.30")


@pytest.mark.parametrize(
    "values, why",
    [
        ({"shards": {"replicas": 0}}, "zero shards"),
        ({"shards": {"replicas": -2}}, "negative shards"),
        ({"shards": {"replicas": "3"}}, "shards as a string"),
        ({"shards": {"replicas": 2.5}}, "fractional shards"),
        ({"mode": "sharded"}, "unknown mode"),
        ({"logFormat": "xml"}, "unknown log format"),
        ({"image": {"pullPolicy": "Sometimes"}}, "bad pull policy"),
        ({"node": {"config": {"storage": {"fsync": "never"}}}}, "bad fsync"),
        ({"node": {"config": {"storage": {"fsync": "interval", "fsyncIntervalMs": 0}}}}, "zero fsync interval"),
        ({"node": {"config": {"storage": {"fsync": {"intervalMs": 5}}}}}, "fsync as a map"),
        ({"node": {"config": {"shutdownTimeoutSeconds": "30"}}}, "timeout as a string"),
        ({"node": {"persistence": {"size": "lots"}}}, "bad volume size"),
        ({"limits": {"max_kk": 5}}, "unknown limit (the server rejects it)"),
        ({"router": {"config": {"vnodes": 0}}}, "zero vnodes"),
        ({"router": {"config": {"tls": True}}}, "unknown router key (the router rejects it)"),
        ({"shard": {"replicas": 3}}, "misspelt top-level key"),
        ({"auth": {"apiKey": "   "}}, "blank API key (the router rejects it)"),
        ({"service": {"port": 70000}}, "port out of range"),
    ],
)
def test_schema_rejects(helm, values, why):
    result = helm_template(helm, values)
    assert result.returncode != 0, f"accepted {why}: {values}"
    assert "schema" in result.stderr.lower(), result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"shards": {"replicas": 1}},
        {"shards": {"replicas": 64}},
        {"node": {"config": {"storage": {"fsync": "interval", "fsyncIntervalMs": 5}}}},
        {"limits": {"max_k": 100, "max_dimension": 4096}},
        {"node": {"pdb": {"maxUnavailable": None, "minAvailable": "50%"}}},
    ],
)
def test_schema_accepts(helm, values):
    result = helm_template(helm, values)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------ shard list


@pytest.mark.parametrize("replicas", range(1, 8))
def test_router_shard_list_is_the_statefulset_pod_dns_names(render, replicas):
    r = render({"shards": {"replicas": replicas}}, namespace=f"team-{replicas}", release="vec")
    sts = shard_sts(r)
    assert sts["spec"]["replicas"] == replicas
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    headless = r.one("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert [p["port"] for p in headless["spec"]["ports"]] == [8080]

    urls = router_toml(r)["router"]["shards"]
    assert urls == expected_shard_urls(r)
    assert len(set(urls)) == replicas
    # The router reads exactly this file.
    path, content = mounted_config(r, router_deploy(r))
    assert tomllib.loads(content)["router"]["shards"] == urls
    assert container(router_deploy(r))["args"][0] == "router"


def test_shard_list_follows_cluster_domain_and_names(render):
    r = render(
        {"clusterDomain": "corp.internal", "fullnameOverride": "vdb", "shards": {"replicas": 2}},
        namespace="search",
    )
    assert router_toml(r)["router"]["shards"] == [
        "http://vdb-shard-0.vdb-shard-headless.search.svc.corp.internal:8080",
        "http://vdb-shard-1.vdb-shard-headless.search.svc.corp.internal:8080",
    ]
    assert router_toml(r)["router"]["shards"] == expected_shard_urls(r)


def test_long_release_names_keep_pod_dns_labels_short(render):
    r = render(release="a-very-long-release-name-that-goes-on-and-on-and-on", values={"shards": {"replicas": 12}})
    for url in router_toml(r)["router"]["shards"]:
        host = url.split("//")[1].split(":")[0]
        for label in host.split("."):
            assert 0 < len(label) <= 63, url


def test_placement_annotation_tracks_what_placement_depends_on(render):
    """`helm upgrade` compares this annotation (via lookup) to refuse what
    cannot move online; it must change with the shard URLs' form, vnodes
    and the replication factor, and only then."""

    def placement(values, **kw):
        return shard_sts(render(values, **kw))["metadata"]["annotations"]["ruvector.io/placement"]

    base = placement({})
    # The shard count is not in it: the routers move partitions online.
    assert placement({"shards": {"replicas": 4}}) == base
    assert placement({"router": {"config": {"replicationFactor": 2}}}) != base
    assert placement({"router": {"config": {"vnodes": 1024}}}) != base
    assert placement({"clusterDomain": "other.local"}) != base
    assert placement({}, namespace="elsewhere") != base
    assert placement({"node": {"resources": {"limits": {"memory": "8Gi"}}}}) == base
    assert placement({"router": {"replicas": 5}, "auth": {"apiKey": "k"}}) == base


def test_resharding_is_documented(helm):
    notes = subprocess.run(
        [helm, "install", "rv", str(CHART), "--dry-run=client", "--namespace", "ruvector"],
        capture_output=True,
        text=True,
    )
    assert notes.returncode == 0, notes.stderr
    text = " ".join(notes.stdout.split("NOTES:", 1)[1].split())
    assert "shards.drain" in text and "ruvector cluster --url <router> --wait" in text
    assert "shards.acknowledgeResharding" in text
    readme = (CHART / "README.md").read_text()
    assert "shards.replicas" in readme and "acknowledgeResharding" in readme and "shards.drain" in readme
    values = (CHART / "values.yaml").read_text()
    assert "drain: 0" in values


def test_drain_lists_the_highest_ordinals_for_the_routers(helm, render):
    urls = router_toml(render({"shards": {"replicas": 4}}))["router"]["shards"]
    assert "drain" not in router_toml(render({"shards": {"replicas": 4}}))["router"]
    draining = render({"shards": {"replicas": 4, "drain": 1}})
    assert router_toml(draining)["router"]["drain"] == urls[3:]
    assert shard_sts(draining)["metadata"]["annotations"]["ruvector.io/draining"] == "1"
    two = router_toml(render({"shards": {"replicas": 4, "drain": 2}}))["router"]["drain"]
    assert two == urls[2:]
    too_many = helm_template(helm, {"shards": {"replicas": 3, "drain": 2}, "router": {"config": {"replicationFactor": 2}}})
    assert too_many.returncode != 0 and "shards.drain" in too_many.stderr


# ------------------------------------------------- config the binaries read


def test_router_toml_uses_only_router_keys(render):
    """The router's [router] table rejects unknown keys (deny_unknown_fields)."""
    r = render(files=[values_file("cluster-5-observed")])
    table = router_toml(r)
    assert set(table) == {"router"}
    known = rust_fields("crates/router/src/config.rs", "RouterConfig")
    assert set(table["router"]) <= known, set(table["router"]) - known
    limits = rust_fields("crates/api/src/limits.rs", "Limits")
    assert set(table["router"]["limits"]) <= limits
    assert table["router"]["limits"] == {"max_k": 1000, "max_batch": 5000}
    assert table["router"]["request_timeout_ms"] == 20000
    assert table["router"]["addr"] == "0.0.0.0:8080"
    assert "api_key" not in table["router"], "keys belong in the Secret, not the ConfigMap"


def test_node_toml_uses_only_node_keys(render):
    r = render(files=[values_file("cluster-5-observed")])
    table = node_toml(r)
    assert set(table) <= rust_fields("crates/server/src/config.rs", "ServerConfig")
    assert set(table["storage"]) <= rust_fields("crates/server/src/config.rs", "StorageConfig")
    assert set(table["limits"]) <= rust_fields("crates/api/src/limits.rs", "Limits")
    assert table["storage"]["fsync"] == {"interval_ms": 20}
    assert table["storage"]["insert_threads"] == 4
    assert table["shutdown_timeout_secs"] == 45
    assert table["limits"] == {"max_k": 1000, "max_batch": 5000}
    assert (table["addr"], table["data_dir"]) == ("0.0.0.0:8080", "/data")
    assert "api_key" not in table


def test_default_node_toml(render):
    table = node_toml(render())
    assert table["storage"] == {
        "fsync": "always",
        "checkpoint_wal_bytes": 268435456,
        "checkpoint_interval_secs": 5,
        "compact_min_bytes": 16777216,
    }
    assert table["limits"] == {}
    assert table["shutdown_timeout_secs"] == 30


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_run_the_right_subcommand_with_their_config(render, value_set):
    r = render(files=[values_file(value_set)])
    log_format = r.values.get("logFormat", "json")
    for w in workloads(r):
        args = container(w)["args"]
        component = w["metadata"]["labels"]["app.kubernetes.io/component"]
        assert args[0] == {"router": "router", "shard": "serve", "node": "serve"}[component]
        assert args[args.index("--log-format") + 1] == log_format
        path, content = mounted_config(r, w)
        tomllib.loads(content)
        if component != "router":
            mounts = {m["mountPath"]: m["name"] for m in container(w)["volumeMounts"]}
            assert mounts["/data"] == "data"
            assert [t["metadata"]["name"] for t in w["spec"]["volumeClaimTemplates"]] == ["data"]
            assert tomllib.loads(content)["data_dir"] == "/data"


# --------------------------------------------------------------- probes


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes(render, value_set):
    r = render(files=[values_file(value_set)])
    for w in workloads(r):
        c = container(w)
        component = w["metadata"]["labels"]["app.kubernetes.io/component"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": 8080}
        paths = {}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert get["port"] in ports or get["port"] in ports.values(), get
            paths[probe] = get["path"]
        # Readiness is the pod's own /ready (never a peer's); liveness /health.
        assert paths["readinessProbe"] == "/ready"
        assert paths["livenessProbe"] == "/health"
        assert "host" not in c["readinessProbe"]["httpGet"]
        if component in ("shard", "node"):
            # Recovery gates startup: /started stays 503 until the data is
            # loaded (/ready also waits for the partitions' catch-up, which
            # needs a router: not a reason to restart the pod).
            assert paths["startupProbe"] == "/started"
            s = c["startupProbe"]
            assert s["periodSeconds"] * s["failureThreshold"] >= 600, s
        else:
            assert paths["startupProbe"] == "/health"


def test_startup_budget_is_configurable(render):
    r = render({"node": {"startupProbe": {"periodSeconds": 30, "failureThreshold": 240, "timeoutSeconds": 5}}})
    s = container(shard_sts(r))["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] == 7200


# -------------------------------------------------------------- security


def assert_restricted(spec: dict[str, Any], where: str) -> None:
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True, where
    assert (psc["runAsUser"], psc["runAsGroup"]) == (NODE_UID, NODE_UID), where
    assert psc["fsGroup"] == NODE_UID and psc["fsGroupChangePolicy"] == "OnRootMismatch", where
    assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
    assert spec.get("automountServiceAccountToken") is False, where
    assert spec.get("enableServiceLinks") is False, where
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
    assert not spec.get("initContainers"), f"{where}: no init containers"
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["runAsNonRoot"] is True and sc.get("privileged") in (None, False), where
        assert sc.get("runAsUser", NODE_UID) != 0, where
        tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
        volume = next(v for v in spec["volumes"] if v["name"] == tmp["name"])
        assert "emptyDir" in volume, where
    for v in spec.get("volumes", []):
        assert "hostPath" not in v, where


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pod_security_restricted(render, value_set):
    r = render(files=[values_file(value_set)])
    pods = workloads(r) + r.all("Pod")
    assert pods
    for w in pods:
        assert_restricted(pod_spec(w), f"{value_set}: {w['kind']} {w['metadata']['name']}")


# ------------------------------------------------------------------ PDBs


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pdbs(render, value_set):
    r = render(files=[values_file(value_set)])
    pdbs = r.all("PodDisruptionBudget")
    assert len(pdbs) == len(workloads(r)) == (1 if r.values.get("mode") == "single" else 2)
    for w in workloads(r):
        pod_labels = w["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()]
        assert len(matching) == 1, f"{w['metadata']['name']}: {len(matching)} PDBs select it"
        spec = matching[0]["spec"]
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert spec.get("maxUnavailable") == 1 and "minAvailable" not in spec
        # A PDB's selector must not reach the other component's pods.
        for other in workloads(r):
            if other is not w:
                assert not spec["selector"]["matchLabels"].items() <= other["spec"]["template"]["metadata"][
                    "labels"
                ].items()


def test_pdb_min_available_and_both_refused(helm, render):
    r = render({"router": {"pdb": {"maxUnavailable": None, "minAvailable": 1}}})
    spec = r.by_component("PodDisruptionBudget", "router")["spec"]
    assert spec["minAvailable"] == 1 and "maxUnavailable" not in spec
    result = helm_template(helm, {"router": {"pdb": {"maxUnavailable": 1, "minAvailable": 1}}})
    assert result.returncode != 0 and "not both" in result.stderr


# ------------------------------------------------------------- checksums


def checksums(r: Rendered) -> dict[str, dict[str, str]]:
    return {
        w["metadata"]["labels"]["app.kubernetes.io/component"]: {
            k: v for k, v in w["spec"]["template"]["metadata"]["annotations"].items() if k.startswith("checksum/")
        }
        for w in workloads(r)
    }


def test_config_checksum_is_the_hash_of_the_mounted_file(render):
    r = render(files=[values_file("cluster-5-observed")])
    for w in workloads(r):
        _, content = mounted_config(r, w)
        # A literal block scalar adds one final newline to the template's text.
        want = hashlib.sha256(content.removesuffix("\n").encode()).hexdigest()
        assert w["spec"]["template"]["metadata"]["annotations"]["checksum/config"] == want


def test_checksums_change_with_config_and_secret(render):
    base = checksums(render({"auth": {"apiKey": "one"}}))
    assert set(base["shard"]) == set(base["router"]) == {"checksum/config", "checksum/secret"}

    node_change = checksums(render({"auth": {"apiKey": "one"}, "node": {"config": {"shutdownTimeoutSeconds": 60}}}))
    assert node_change["shard"]["checksum/config"] != base["shard"]["checksum/config"]
    assert node_change["router"] == base["router"], "a node setting must not roll the routers"

    router_change = checksums(render({"auth": {"apiKey": "one"}, "router": {"config": {"requestTimeoutMs": 3000}}}))
    assert router_change["router"]["checksum/config"] != base["router"]["checksum/config"]
    assert router_change["shard"] == base["shard"]

    shared = checksums(render({"auth": {"apiKey": "one"}, "limits": {"max_k": 50}}))
    assert shared["router"]["checksum/config"] != base["router"]["checksum/config"]
    assert shared["shard"]["checksum/config"] != base["shard"]["checksum/config"]

    more_shards = checksums(render({"auth": {"apiKey": "one"}, "shards": {"replicas": 4}}))
    assert more_shards["router"]["checksum/config"] != base["router"]["checksum/config"]

    key_change = checksums(render({"auth": {"apiKey": "two"}}))
    for component in ("shard", "router"):
        assert key_change[component]["checksum/secret"] != base[component]["checksum/secret"]
        assert key_change[component]["checksum/config"] == base[component]["checksum/config"]

    ro_change = checksums(render({"auth": {"apiKey": "one", "readOnlyApiKey": "ro"}}))
    assert ro_change["shard"]["checksum/secret"] != base["shard"]["checksum/secret"]

    unrelated = checksums(render({"auth": {"apiKey": "one"}, "router": {"replicas": 4}}))
    assert unrelated == base

    existing = checksums(render({"auth": {"existingSecret": "a"}}))
    other = checksums(render({"auth": {"existingSecret": "b"}}))
    assert existing["shard"]["checksum/secret"] != other["shard"]["checksum/secret"]


def test_checksum_of_single_node(render):
    a = checksums(render({"mode": "single"}))
    b = checksums(render({"mode": "single", "node": {"config": {"storage": {"checkpointIntervalSecs": 9}}}}))
    assert set(a) == {"node"}
    assert a["node"]["checksum/config"] != b["node"]["checksum/config"]


# ------------------------------------------------------- shutdown timing


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_termination_grace_covers_drain_and_checkpoint(render, value_set):
    r = render(files=[values_file(value_set)])
    shutdown = node_toml(r)["shutdown_timeout_secs"]
    for w in workloads(r):
        spec = pod_spec(w)
        c = container(w)
        pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 1 <= pre_stop <= 30
        assert "exec" not in c["lifecycle"]["preStop"], "the image has no shell or sleep binary"
        grace = spec["terminationGracePeriodSeconds"]
        if w["kind"] == "StatefulSet":
            # preStop, then the drain, then time left for the final checkpoint.
            assert grace > pre_stop + shutdown + 30, (grace, pre_stop, shutdown)
        else:
            timeout_s = router_toml(r)["router"]["request_timeout_ms"] / 1000
            assert grace > pre_stop + timeout_s


def test_termination_grace_follows_the_values(helm, render):
    r = render({"node": {"config": {"shutdownTimeoutSeconds": 120, "checkpointGraceSeconds": 300}}})
    assert pod_spec(shard_sts(r))["terminationGracePeriodSeconds"] == 5 + 120 + 300
    r = render({"node": {"terminationGracePeriodSeconds": 600}})
    assert pod_spec(shard_sts(r))["terminationGracePeriodSeconds"] == 600
    too_short = helm_template(helm, {"node": {"terminationGracePeriodSeconds": 30}})
    assert too_short.returncode != 0
    assert "terminationGracePeriodSeconds" in too_short.stderr


# ----------------------------------------------------------- API keys


def test_keys_in_a_chart_secret(render):
    r = render(files=[values_file("cluster-5-observed")])
    secret = r.one("Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"api-key": "rw-key-for-tests", "read-only-api-key": "ro-key-for-tests"}
    name = secret["metadata"]["name"]
    expect = {
        "shard": ("RUVECTOR_API_KEY", "RUVECTOR_READ_ONLY_API_KEY"),
        "router": ("RUVECTOR_ROUTER__API_KEY", "RUVECTOR_ROUTER__READ_ONLY_API_KEY"),
    }
    for component, (rw, ro) in expect.items():
        env = env_of(r.by_component("StatefulSet" if component == "shard" else "Deployment", component))
        assert env[rw]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "api-key"}
        assert env[ro]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "read-only-api-key"}
        assert not [k for k in env if "API_KEY" in k and k not in (rw, ro)]
    check = r.one("Pod")
    assert env_of(check)["RUVECTOR_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "api-key"}
    # Not in the ConfigMap, not in plain env.
    assert "rw-key-for-tests" not in yaml.safe_dump(config_map(r))
    for w in workloads(r):
        assert "rw-key-for-tests" not in yaml.safe_dump(w)


def test_keys_from_an_existing_secret(render):
    r = render(files=[values_file("existing-secret")])
    assert r.all("Secret") == []
    shard = env_of(shard_sts(r))
    router = env_of(router_deploy(r))
    assert shard["RUVECTOR_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "ruvector-keys", "key": "rw"}
    assert router["RUVECTOR_ROUTER__API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "ruvector-keys", "key": "rw"}
    for env, name in ((shard, "RUVECTOR_READ_ONLY_API_KEY"), (router, "RUVECTOR_ROUTER__READ_ONLY_API_KEY")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "ruvector-keys", "key": "ro", "optional": True}
    assert env_of(r.one("Pod"))["RUVECTOR_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "ruvector-keys"
    # extraEnv reaches every ruvector container, after the keys.
    assert shard["RUST_LOG"]["value"] == router["RUST_LOG"]["value"] == "info,ruvector=debug"


def test_no_keys_no_secret(render):
    r = render()
    assert r.all("Secret") == []
    for w in workloads(r):
        assert not [k for k in env_of(w) if "API_KEY" in k]
        assert "checksum/secret" not in w["spec"]["template"]["metadata"]["annotations"]


def test_read_only_key_alone_is_refused(helm):
    result = helm_template(helm, {"auth": {"readOnlyApiKey": "ro"}})
    assert result.returncode != 0 and "auth.apiKey" in result.stderr


# ----------------------------------------------------------- storage


def test_storage_class_and_size(render):
    r = render(files=[values_file("existing-secret")])
    claim = shard_sts(r)["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["annotations"] == {"backup.example.com/enabled": "true"}

    default = shard_sts(render())["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in default["spec"]
    assert default["spec"]["resources"]["requests"]["storage"] == "10Gi"

    none = shard_sts(render({"node": {"persistence": {"storageClass": "-"}}}))["spec"]["volumeClaimTemplates"][0]
    assert none["spec"]["storageClassName"] == ""
    policy = shard_sts(render())["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}


# ---------------------------------------------------------- single mode


def test_single_mode(render):
    r = render({"mode": "single", "shards": {"replicas": 5}})
    assert r.all("Deployment") == [] and r.all("HorizontalPodAutoscaler") == []
    sts = r.one("StatefulSet")
    assert sts["metadata"]["labels"]["app.kubernetes.io/component"] == "node"
    assert sts["spec"]["replicas"] == 1
    assert container(sts)["args"][0] == "serve"
    assert "router.toml" not in config_map(r)["data"]
    assert "ruvector.io/placement" not in sts["metadata"].get("annotations", {})
    service = r.one("Service", "rv-ruvector")
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    headless = r.one("Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    args = container(r.one("Pod"))["args"]
    assert args[:3] == ["check", "--url", "http://rv-ruvector:8080"]


def test_cluster_service_selects_routers_only(render):
    r = render()
    service = r.one("Service", "rv-ruvector")
    selector = service["spec"]["selector"].items()
    assert selector <= router_deploy(r)["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= shard_sts(r)["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_helm_test_pod_runs_check_through_the_service(render):
    r = render({"service": {"port": 9000}})
    pod = r.one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    args = container(pod)["args"]
    assert args[0] == "check"
    service = r.one("Service", "rv-ruvector")
    assert args[args.index("--url") + 1] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert service["spec"]["ports"][0]["port"] == 9000


# -------------------------------------------------------- labels, image


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_standard_labels(render, value_set):
    r = render(files=[values_file(value_set)])
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for d in r.docs:
        labels = d["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ruvector", d["metadata"]["name"]
        assert labels["app.kubernetes.io/instance"] == "rv"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == chart["appVersion"]
        assert labels["helm.sh/chart"] == f"ruvector-{chart['version']}"
    for w in workloads(r) + r.all("Pod"):
        labels = w["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] in ("router", "shard", "node", "test")
    for w in workloads(r):
        selector = w["spec"]["selector"]["matchLabels"]
        assert selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        assert "app.kubernetes.io/version" not in selector, "selectors are immutable; version changes"


def test_version_label_is_a_valid_label_value(render):
    r = render({"image": {"tag": "0.2.0@sha256:" + "a" * 64}})
    for d in r.docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1.0"
    assert container(shard_sts(r))["image"] == "ruvector:0.2.0@sha256:" + "a" * 64
    r = render({"image": {"tag": "v0.2.0-rc1"}})
    assert shard_sts(r)["metadata"]["labels"]["app.kubernetes.io/version"] == "v0.2.0-rc1"


def test_image(render):
    r = render()
    for w in workloads(r) + r.all("Pod"):
        c = container(w)
        assert c["image"] == "ruvector:0.1.0"
        assert c["imagePullPolicy"] == "IfNotPresent"
        assert "command" not in c, "the image's ENTRYPOINT is ruvector"
    r = render({"image": {"repository": "registry.example/ruvector", "tag": "abc"}}, files=[values_file("existing-secret")])
    for w in workloads(r) + r.all("Pod"):
        assert container(w)["image"] == "registry.example/ruvector:abc"
        assert pod_spec(w)["imagePullSecrets"] == [{"name": "registry-credentials"}]
        assert pod_spec(w)["serviceAccountName"] == "ruvector-runner"
    assert r.all("ServiceAccount") == []


# --------------------------------------------------------- scheduling


def test_default_spreading(render):
    r = render()
    for w in workloads(r):
        spec = pod_spec(w)
        labels = w["spec"]["template"]["metadata"]["labels"]
        pref = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        term = pref[0]["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"].items() <= labels.items()
        tsc = spec["topologySpreadConstraints"][0]
        assert tsc["labelSelector"]["matchLabels"].items() <= labels.items()
        assert tsc["whenUnsatisfiable"] == "ScheduleAnyway"


def test_hard_anti_affinity_node_selector_tolerations(render):
    r = render(files=[values_file("existing-secret")], values={"nodeSelector": {"pool": "a"}})
    spec = pod_spec(shard_sts(r))
    required = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    assert spec["nodeSelector"] == {"pool": "a", "workload": "vectors"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert pod_spec(router_deploy(r))["nodeSelector"] == {"pool": "a"}
    assert "tolerations" not in pod_spec(router_deploy(r))
    assert shard_sts(r)["spec"]["template"]["metadata"]["annotations"]["example.com/team"] == "search"


# ------------------------------------------------------- HPA, monitoring


def test_hpa(render):
    r = render(files=[values_file("cluster-5-observed")])
    hpa = r.one("HorizontalPodAutoscaler")
    deploy = router_deploy(r)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deploy["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert "replicas" not in deploy["spec"], "the HPA owns the replica count"
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert render().all("HorizontalPodAutoscaler") == []
    assert router_deploy(render())["spec"]["replicas"] == 2


@pytest.mark.parametrize("mode", ["cluster", "single"])
def test_service_monitor(render, mode):
    r = render({"mode": mode}, files=[values_file("cluster-5-observed")])
    sm = r.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [r.namespace]}
    selector = sm["spec"]["selector"]["matchLabels"]
    selected = [s for s in r.all("Service") if selector.items() <= s["metadata"]["labels"].items()]
    # Every pod is scraped through exactly one Service.
    for w in workloads(r):
        pod_labels = w["spec"]["template"]["metadata"]["labels"]
        through = [s for s in selected if s["spec"]["selector"].items() <= pod_labels.items()]
        assert len(through) == 1, (w["metadata"]["name"], [s["metadata"]["name"] for s in through])
    assert len(selected) == len(workloads(r))
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
    for s in selected:
        assert endpoint["port"] in [p["name"] for p in s["spec"]["ports"]]
    relabel = {x["targetLabel"]: x["sourceLabels"] for x in endpoint["relabelings"]}
    assert relabel["namespace"] == ["__meta_kubernetes_namespace"]
    assert relabel["pod"] == ["__meta_kubernetes_pod_name"]
    assert relabel["role"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    for x in endpoint["relabelings"]:
        assert x.get("action", "replace") == "replace"
        assert set(x) <= {"sourceLabels", "targetLabel", "action", "regex", "replacement", "separator"}
    roles = {w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads(r)}
    assert roles == ({"router", "shard"} if mode == "cluster" else {"node"})
    assert render().all("ServiceMonitor") == []


def test_network_policies(render):
    r = render(files=[values_file("cluster-5-observed")])
    policies = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in r.all("NetworkPolicy")}
    assert set(policies) == {"router", "shard"}
    router_labels = router_deploy(r)["spec"]["template"]["metadata"]["labels"]
    shard_labels = shard_sts(r)["spec"]["template"]["metadata"]["labels"]
    check_labels = r.one("Pod")["metadata"]["labels"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    apps = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}

    shard = policies["shard"]["spec"]
    assert shard["podSelector"]["matchLabels"].items() <= shard_labels.items()
    (rule,) = shard["ingress"]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    pod_peers = [p["podSelector"]["matchLabels"] for p in rule["from"] if "podSelector" in p]
    assert len(pod_peers) == 1 and pod_peers[0].items() <= router_labels.items()
    assert not pod_peers[0].items() <= check_labels.items()
    assert monitoring in rule["from"] and apps not in rule["from"]

    router = policies["router"]["spec"]
    assert router["podSelector"]["matchLabels"].items() <= router_labels.items()
    (rule,) = router["ingress"]
    assert apps in rule["from"] and monitoring in rule["from"]
    assert any(p.get("podSelector", {}).get("matchLabels", {}).items() <= check_labels.items() for p in rule["from"] if "podSelector" in p)

    open_router = render({"networkPolicy": {"enabled": True}})
    rule = open_router.by_component("NetworkPolicy", "router")["spec"]["ingress"][0]
    assert "from" not in rule, "no clientsFrom: any client may reach the routers"
    assert render().all("NetworkPolicy") == []


def test_replication_settings_reach_the_router_and_are_checked(helm, render):
    r = render({"shards": {"replicas": 3}, "router": {"config": {"replicationFactor": 2, "writeQuorum": 1}}})
    router = router_toml(r)["router"]
    assert (router["replication_factor"], router["write_quorum"], router["repair_interval_ms"]) == (2, 1, 30000)
    default = router_toml(render())["router"]
    assert default["replication_factor"] == 1 and "write_quorum" not in default
    assert (default["tombstone_grace_ms"], default["tombstone_horizon_ms"]) == (300000, 86400000)
    assert default["health_interval_ms"] == 1000
    tuned = render({"router": {"config": {"tombstoneGraceMs": 1000, "tombstoneHorizonMs": 0}}})
    assert (router_toml(tuned)["router"]["tombstone_grace_ms"], router_toml(tuned)["router"]["tombstone_horizon_ms"]) == (1000, 0)
    # The placement annotation changes with the replication factor (an
    # upgrade that changes it is refused like a shard count change).
    annotation = lambda rendered: rendered.one("StatefulSet")["metadata"]["annotations"]["ruvector.io/placement"]
    assert annotation(r) != annotation(render({"shards": {"replicas": 3}}))
    too_many = helm_template(helm, {"shards": {"replicas": 2}, "router": {"config": {"replicationFactor": 3}}})
    assert too_many.returncode != 0 and "exceeds shards.replicas" in too_many.stderr
    quorum = helm_template(helm, {"router": {"config": {"replicationFactor": 2, "writeQuorum": 3}}})
    assert quorum.returncode != 0 and "writeQuorum" in quorum.stderr
