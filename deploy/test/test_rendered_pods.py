"""The chart's pods start and serve, without Kubernetes.

    pytest deploy/test/test_rendered_pods.py

Renders helm/ruvector (defaults, 3 shards, image ruvector:local, API keys
set so the Secret is used), then runs the shard StatefulSet's pods and the
router Deployment's pods with `docker run`, translating exactly what the
manifests say:

- image, command/args; env, including `valueFrom` of the rendered Secret and
  ConfigMap; the container port (published on 127.0.0.1);
- runAsUser/runAsGroup, fsGroup (+ supplementalGroups) as added groups,
  readOnlyRootFilesystem, dropped capabilities, no privilege escalation,
  memory/CPU limits;
- volumes: a configMap volume becomes its items written to files and mounted
  read-only; an emptyDir a tmpfs; a volumeClaimTemplate a docker volume
  (tmpfs-backed) whose root is root:<fsGroup> mode 2775, as the kubelet leaves
  a fresh volume after applying fsGroup — so the pod only works because of
  fsGroup, as in Kubernetes;
- on a private docker network, each shard container carries its pod's DNS
  names (`<pod>.<headless svc>.<ns>.svc.cluster.local` and the shorter
  forms) as aliases and the pod name as hostname, each router the Service's
  names.

Then every probe of every container must answer 200, a create + upsert +
search through the router must work (and spread vectors over every shard),
and the `helm test` pod's container must exit 0.

Needs docker and the image `ruvector:local` (`deploy/local-image.sh`).
Without them the tests skip, unless RUVECTOR_REQUIRE_IMAGE=1 (CI), which
turns that into a failure. Containers, the network and volumes are named
with the process id and removed at the end, even on failure.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from conftest import VALUE_SETS, Rendered, docker_available, image_present, values_file

IMAGE_REPOSITORY = os.environ.get("RUVECTOR_IMAGE_REPOSITORY", "ruvector")
IMAGE_TAG = os.environ.get("RUVECTOR_IMAGE_TAG", "local")
IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
NAMESPACE = "ruvector-test"
RELEASE = "rv"
CLUSTER_DOMAIN = "cluster.local"
SHARDS = 3
API_KEY = "rendered-pods-rw-key"
READ_ONLY_KEY = "rendered-pods-ro-key"
RUN_ID = f"rvpods-{os.getpid()}"
# Upper bound on waiting for one container's startup probe (the chart allows
# 15 minutes for recovery; an empty node starts in well under a second).
STARTUP_CAP_S = 90.0


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def require_image() -> None:
    why = None
    if not docker_available():
        why = "docker is not available"
    elif not image_present(IMAGE):
        why = f"image {IMAGE} not found: build it with deploy/local-image.sh (CI builds it before the tests)"
    if why is None:
        return
    if os.environ.get("RUVECTOR_REQUIRE_IMAGE") == "1":
        pytest.fail(f"{why} (RUVECTOR_REQUIRE_IMAGE=1)", pytrace=False)
    pytest.skip(f"{why}; set RUVECTOR_REQUIRE_IMAGE=1 to make this a failure")


# ------------------------------------------------------ manifest → docker


@dataclass
class RunningPod:
    """One pod of a workload, running as a docker container."""

    name: str
    component: str
    container: str
    manifest: dict[str, Any]  # the container spec from the manifest
    ports: dict[str, int] = field(default_factory=dict)  # port name → host port

    def url(self, port: str = "http") -> str:
        return f"http://127.0.0.1:{self.ports[port]}"


def resolve_env(r: Rendered, spec: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would set it."""
    env: dict[str, str] = {}
    for entry in spec.get("env", []):
        name = entry["name"]
        if "value" in entry:
            env[name] = str(entry["value"])
            continue
        source = entry["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = r.maybe("Secret", ref["name"])
            data = (secret or {}).get("data", {})
            if ref["key"] in data:
                env[name] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                raise AssertionError(f"env {name}: Secret {ref['name']} key {ref['key']} is not rendered")
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = r.maybe("ConfigMap", ref["name"])
            data = (cm or {}).get("data", {})
            if ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                raise AssertionError(f"env {name}: ConfigMap {ref['name']} key {ref['key']} is not rendered")
        else:
            raise AssertionError(f"env {name}: unsupported source {source}")
    return env


def cpu_limit(value: str) -> float:
    cpus = float(value[:-1]) / 1000 if str(value).endswith("m") else float(value)
    return min(cpus, float(os.cpu_count() or 1))


def memory_limit(value: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, docker_suffix in units.items():
        if str(value).endswith(suffix):
            return str(value)[: -len(suffix)] + docker_suffix
    return str(value)


def size_to_docker(value: str) -> str:
    return memory_limit(value)


class Sandbox:
    """A docker network with the pods of one rendered release; tracks what
    it created so that `close` removes all of it."""

    def __init__(self, rendered: Rendered, workdir: Path, tag: str = "pods") -> None:
        self.r = rendered
        self.workdir = workdir
        self.prefix = f"{RUN_ID}-{tag}"
        self.network = f"{self.prefix}-net"
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.pods: list[RunningPod] = []
        docker("network", "create", "--label", f"ruvector-test={RUN_ID}", self.network)

    def close(self) -> None:
        for c in self.containers:
            docker("rm", "-f", "-v", c, check=False)
        for v in self.volumes:
            docker("volume", "rm", "-f", v, check=False)
        docker("network", "rm", self.network, check=False)

    def docker_args(self, pod_name: str, pod: dict[str, Any], spec: dict[str, Any], claims: list[dict]) -> list[str]:
        """`docker run` arguments for one container of a pod spec."""
        psc = pod.get("securityContext", {})
        csc = spec.get("securityContext", {})
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        assert uid is not None and gid is not None, "the chart must name the user and group"
        if csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            assert uid != 0
        args = ["--user", f"{uid}:{gid}"]
        fs_group = psc.get("fsGroup")
        for group in [fs_group, *psc.get("supplementalGroups", [])]:
            if group is not None:
                args += ["--group-add", str(group)]
        if csc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        for cap in csc.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", cap]
        for cap in csc.get("capabilities", {}).get("add", []):
            args += ["--cap-add", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        assert not csc.get("privileged")
        limits = spec.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += ["--memory", memory_limit(limits["memory"])]
        if "cpu" in limits:
            args += ["--cpus", f"{cpu_limit(limits['cpu']):.2f}"]
        if "terminationGracePeriodSeconds" in pod:
            args += ["--stop-timeout", str(pod["terminationGracePeriodSeconds"])]

        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claim_names = {c["metadata"]["name"] for c in claims}
        for mount in spec.get("volumeMounts", []):
            name, path = mount["name"], mount["mountPath"]
            if name in claim_names:
                volume = f"{self.prefix}-{name}-{pod_name}"
                claim = next(c for c in claims if c["metadata"]["name"] == name)
                size = size_to_docker(claim["spec"]["resources"]["requests"]["storage"])
                # A fresh filesystem's root is root's; the kubelet applies
                # fsGroup (group, setgid, g+rwx). volume-nocopy: Docker
                # must not copy the image's /data (and its owner) into it.
                mode = f"uid=0,gid={fs_group if fs_group is not None else 0},mode=2775,size={size}"
                docker(
                    "volume", "create", "--label", f"ruvector-test={RUN_ID}", "--driver", "local",
                    "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", f"o={mode}", volume,
                )  # fmt: skip
                self.volumes.append(volume)
                args += ["--mount", f"type=volume,src={volume},dst={path},volume-nocopy"]
                continue
            source = volumes[name]
            if "emptyDir" in source:
                size = source["emptyDir"].get("sizeLimit")
                opts = "rw,nosuid,nodev,mode=1777" + (f",size={size_to_docker(size)}" if size else "")
                args += ["--tmpfs", f"{path}:{opts}"]
            elif "configMap" in source:
                ref = source["configMap"]
                cm = self.r.one("ConfigMap", ref["name"])
                folder = self.workdir / f"{pod_name}-{name}"
                folder.mkdir()
                folder.chmod(0o755)
                items = ref.get("items") or [{"key": k, "path": k} for k in cm["data"]]
                for item in items:
                    target = folder / item["path"]
                    target.write_text(cm["data"][item["key"]])
                    target.chmod(ref.get("defaultMode", 0o644))
                args += ["-v", f"{folder}:{path}:ro"]
            else:
                raise AssertionError(f"volume {name}: unsupported kind {source}")

        for key, value in resolve_env(self.r, spec).items():
            args += ["-e", f"{key}={value}"]
        for port in spec.get("ports", []):
            args += ["-p", f"127.0.0.1::{port['containerPort']}"]
        if spec.get("command"):
            args += ["--entrypoint", spec["command"][0]]
        args.append(spec["image"])
        args += spec.get("command", [])[1:]
        args += spec.get("args", [])
        return args

    def run(
        self,
        pod_name: str,
        component: str,
        pod: dict[str, Any],
        claims: list[dict],
        aliases: list[str],
        detach: bool = True,
    ) -> RunningPod:
        (spec,) = pod["containers"]
        container = f"{self.prefix}-{pod_name}"
        args = [
            "run", "--name", container, "--hostname", pod_name[:63], "--network", self.network,
            "--label", f"ruvector-test={RUN_ID}",
        ]  # fmt: skip
        for alias in aliases:
            args += ["--network-alias", alias]
        if detach:
            args.append("--detach")
        self.containers.append(container)
        docker(*args, *self.docker_args(pod_name, pod, spec, claims), timeout=60 if detach else 300, check=detach)
        running = RunningPod(pod_name, component, container, spec)
        if detach:
            for port in spec.get("ports", []):
                out = docker("port", container, f"{port['containerPort']}/tcp", check=False)
                if out.returncode != 0:  # the container has already exited
                    state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container).stdout.strip()
                    raise AssertionError(f"{pod_name} is {state}:\n{self.logs(running)}")
                running.ports[port["name"]] = int(out.stdout.splitlines()[0].rsplit(":", 1)[1])
        self.pods.append(running)
        return running

    def logs(self, pod: RunningPod) -> str:
        out = docker("logs", "--tail", "40", pod.container, check=False)
        return out.stdout + out.stderr


def service_aliases(name: str, namespace: str) -> list[str]:
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"]


def wait_for_probe(sandbox: Sandbox, pod: RunningPod, probe: dict[str, Any]) -> None:
    get = probe["httpGet"]
    port = get["port"]
    host_port = pod.ports[port] if isinstance(port, str) else pod.ports[
        next(p["name"] for p in pod.manifest["ports"] if p["containerPort"] == port)
    ]
    url = f"http://127.0.0.1:{host_port}{get['path']}"
    budget = min(probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3), STARTUP_CAP_S)
    deadline = time.monotonic() + budget
    last = "no answer"
    while time.monotonic() < deadline:
        state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", pod.container).stdout.strip()
        if not state.startswith("running"):
            raise AssertionError(f"{pod.name} is {state}:\n{sandbox.logs(pod)}")
        try:
            response = requests.get(url, timeout=probe.get("timeoutSeconds", 1))
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.2)
    raise AssertionError(f"{pod.name}: {url} never answered 200 within {budget}s ({last}):\n{sandbox.logs(pod)}")


