#!/bin/bash
# Device check of golf's training path on one lent GPU (H100/H200).
#
# On the CPU machine, first build the binary (the device has no Go):
#     go build -o .gpu/golf ./cmd/golf
# then run this script there with `.gpu` carried:
#     bash scripts/gpu/check.sh
# It builds nothing. Steps, each with its own time limit (about 8 minutes in all):
#   1. the backend: the CUDA PJRT plugin that ships with the image's JAX;
#   2. `golf data build`: shards of the embedded corpus (golf's own tokenizer
#      and shard writer) in .gpu-data (not under $OUT: they stay there);
#   3. `golf bench train --preset baseline`: compile time and ms per
#      524,288-token step (retried with smaller micro-batches if the default
#      65,536-token one does not fit);
#   4. `golf train --preset baseline --max-seconds $TRAIN_SECONDS` on those
#      shards, then its evaluation;
#   5. a short table. Logs and JSON go under $OUT.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
GOLF=${GOLF:-$ROOT/.gpu/golf}
TRAIN_SECONDS=${TRAIN_SECONDS:-120}
BENCH_STEPS=${BENCH_STEPS:-5}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
step() { echo; echo "== $(date +%T) $*"; }
[ -x "$GOLF" ] || { echo "no golf binary at $GOLF: run 'go build -o .gpu/golf ./cmd/golf' and carry .gpu"; exit 1; }

# CHECK_CPU=1 rehearses the whole script on a machine without a GPU: the
# pure-Go backend, the tiny preset and a short budget.
PRESET=baseline
BACKEND=()
if [ "${CHECK_CPU:-0}" = 1 ]; then
  PRESET=tiny; BACKEND=(--backend go --batch-tokens 1024); TRAIN_SECONDS=${TRAIN_SECONDS_CPU:-20}; BENCH_STEPS=1
fi

step "1. backend"
if [ "${CHECK_CPU:-0}" = 1 ]; then
  echo "CPU rehearsal: pure-Go backend, tiny preset"
else
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
PLUGIN=$(ls /opt/*/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so 2>/dev/null | tail -1)
[ -f "$PLUGIN" ] || PLUGIN=$(find /opt /usr -name xla_cuda_plugin.so 2>/dev/null | head -1)
[ -f "$PLUGIN" ] || { echo "no xla_cuda_plugin.so on this machine"; exit 1; }
export GOMLX_BACKEND="xla:$PLUGIN" GOMLX_NO_AUTO_INSTALL=1
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_gpu_cuda_data_dir=/usr/local/cuda"
echo "GOMLX_BACKEND=$GOMLX_BACKEND"
fi

step "2. shards of the embedded corpus"
# Built here with golf's own tokenizer and shard writer, timed apart; kept
# out of $OUT so that they do not travel back.
DATA="$ROOT/.gpu-data"
START=$(date +%s)
timeout 150 "$GOLF" data build --out "$DATA" --force --quiet > "$OUT/data-build.log" 2>&1 \
  || { echo "shard build failed:"; tail -5 "$OUT/data-build.log"; exit 1; }
tail -4 "$OUT/data-build.log"
echo "shards: $(ls "$DATA" | tr '\n' ' ') ($(( $(date +%s) - START ))s)"

step "3. golf bench train --preset $PRESET"
BENCH_OK=0
for MICRO in 0 32768 16384; do
  if timeout 240 "$GOLF" bench train "${BACKEND[@]}" --preset "$PRESET" --steps "$BENCH_STEPS" --micro-batch-tokens "$MICRO" --json \
      > "$OUT/bench.json" 2> "$OUT/bench-$MICRO.log"; then
    BENCH_OK=1; BENCH_MICRO=$MICRO; break
  fi
  echo "bench with micro-batch $MICRO failed:"; tail -5 "$OUT/bench-$MICRO.log"
done

step "4. golf train --preset $PRESET --max-seconds $TRAIN_SECONDS"
TRAIN_MICRO=${BENCH_MICRO:-0}
timeout 330 "$GOLF" train "${BACKEND[@]}" --preset "$PRESET" --data "$DATA" --max-seconds "$TRAIN_SECONDS" --warmup-steps 3 \
  --val-every 0 --micro-batch-tokens "$TRAIN_MICRO" --out "$OUT/train" --json \
  > "$OUT/train-results.json" 2> "$OUT/train-stderr.log"
TRAIN_RC=$?
grep -E "^(step|warmup_time|stopping|backend|world_size)" "$OUT/train/train.log" | tail -8

step "5. summary"
python3 - "$OUT" "$BENCH_OK" "$TRAIN_RC" <<'EOF'
import json, sys, os
out, bench_ok, train_rc = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
rows = []
if bench_ok:
    for r in json.load(open(os.path.join(out, "bench.json"))):
        rows += [("bench compile+first step", f"{r['compile_ms']/1000:.1f} s"),
                 (f"bench ms/step ({r['batch_tokens']:,} tok)", f"{r['step_ms']:.1f} (min {r['step_ms_min']:.1f}) micro {r['micro_batch_tokens']}x{r['accum_steps']}"),
                 ("bench tokens/s", f"{r['tokens_per_s']:,.0f}"),
                 ("model TFLOP/s", f"{r['model_tflops']:.3g}")]
        if r["preset"] == "baseline" and r["batch_tokens"] == 524288:
            rows.append(("step time vs PyTorch on one H100 (355 ms)", f"{r['step_ms']/355:.2f}x"))
else:
    rows.append(("bench", "FAILED"))
try:
    r = json.load(open(os.path.join(out, "train-results.json")))
    rows += [("train steps in budget", f"{r['steps']} ({r['stopped_by']})"),
             ("train step_avg", f"{r['step_avg_ms']:.1f} ms"),
             ("train warm-up (compile)", f"{r['warmup_ms']/1000:.1f} s"),
             ("val_loss / val_bpb", f"{r['val_loss']:.4f} / {r['val_bpb']:.4f}")]
except Exception as e:
    rows.append(("train", f"FAILED rc={train_rc}: {e}"))
w = max(len(a) for a, _ in rows)
for a, b in rows:
    print(f"{a:<{w}}  {b}")
EOF
