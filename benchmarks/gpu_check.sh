#!/usr/bin/env bash
# The GPU check, for the GPU machine (one H100 80 GB or H200 141 GB, Python 3.12 with torch 2.11+cu130, transformers
# 5.17, accelerate, huggingface_hub and peft installed, and no package index). What else it needs comes from
# benchmarks/.bundle, built beforehand on a connected machine by benchmarks/gpu_bundle.sh and carried with the working
# tree; it is installed with --no-index --no-deps into a folder put on PYTHONPATH (torch is never touched).
#
# Steps, most valuable first, under one deadline (DEADLINE_S, at most 540 s from the start): each step's timeout is its
# budget cut to what is left, and a step with less than MIN_START_S left is recorded as SKIPPED.
#   preflight   nvidia-smi, torch/CUDA/device figures, every package's version, a 4-bit quantise -> matmul round trip
#               on CUDA through bitsandbytes; if any of it fails the check stops here and exits 2
#   p10         QLoRA (NF4) vs bf16 LoRA on a random 7B-shaped LLaMA through the toolkit's QLoRA path
#   p9          the planner's estimated peak / the measured CUDA peak, three corners of a random 1.1B LLaMA
#   oom         recovery from a real out-of-memory error (bare, then inside a 2-trial sweep)
#   throughput  LoRA tokens/s and MFU of a random 1.1B LLaMA in bf16
#   pytest_gpu  pytest -m gpu -x
#   sweep       a 2-trial CUDA sweep of the tiny summariser, read back from MLflow (only if time is left)
# Files under $OUT (8 at most): env.txt (preflight), summary.txt, steps.log (every step's output under a header), and
# the steps' JSON. Exit 0 when every step that ran passed, 1 when one failed or timed out, 2 when the preflight failed.
#   DRY_RUN=1 benchmarks/gpu_check.sh     prints the plan and runs nothing (any machine)
#   CPU_STANDIN=1 benchmarks/gpu_check.sh runs the steps' CPU stand-ins (tiny shapes, the error raised by hand) to check
#                                         this script where there is no GPU; nothing it prints measures a card
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu}"
PY="${PYTHON:-python3}"
BUNDLE="${BUNDLE:-benchmarks/.bundle}"
SITE="${SITE:-/tmp/mlops-gpu-site}"
DEADLINE_S="${DEADLINE_S:-540}"
MIN_START_S="${MIN_START_S:-20}"
CPU_STANDIN="${CPU_STANDIN:-}"
DEVICE=cuda; [[ -n "$CPU_STANDIN" ]] && DEVICE=cpu
(( DEADLINE_S <= 540 )) || { echo "gpu_check: DEADLINE_S must be at most 540 (one command runs at most 600 s)"; exit 2; }
start=$(date +%s)

# name, budget in seconds, JSON written (or -), command. The CPU stand-ins replace --out's figures, not the steps.
tiny() { [[ -n "$CPU_STANDIN" ]] && echo " $1"; }
STEPS=(
  "preflight|60|-|benchmarks/gpu_check.sh --preflight"
  "p10|140|qlora_memory.json|$PY benchmarks/qlora_memory.py --out \$OUT/qlora_memory.json$(tiny --tiny)"
  "p9|120|planner_accuracy.json|$(tiny NONE)$PY benchmarks/planner_accuracy.py --out \$OUT/planner_accuracy.json"
  "oom|90|oom_recovery.json|$PY benchmarks/oom_recovery.py --out \$OUT/oom_recovery.json$(tiny --cpu)"
  "throughput|60|throughput.json|$PY benchmarks/gpu_throughput.py --out \$OUT/throughput.json$(tiny --tiny)"
  "pytest_gpu|50|-|$(tiny NONE)$PY -m pytest -q -x -o addopts= -p no:cacheprovider -m gpu tests/test_gpu.py"
  "sweep|60|sweep_runs.json|benchmarks/gpu_check.sh --sweep"
)
FILES="env.txt summary.txt steps.log qlora_memory.json planner_accuracy.json oom_recovery.json throughput.json sweep_runs.json"