# ------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rendered(render) -> Rendered:
    require_image()
    return render(
        {
            "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG},
            "shards": {"replicas": SHARDS},
            "auth": {"apiKey": API_KEY, "readOnlyApiKey": READ_ONLY_KEY},
        },
        namespace=NAMESPACE,
        release=RELEASE,
    )


@pytest.fixture(scope="module")
def cluster(rendered: Rendered):
    """The rendered shards and routers, running; yields the Sandbox."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{RUN_ID}-"))
    workdir.chmod(0o755)
    sandbox = None
    try:
        sandbox = Sandbox(rendered, workdir)
        sts = rendered.by_component("StatefulSet", "shard")
        headless = sts["spec"]["serviceName"]
        for i in range(sts["spec"]["replicas"]):
            pod_name = f"{sts['metadata']['name']}-{i}"
            aliases = [pod_name, f"{pod_name}.{headless}", *[
                f"{pod_name}.{a}" for a in service_aliases(headless, NAMESPACE)[1:]
            ]]  # fmt: skip
            sandbox.run(pod_name, "shard", sts["spec"]["template"]["spec"], sts["spec"]["volumeClaimTemplates"], aliases)

        deploy = rendered.by_component("Deployment", "router")
        service = next(
            s
            for s in rendered.all("Service")
            if s["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
        )
        (service_port,) = service["spec"]["ports"]
        container_port = {p["name"]: p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]}
        # Docker aliases have no port mapping: the Service must map port to the same port.
        assert container_port[service_port["targetPort"]] == service_port["port"]
        for i in range(deploy["spec"]["replicas"]):
            pod_name = f"{deploy['metadata']['name']}-{i}"
            aliases = service_aliases(service["metadata"]["name"], NAMESPACE)
            sandbox.run(pod_name, "router", deploy["spec"]["template"]["spec"], [], aliases)

        for pod in sandbox.pods:
            wait_for_probe(sandbox, pod, pod.manifest["startupProbe"])
        yield sandbox
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(workdir, ignore_errors=True)


def routers(sandbox: Sandbox) -> list[RunningPod]:
    return [p for p in sandbox.pods if p.component == "router"]


def shards(sandbox: Sandbox) -> list[RunningPod]:
    return [p for p in sandbox.pods if p.component == "shard"]


# ---------------------------------------------------------------- tests


def test_every_probe_answers(cluster: Sandbox):
    assert len(shards(cluster)) == SHARDS and len(routers(cluster)) >= 1
    for pod in cluster.pods:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            wait_for_probe(cluster, pod, pod.manifest[probe])


def test_pods_run_as_the_manifest_says(cluster: Sandbox):
    for pod in cluster.pods:
        info = docker("inspect", "-f", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", pod.container).stdout.split()
        assert info == ["10001:10001", "true"], (pod.name, info)


def test_router_was_given_the_pod_dns_names(cluster: Sandbox, rendered: Rendered):
    sts = rendered.by_component("StatefulSet", "shard")
    want = [
        f"http://{sts['metadata']['name']}-{i}.{sts['spec']['serviceName']}.{NAMESPACE}.svc.{CLUSTER_DOMAIN}:8080"
        for i in range(SHARDS)
    ]
    for router in routers(cluster):
        # The cluster's layout is not public: any key (here the read-only one).
        assert requests.get(router.url() + "/cluster", timeout=10).status_code == 401
        status = requests.get(router.url() + "/cluster", headers={"api-key": READ_ONLY_KEY}, timeout=10).json()
        assert [s["address"] for s in status["shards"]] == want
        assert all(s["up"] for s in status["shards"]), status


def test_keys_from_the_secret_are_enforced(cluster: Sandbox):
    router = routers(cluster)[0]
    body = {"name": "denied", "dimension": 2, "metric": "l2"}
    assert requests.post(router.url() + "/collections", json=body, timeout=10).status_code == 401
    ro = {"api-key": READ_ONLY_KEY}
    assert requests.post(router.url() + "/collections", json=body, headers=ro, timeout=10).status_code == 403
    assert requests.get(router.url() + "/collections", headers=ro, timeout=10).status_code == 200
    shard = shards(cluster)[0]
    assert requests.get(shard.url() + "/collections", timeout=10).status_code == 401


def test_create_upsert_search_through_the_router(cluster: Sandbox):
    router = routers(cluster)[0]
    rw = {"api-key": API_KEY}
    name = f"pods-{os.getpid()}"
    dim = 8
    response = requests.post(
        router.url() + "/collections", json={"name": name, "dimension": dim, "metric": "euclidean"}, headers=rw, timeout=30
    )
    assert response.status_code == 201, response.text
    try:
        vectors = [{"id": i, "vector": [float(i), float(i % 7), *([i * 0.25] * (dim - 2))]} for i in range(300)]
        response = requests.post(
            router.url() + f"/collections/{name}/vectors", json={"vectors": vectors}, headers=rw, timeout=60
        )
        assert response.status_code == 201, response.text
        for target in (0, 137, 299):
            query = vectors[target]["vector"]
            for r in routers(cluster):
                hits = requests.post(
                    r.url() + f"/collections/{name}/search", json={"vector": query, "k": 3}, headers=rw, timeout=30
                )
                assert hits.status_code == 200, hits.text
                assert hits.json()[0]["id"] == target, hits.json()
        got = requests.get(router.url() + f"/collections/{name}/vectors/137", headers=rw, timeout=10)
        assert got.status_code == 200 and got.json()["vector"] == vectors[137]["vector"]
        # Every shard (reached by the router through its pod DNS name) holds part of the data.
        sizes = []
        for shard in shards(cluster):
            info = requests.get(shard.url() + f"/collections/{name}", headers=rw, timeout=10)
            assert info.status_code == 200, (shard.name, info.text)
            sizes.append(info.json()["size"])
        assert sum(sizes) == len(vectors) and min(sizes) > 0, sizes
    finally:
        requests.delete(router.url() + f"/collections/{name}", headers=rw, timeout=30)


def test_helm_test_pod_passes(cluster: Sandbox, rendered: Rendered):
    pod = rendered.one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    name = pod["metadata"]["name"]
    container = cluster.run(name, "test", pod["spec"], [], [], detach=False).container
    code = docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
    logs = docker("logs", container).stdout
    assert code == "0", f"exit {code}:\n{logs}{docker('logs', container).stderr}"
    assert "check passed" in logs


def test_a_shard_stops_cleanly_within_its_grace_period(cluster: Sandbox, rendered: Rendered):
    """SIGTERM (after the preStop sleep in Kubernetes): the node drains,
    checkpoints and exits 0 well within terminationGracePeriodSeconds."""
    sts = rendered.by_component("StatefulSet", "shard")
    grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    shard = shards(cluster)[-1]
    started = time.monotonic()
    docker("stop", "--time", str(grace), shard.container, timeout=grace + 30)
    took = time.monotonic() - started
    code = docker("inspect", "-f", "{{.State.ExitCode}}", shard.container).stdout.strip()
    assert code == "0", f"exit {code} after {took:.1f}s:\n{cluster.logs(shard)}"
    assert took < grace


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_value_set_starts(render, value_set):
    """The binary accepts the configuration every value set renders (the
    router rejects unknown keys; a bad value stops a node): each workload's
    first pod starts and passes its startup probe. Routers start without
    reachable shards."""
    require_image()
    r = render(
        {"image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG}},
        files=[values_file(value_set)],
        namespace=NAMESPACE,
        release=RELEASE,
    )
    existing = r.values.get("auth", {}).get("existingSecret")
    if existing:
        # Stands in for the Secret the operator creates.
        auth = r.values["auth"]
        data = {auth["existingSecretApiKeyKey"]: base64.b64encode(b"existing-rw").decode()}
        r.docs.append({"kind": "Secret", "metadata": {"name": existing}, "data": data})
    workdir = Path(tempfile.mkdtemp(prefix=f"{RUN_ID}-{value_set}-"))
    workdir.chmod(0o755)
    sandbox = None
    try:
        sandbox = Sandbox(r, workdir, tag=value_set)
        started = []
        for w in r.all("StatefulSet") + r.all("Deployment"):
            claims = w["spec"].get("volumeClaimTemplates", [])
            component = w["metadata"]["labels"]["app.kubernetes.io/component"]
            started.append(sandbox.run(f"{w['metadata']['name']}-0", component, w["spec"]["template"]["spec"], claims, []))
        assert started
        for pod in started:
            wait_for_probe(sandbox, pod, pod.manifest["startupProbe"])
            wait_for_probe(sandbox, pod, pod.manifest["livenessProbe"])
            if pod.component != "router":
                wait_for_probe(sandbox, pod, pod.manifest["readinessProbe"])
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(workdir, ignore_errors=True)
