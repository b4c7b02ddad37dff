#!/usr/bin/env bash
# Builds benchmarks/.bundle/ (git-ignored): the wheels that the GPU machine lacks for benchmarks/gpu_check.sh, for its
# CPython 3.12 on manylinux x86_64, each without its dependencies and at the version this project's venv has. Run it on a
# machine with a package index; the GPU machine has none. Then carry benchmarks/.bundle to the GPU machine with the
# working tree (both together under 60 MiB) and run benchmarks/gpu_check.sh there.
#
# The wheels: the dependency closure of the packages the check imports (the MLflow client as mlflow-skinny and
# mlflow-tracing, optuna, rouge-score, nltk, gguf, bitsandbytes, pytest), less the closure of what the GPU machine
# already has (DEVICE_HAS and torch's requirements; the others' are not followed, since this venv's newer versions of
# them need other packages than the device's). Closures are read from the Requires-Dist of the packages installed in $VENV (extras left out, markers for Python 3.12 on Linux). bitsandbytes is
# repacked with only the CUDA library the device's torch (cu130) loads, and its CPU one.
#   VENV=/path/to/venv benchmarks/gpu_bundle.sh      # default: the venv this checkout's tests use
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-$(git rev-parse --path-format=absolute --git-common-dir)/../.venv}"
[[ -x "$VENV/bin/python" ]] || VENV=.venv
BUNDLE=benchmarks/.bundle
CUDA_LIB="${CUDA_LIB:-cuda130}"  # torch 2.11.0+cu130 on the GPU machine
WANTED="mlflow-skinny mlflow-tracing optuna rouge-score nltk gguf bitsandbytes pytest"
DEVICE_HAS="torch transformers accelerate huggingface-hub safetensors tokenizers peft sentence-transformers scikit-learn
  pandas matplotlib rich psutil nvidia-ml-py numpy pyyaml regex packaging tqdm filelock fsspec httpx anyio
  h11 httpcore joblib threadpoolctl scipy python-dateutil pytz tzdata pillow typing-extensions"

rm -rf "$BUNDLE" && mkdir -p "$BUNDLE"
"$VENV/bin/python" - "$WANTED" "$DEVICE_HAS" > "$BUNDLE/requirements.txt" <<'PYEOF'
"""Prints name==version for each package in the closure of argv[1] but not in the closure of argv[2]."""
import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

env = default_environment() | {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
                               "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
                               "extra": ""}


def closure(names, strict, follow=None):
    seen, todo = {}, [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if not strict:  # on the device, not here: its own dependencies are not followed
                seen[name] = "?"
                continue
            sys.exit(f"gpu_bundle: {name} is not installed in this venv, so its version and dependencies are unknown")
        seen[name] = dist.version
        if follow is not None and name not in follow:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(canonicalize_name(req.name))
    return seen


wanted, device = closure(sys.argv[1].split(), strict=True), closure(sys.argv[2].split(), strict=False, follow={"torch"})
for name, version in sorted(wanted.items()):
    if name not in device:
        print(f"{name}=={version}")
PYEOF
echo "gpu_bundle: $(wc -l < "$BUNDLE/requirements.txt") wheels: $(tr '\n' ' ' < "$BUNDLE/requirements.txt")"

platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform any)
while read -r requirement; do
  if ! "$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none "${platforms[@]}" -d "$BUNDLE" "$requirement" 2>"$BUNDLE/pip.err"; then
    # published as a source archive only (rouge-score): built here, which is right for pure Python alone
    "$VENV/bin/python" -m pip wheel -q --no-deps -w "$BUNDLE" "$requirement" 2>>"$BUNDLE/pip.err" \
      || { grep -v "is ignored" "$BUNDLE/pip.err"; exit 1; }
  fi
done < "$BUNDLE/requirements.txt"
rm -f "$BUNDLE/pip.err"
if ls "$BUNDLE"/*.whl | grep -v -e cp312 -e abi3 -e none-any -e py3-none -e py2.py3-none; then
  echo "gpu_bundle: the wheels above are not for CPython 3.12"; exit 1
fi

# bitsandbytes without the CUDA libraries the device does not load (about 120 MB of 125), its RECORD kept valid.
"$VENV/bin/python" - "$BUNDLE" "$CUDA_LIB" <<'PYEOF'
import re
import sys
import zipfile
from pathlib import Path

bundle, keep = Path(sys.argv[1]), f"libbitsandbytes_{sys.argv[2]}.so"
for wheel in bundle.glob("bitsandbytes-*.whl"):
    dropped = lambda name: re.search(r"libbitsandbytes_(cuda|rocm)\w*\.so$", name) and not name.endswith(keep)
    with zipfile.ZipFile(wheel) as old:
        names = old.namelist()
        if not any(n.endswith(keep) for n in names):
            sys.exit(f"gpu_bundle: {wheel.name} has no {keep}")
        slim = wheel.with_suffix(".slim")
        with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as new:
            for name in names:
                if dropped(name):
                    continue
                data = old.read(name)
                if name.endswith(".dist-info/RECORD"):
                    data = b"".join(line for line in data.splitlines(keepends=True) if not dropped(line.split(b",")[0].decode()))
                new.writestr(old.getinfo(name), data)
    slim.replace(wheel)
    print(f"gpu_bundle: {wheel.name} keeps {keep}, {wheel.stat().st_size / 2**20:.1f} MiB")
PYEOF

tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
bundle=$(du -sb "$BUNDLE" | cut -f1)
echo "gpu_bundle: bundle $((bundle / 1048576)) MiB + working tree $((tree / 1048576)) MiB = $(((bundle + tree) / 1048576)) MiB (limit 60)"
(( bundle + tree < 60 * 1048576 )) || { echo "gpu_bundle: too big to travel"; exit 1; }