preflight() {  # step 0, run as `gpu_check.sh --preflight` with the bundle on PYTHONPATH; prints what env.txt holds
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader || [[ -n "$CPU_STANDIN" ]] || return 1
  "$PY" - <<'PYEOF'
import os
import sys
from importlib import metadata

failures = []
print(f"python {sys.version.split()[0]} at {sys.executable}")
packages = ["torch", "transformers", "accelerate", "huggingface_hub", "peft", "safetensors", "tokenizers", "bitsandbytes",
            "mlflow-skinny", "mlflow-tracing", "optuna", "sqlalchemy", "alembic", "rouge-score", "nltk", "gguf", "pytest",
            "numpy", "pandas", "scikit-learn"]
for name in packages:
    try:
        print(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name} MISSING")
        failures.append(f"{name} is not installed")
import torch

standin = bool(os.environ.get("CPU_STANDIN"))
print(f"torch CUDA build {torch.version.cuda}, cuda available {torch.cuda.is_available()}")
device = "cpu" if standin else "cuda"
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    print(f"device {props.name}, {props.total_memory / 2**30:.1f} GiB, capability {props.major}.{props.minor}, "
          f"{props.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported()}")
elif not standin:
    failures.append("torch sees no CUDA device (a CPU-only build, or no driver)")
try:
    for module in ("mlflow", "optuna", "rouge_score.rouge_scorer", "nltk", "mlops.train", "mlops.search", "mlops.models.quantization"):
        __import__(module)
    from mlops.train import peak_tflops

    print(f"datasheet bf16 peak {peak_tflops(device)} TFLOP/s")
except Exception as error:  # noqa: BLE001 - reported, and the check stops
    failures.append(f"import: {type(error).__name__}: {error}")
if not failures or standin:
    try:  # the 4-bit path end to end: quantise on the device, then a matmul through bitsandbytes' kernels
        import bitsandbytes as bnb
        import bitsandbytes.functional as F

        torch.manual_seed(0)
        weight = torch.randn(512, 256, device=device, dtype=torch.bfloat16)
        x = torch.randn(16, 256, device=device, dtype=torch.bfloat16)
        packed, state = F.quantize_4bit(weight, quant_type="nf4", compress_statistics=True)
        out = bnb.matmul_4bit(x, packed.t(), quant_state=state)
        ref = x @ F.dequantize_4bit(packed, state).t()
        error = float((out.float() - ref.float()).norm() / ref.float().norm())
        print(f"bitsandbytes nf4 round trip on {device}: {tuple(out.shape)} {out.dtype}, relative error {error:.2e}")
        if not error < 1e-2:
            failures.append(f"bitsandbytes 4-bit matmul disagrees with its dequantised weight: relative error {error}")
    except Exception as error:  # noqa: BLE001 - a bitsandbytes without its CUDA library fails here
        failures.append(f"bitsandbytes 4-bit round trip: {type(error).__name__}: {error}")
for failure in failures:
    print(f"PREFLIGHT FAILED: {failure}")
sys.exit(1 if failures else 0)
PYEOF
}

sweep() {  # the last step: a 2-trial sweep of the tiny summariser on CUDA, read back from its MLflow store
  local work; work=$(mktemp -d); mkdir -p "$OUT"
  sed "s/^training:/training:\n  device: $DEVICE/" tests/configs/tiny-summarizer.yaml > "$work/tiny-summarizer-$DEVICE.yaml"
  cp tests/registry/tiny-summarizer.yaml "$work/"  # the policy, found beside the config
  MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db" "$PY" -m mlops sweep --config "$work/tiny-summarizer-$DEVICE.yaml" --n-trials 2 \
    --storage "sqlite:///$work/optuna.db" || return 1
  MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db" "$PY" - "$OUT/sweep_runs.json" "$DEVICE" <<'PYEOF'
import json
import sys

from mlflow import MlflowClient

client = MlflowClient()
runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
summary = {"runs": len(runs), "trials": len(trials), "statuses": sorted(r.info.status for r in trials),
           "devices": sorted({r.data.params.get("device", "?") for r in trials}),
           "eval_rougeL": [r.data.metrics.get("eval_rougeL") for r in trials]}
print(json.dumps(summary))
open(sys.argv[1], "w").write(json.dumps(summary, indent=2))
ok = len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials) and summary["devices"] == [sys.argv[2]]
sys.exit(0 if ok else 1)
PYEOF
}

case "${1:-}" in
  --preflight) preflight; exit $? ;;
  --sweep) sweep; exit $? ;;
esac

