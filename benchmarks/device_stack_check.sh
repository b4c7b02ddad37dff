#!/usr/bin/env bash
# The GPU machine's software, tested without the GPU: a throwaway venv with the device's transformers 5.17.0,
# accelerate 1.15.0 and huggingface_hub 1.33.0 over this project's other packages, running the toolkit's tiny CPU
# training, QLoRA and sweep tests. The device's Python is 3.12; this runs on the project venv's Python (3.11 here),
# since no 3.12 is set up for the project. Its torch is the project's CPU build, not the device's 2.11+cu130.
# The venv reuses the project venv's site-packages through a .pth file placed after its own, so only the three
# packages are installed (--no-deps) and they shadow the project's newer ones. CI runs it after the main tests.
#   VENV=.venv benchmarks/device_stack_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
DEVICE_PACKAGES=(transformers==5.17.0 accelerate==1.15.0 huggingface_hub==1.33.0)
TESTS=(tests/train/test_compat.py tests/train/test_finetune.py tests/models/test_quantization.py "tests/search/test_sweep.py::${SWEEP_TEST:-test_sweep_builds_run_tree_and_promotes}")
start=$(date +%s)
stack=$(mktemp -d)
trap 'rm -rf "$stack"' EXIT

"$VENV/bin/python" -m venv --without-pip "$stack/venv"
site=$("$stack/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
"$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' > "$site/zz-project-venv.pth"
install() { "$VENV/bin/python" -m pip install -q --no-deps --target "$site" "$@" 2>&1 | grep -v "is ignored" || true; }
install "${DEVICE_PACKAGES[@]}"
for _ in 1 2 3 4 5; do  # their own requirements that the project venv lacks (huggingface_hub 1.x needs httpx, ...)
  missing=$("$stack/venv/bin/python" - "${DEVICE_PACKAGES[@]}" <<'PYEOF'
"""The requirements, followed from the device's packages, that no installed distribution meets by name."""
import sys
from importlib import metadata

from packaging.requirements import Requirement

missing, seen, todo = set(), set(), [pin.split("==")[0] for pin in sys.argv[1:]]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    for line in metadata.distribution(name).requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            metadata.version(req.name)
            todo.append(req.name)
        except metadata.PackageNotFoundError:
            missing.add(str(req).split(";")[0])
print(" ".join(sorted(missing)))
PYEOF
)
  [[ -z "$missing" ]] && break
  echo "device_stack_check: adding what they require: $missing"
  read -ra wanted <<< "$missing"
  install "${wanted[@]}"
done
"$stack/venv/bin/python" - "${DEVICE_PACKAGES[@]}" <<'PYEOF'
import sys
from importlib import metadata

for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if metadata.version(name) != version:
        sys.exit(f"device_stack_check: {name} is {metadata.version(name)}, not the device's {version}")
import transformers

print(f"device_stack_check: transformers {transformers.__version__} from {transformers.__file__}")
PYEOF
PYTHONPATH="$PWD" "$stack/venv/bin/python" -m pytest -q -n 0 -p no:cacheprovider "${TESTS[@]}"
echo "device_stack_check: passed in $(( $(date +%s) - start )) s"
