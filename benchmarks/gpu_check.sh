#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA card (no network needed). Six steps, each under its own timeout
# (23 minutes at the very most; expected well under 10 on an H200). STEPS=4,5,6 runs only those steps:
#   1. the tests marked `gpu` (training on CUDA with bf16/fp16),
#   2. a 2-trial sweep of the tiny LLaMA summariser on CUDA, read back from its MLflow store,
#   3. LoRA fine-tuning throughput of a random ~1.1B LLaMA in bf16: tokens/s and MFU against the
#      card's measured bf16 matmul rate (benchmarks/gpu_throughput.py),
#   4. QLoRA (NF4) against bf16 LoRA on a random 7B-shaped LLaMA: peak memory, tokens/s, MFU and
#      P10 = QLoRA peak / bf16 LoRA peak, goal <= 0.40 (benchmarks/qlora_memory.py),
#   5. recovery from a real out-of-memory error: the device filled until the allocator refuses, then a
#      sweep whose first trial runs out of memory for real (benchmarks/oom_recovery.py).
#   6. P9: the planner's estimated peak memory / the measured CUDA peak for three corners (benchmarks/planner_accuracy.py).
# Results go to $OUT (default: benchmarks/results/gpu). If mlflow/optuna are missing, wheels in
# $WHEELS (default: ./wheels, made here with `pip download -d wheels mlflow optuna ...`) are installed
# without network.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MLFLOW_HTTP_REQUEST_MAX_RETRIES=0
PY="${PYTHON:-python3}"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
status=0
want() { [[ ",${STEPS:-1,2,3,4,5,6}," == *",$1,"* ]]; }  # whether step $1 is asked for

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1 || true
log "GPU: $(head -1 "$OUT/nvidia-smi.txt")"

if ! "$PY" -c "import mlflow, optuna" 2>/dev/null; then
  WHEELS="${WHEELS:-wheels}"
  log "installing mlflow/optuna from $WHEELS (no index)"
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" mlflow optuna rouge-score scikit-learn gguf psycopg2-binary >> "$OUT/pip.log" 2>&1 || status=1
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >> "$OUT/pip.log" 2>&1 || "$PY" -m pip install -q --no-deps -e . >> "$OUT/pip.log" 2>&1 || status=1

if want 1; then
log "1/6 pytest -m gpu"
timeout 180 "$PY" -m pytest -q -o addopts="" -m gpu -p no:cacheprovider tests/test_gpu.py > "$OUT/pytest_gpu.txt" 2>&1 || status=1
tail -3 "$OUT/pytest_gpu.txt" | tee -a "$OUT/summary.txt"
fi

if want 2; then
log "2/6 two-trial sweep of tiny-random-llama on CUDA"
work=$(mktemp -d)
sed 's/^training:/training:\n  device: cuda/' tests/configs/tiny-summarizer.yaml > "$work/tiny-summarizer-cuda.yaml"
cp tests/registry/tiny-summarizer.yaml "$work/"  # the policy, found beside the config
export MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db"
start=$(date +%s)
timeout 240 "$PY" -m mlops sweep --config "$work/tiny-summarizer-cuda.yaml" --n-trials 2 --storage "sqlite:///$work/optuna.db" \
  > "$OUT/sweep.txt" 2>&1 || status=1
log "sweep: $(( $(date +%s) - start )) s; $(tail -2 "$OUT/sweep.txt" | head -1)"
"$PY" - "$OUT" <<'PYEOF' || status=1
import json, sys
from mlflow import MlflowClient
client = MlflowClient()
runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
summary = {"runs": len(runs), "trials": len(trials), "statuses": sorted(r.info.status for r in trials),
           "devices": sorted({r.data.params.get("device", "?") for r in trials}),
           "eval_rougeL": [r.data.metrics.get("eval_rougeL") for r in trials]}
print(json.dumps(summary))
open(f"{sys.argv[1]}/sweep_runs.json", "w").write(json.dumps(summary, indent=2))
assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials) and summary["devices"] == ["cuda"], summary
PYEOF
unset MLFLOW_TRACKING_URI
fi

if want 3; then
log "3/6 LoRA throughput, random 1.1B LLaMA, bf16"
timeout 240 "$PY" benchmarks/gpu_throughput.py --out "$OUT/throughput.json" > "$OUT/throughput.txt" 2>&1 || status=1
grep -E '"(device|tokens_per_s|bf16_matmul_tflops|mfu|peak_memory_gib)"' "$OUT/throughput.txt" | tee -a "$OUT/summary.txt"
fi

if want 4; then
log "4/6 QLoRA (nf4) vs bf16 LoRA, random 7B-shaped LLaMA"
timeout 240 "$PY" benchmarks/qlora_memory.py --out "$OUT/qlora_memory.json" > "$OUT/qlora_memory.txt" 2>&1 || status=1
grep -E '"(variant|peak_memory_gib|tokens_per_s|mfu|p10_qlora_over_lora_peak|p10_met)"' "$OUT/qlora_memory.txt" | tee -a "$OUT/summary.txt"
fi

if want 5; then
log "5/6 real out-of-memory recovery"
timeout 180 "$PY" benchmarks/oom_recovery.py --out "$OUT/oom_recovery.json" > "$OUT/oom_recovery.txt" 2>&1 || status=1
grep -E '"(blocks_until_oom|back_at_baseline|allocated_at_end|ok)"|FINISHED|KILLED|FAILED|batch_size [0-9]+ ->' "$OUT/oom_recovery.txt" \
  | tee -a "$OUT/summary.txt"
fi

if want 6; then
log "6/6 P9 planner accuracy: estimated / measured CUDA peak, three corners of a random 1.1B LLaMA (goal 0.85..1.15)"
timeout 300 "$PY" benchmarks/planner_accuracy.py --out "$OUT/planner_accuracy.json" > "$OUT/planner_accuracy.txt" 2>&1 || status=1
grep -E '"ratios"' "$OUT/planner_accuracy.txt" | tee -a "$OUT/summary.txt"
fi

log "done, status $status"
exit $status