if [[ -n "${DRY_RUN:-}" ]]; then
  echo "gpu_check plan: one deadline of $DEADLINE_S s; each step's timeout is its budget cut to what is left then;"
  echo "a step with under $MIN_START_S s left is SKIPPED. Install: ${BUNDLE}/*.whl -> $SITE (--no-index --no-deps), on PYTHONPATH."
  total=0
  for spec in "${STEPS[@]}"; do
    IFS='|' read -r name budget json command <<< "$spec"
    total=$((total + budget))
    printf '  %-11s budget %3d s  (ends by %3d s if every step uses its budget)  -> %-22s %s\n' "$name" "$budget" "$total" "$json" "$command"
  done
  echo "budgets add up to $total s; everything after the deadline ($DEADLINE_S s) is skipped: $(( total > DEADLINE_S ? total - DEADLINE_S : 0 )) s of the last steps' budgets at worst"
  echo "files under \$OUT ($(wc -w <<< "$FILES") of at most 8): $FILES"
  exit 0
fi

mkdir -p "$OUT"
rm -f "$OUT"/{env.txt,summary.txt,steps.log,qlora_memory.json,planner_accuracy.json,oom_recovery.json,throughput.json,sweep_runs.json}
export OUT PY CPU_STANDIN DEVICE HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 PYTHONUNBUFFERED=1
summary() { echo "$*" | tee -a "$OUT/summary.txt"; }
left() { echo $(( DEADLINE_S - ($(date +%s) - start) )); }

if [[ -d "$BUNDLE" ]] && ls "$BUNDLE"/*.whl > /dev/null 2>&1; then
  rm -rf "$SITE"
  if ! "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "$BUNDLE"/*.whl >> "$OUT/steps.log" 2>&1; then
    echo "pip could not install the bundle: unpacking the wheels instead" >> "$OUT/steps.log"
    for wheel in "$BUNDLE"/*.whl; do "$PY" -m zipfile -e "$wheel" "$SITE"; done
  fi
  summary "bundle: $(ls "$BUNDLE"/*.whl | wc -l) wheels installed into $SITE in $(( $(date +%s) - start )) s"
else
  summary "bundle: none at $BUNDLE (build it with benchmarks/gpu_bundle.sh); using what $PY has"
fi
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"  # the checkout's mlops, then the bundle

status=0
for spec in "${STEPS[@]}"; do
  IFS='|' read -r name budget json command <<< "$spec"
  remaining=$(left)
  limit=$(( budget < remaining ? budget : remaining ))
  if [[ $command == " NONE"* ]]; then
    summary "$name: SKIPPED (no CPU stand-in: it needs CUDA)"
    continue
  fi
  if (( limit < MIN_START_S )); then
    summary "$name: SKIPPED ($remaining s left of $DEADLINE_S)"
    echo "===== $name: SKIPPED, $remaining s left =====" >> "$OUT/steps.log"
    continue
  fi
  echo "===== $name (timeout $limit s): $command =====" >> "$OUT/steps.log"
  began=$(date +%s)
  if [[ $name == preflight ]]; then
    timeout "$limit" bash -c "$command" > "$OUT/env.txt" 2>&1; rc=$?
    cat "$OUT/env.txt" >> "$OUT/steps.log"
  else
    timeout "$limit" bash -c "$command" >> "$OUT/steps.log" 2>&1; rc=$?
  fi
  took=$(( $(date +%s) - began ))
  case $rc in
    0) result=OK ;;
    124) result="TIMEOUT after $limit s"; status=1 ;;
    *) result="FAILED (exit $rc)"; status=1 ;;
  esac
  summary "$name: $result in $took s"
  if [[ $json != - && -f "$OUT/$json" ]]; then
    grep -E '"(device|peak_memory_gib|tokens_per_s|mfu|bf16_matmul_tflops|p10_qlora_over_lora_peak|p10_met|ratios|within_goal|back_at_baseline|ok|problems|statuses|halvings)"' \
      "$OUT/$json" | sed 's/^ */    /' | tee -a "$OUT/summary.txt"
  fi
  if [[ $name == preflight && $rc != 0 ]]; then
    grep 'PREFLIGHT FAILED' "$OUT/env.txt" | tee -a "$OUT/summary.txt"
    summary "preflight failed: nothing else run"
    exit 2
  fi
done
summary "done in $(( $(date +%s) - start )) s of $DEADLINE_S, status $status"
exit $status
