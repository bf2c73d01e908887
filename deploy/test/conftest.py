"""Shared helpers of the deploy tests (pytest, run from the repository root).

- ``REPO``, ``CHART``, ``VALUES_DIR``: paths.
- ``helm`` fixture: a working ``helm`` binary (``$HELM``, then
  ``.cache/tools/bin/helm``, then ``PATH``; fetched with
  ``deploy/tools/get-helm.sh`` when none is found).
- ``Rendered``: a parsed ``helm template`` with look-ups by kind and name.
- ``render`` fixture: ``render(values=None, files=(), namespace=..., release=...)``.
- ``docker_available()`` / ``image_present(name)``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "ruvector"
VALUES_DIR = Path(__file__).resolve().parent / "values"
DEFAULT_HELM_DIR = REPO / ".cache" / "tools" / "bin"

# The value sets every chart test runs against (deploy/test/values/*.yaml).
VALUE_SETS = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))


def _helm_works(path: str | os.PathLike[str]) -> bool:
    try:
        out = subprocess.run([str(path), "version", "--short"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0


def find_helm() -> str:
    """A working helm binary, fetching one into .cache/tools/bin if needed."""
    candidates = [os.environ.get("HELM"), str(DEFAULT_HELM_DIR / "helm"), shutil.which("helm")]
    for candidate in candidates:
        if candidate and _helm_works(candidate):
            return candidate
    script = REPO / "deploy" / "tools" / "get-helm.sh"
    result = subprocess.run([str(script), str(DEFAULT_HELM_DIR)], capture_output=True, text=True)
    if result.returncode != 0 or not _helm_works(DEFAULT_HELM_DIR / "helm"):
        raise RuntimeError(f"no helm binary and {script} failed:\n{result.stdout}\n{result.stderr}")
    return str(DEFAULT_HELM_DIR / "helm")


@pytest.fixture(scope="session")
def helm() -> str:
    return find_helm()


@dataclass
class Rendered:
    """The documents of one ``helm template`` run."""

    docs: list[dict[str, Any]]
    namespace: str
    release: str
    values: dict[str, Any]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """The only document of ``kind`` (named ``name`` when given)."""
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
        return found[0]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [d for d in self.all(kind) if d["metadata"]["name"] == name]
        return found[0] if found else None

    def by_component(self, kind: str, component: str) -> dict[str, Any]:
        found = [
            d
            for d in self.all(kind)
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"expected one {kind} with component {component}, found {len(found)}"
        return found[0]


def helm_template(
    helm: str,
    values: dict[str, Any] | None = None,
    files: Iterable[str | os.PathLike[str]] = (),
    namespace: str = "ruvector",
    release: str = "rv",
    extra_args: Iterable[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Runs ``helm template``; ``values`` is written to a file (types kept)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [helm, "template", release, str(CHART), "--namespace", namespace]
        for f in files:
            args += ["-f", str(f)]
        if values:
            path = Path(tmp) / "values.yaml"
            path.write_text(yaml.safe_dump(values))
            args += ["-f", str(path)]
        args += list(extra_args)
        return subprocess.run(args, capture_output=True, text=True, timeout=60)


def values_file(name: str) -> Path:
    return VALUES_DIR / f"{name}.yaml"


@pytest.fixture(scope="session")
def render(helm: str):
    """``render(values=None, files=(), namespace="ruvector", release="rv")``
    → ``Rendered``; fails the test with helm's stderr when helm fails."""

    def _render(
        values: dict[str, Any] | None = None,
        files: Iterable[str | os.PathLike[str]] = (),
        namespace: str = "ruvector",
        release: str = "rv",
        extra_args: Iterable[str] = (),
    ) -> Rendered:
        files = list(files)
        result = helm_template(helm, values, files, namespace, release, extra_args)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        merged: dict[str, Any] = {}
        for f in files:
            merged.update(yaml.safe_load(Path(f).read_text()) or {})
        merged.update(values or {})
        return Rendered(docs=docs, namespace=namespace, release=release, values=merged)

    return _render


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def dump(obj: Any) -> str:
    """Compact JSON for assertion messages."""
    return json.dumps(obj, sort_keys=True)[:2000]
