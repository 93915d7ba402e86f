#!/bin/bash
# Device check of golf's training path on one lent GPU (H100/H200).
#
# On the CPU machine, first build the binary (the device has no Go):
#     go build -o .gpu/golf ./cmd/golf
# then run this script there with `.gpu` carried:
#     bash scripts/gpu/check.sh
# It builds nothing. Steps, each with its own time limit (about 8 minutes in
# all on one H100; the limits add up to more, for retries after an
# out-of-memory failure):
#   1. the backend: the CUDA PJRT plugin that ships with the image's JAX;
#   2. `golf data build`: shards of the embedded corpus (golf's own tokenizer
#      and shard writer) in .gpu-data (not under $OUT: they stay there);
#   3. `golf bench train`, each with the device's bf16 matmul peak measured in
#      the same run (compile time, ms/step, tokens/s, model TFLOP/s and the
#      fraction of the peak):
#        a. the baseline with the materialised attention (the reference
#           formulation), XLA's HLO dumps and buffer assignments under
#           $OUT/xla (--profile);
#        b. the baseline with the chunked attention;
#        c. the record (786,432-token steps) with the chunked attention (its
#           materialised scores need ~110 GB at 65,536-token micro-batches);
#      each retried with smaller micro-batches if the automatic one does not
#      fit;
#   4. `golf train --preset baseline --devices 1` on those shards for
#      $TRAIN_SECONDS, then its evaluation: the single-device step (N = 1);
#   5. `golf train ... --devices 1 --spmd --max-steps $SPMD_STEPS`: the same
#      steps through the data-parallel SPMD program (its AllReduce over a
#      one-device mesh); its losses are compared with step 4's, step by step;
#   6. a short table. Logs and JSON go under $OUT. When scripts/gpu/reference.sh
#      ran before on this machine (.gpu-ref/ref.json), the table also gives
#      golf's baseline step as a ratio of train_gpt.py's, measured there.
# CHECK_CPU=1 rehearses the whole script on a machine without a GPU: the
# pure-Go backend, the tiny and tiny-record presets, small batches and a
# short budget (step 5 then reports that the pure-Go backend has no SPMD).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
GOLF=${GOLF:-$ROOT/.gpu/golf}
TRAIN_SECONDS=${TRAIN_SECONDS:-45}
SPMD_STEPS=${SPMD_STEPS:-8}
BENCH_STEPS=${BENCH_STEPS:-4}
TRAIN_LIMIT=${TRAIN_LIMIT:-240} # seconds for step 4: compile, the budget, the evaluation
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
step() { echo; echo "== $(date +%T) $*"; }
[ -x "$GOLF" ] || { echo "no golf binary at $GOLF: run 'go build -o .gpu/golf ./cmd/golf' and carry .gpu"; exit 1; }

BASE=baseline
REC=record
BACKEND=()
BENCH_BATCH=()
TRAIN_BATCH=()
if [ "${CHECK_CPU:-0}" = 1 ]; then
  BASE=tiny; REC=tiny-record; BACKEND=(--backend go); BENCH_BATCH=(--batch-tokens 2048)
  TRAIN_BATCH=(--batch-tokens 2048); TRAIN_SECONDS=${TRAIN_SECONDS_CPU:-15}; BENCH_STEPS=1; SPMD_STEPS=3
  TRAIN_LIMIT=900 # the final evaluation of the whole validation split is slow on the CPU
fi

step "1. backend"
if [ "${CHECK_CPU:-0}" = 1 ]; then
  echo "CPU rehearsal: pure-Go backend, presets $BASE and $REC"
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

# bench NAME LIMIT ARGS...: golf bench train with micro-batch retries; the
# JSON goes to $OUT/bench-NAME.json.
bench() {
  local name=$1 limit=$2; shift 2
  for MICRO in 0 32768 16384; do
    if timeout "$limit" "$GOLF" bench train "${BACKEND[@]}" "${BENCH_BATCH[@]}" --steps "$BENCH_STEPS" \
        --micro-batch-tokens "$MICRO" --json-out "$OUT/bench-$name.json" "$@" \
        > "$OUT/bench-$name.txt" 2> "$OUT/bench-$name-$MICRO.log"; then
      cat "$OUT/bench-$name.txt"; return 0
    fi
    echo "bench $name with micro-batch $MICRO failed:"; tail -5 "$OUT/bench-$name-$MICRO.log"
    rm -f "$OUT/bench-$name.json"
  done
  return 1
}

step "3a. golf bench train --preset $BASE --attention materialized --profile"
bench base-materialized 200 --preset "$BASE" --attention materialized --profile "$OUT/xla"
step "3b. golf bench train --preset $BASE --attention chunked"
bench base-chunked 150 --preset "$BASE" --attention chunked
step "3c. golf bench train --preset $REC --attention chunked"
bench rec-chunked 240 --preset "$REC" --attention chunked

step "4. golf train --preset $BASE --devices 1 --max-seconds $TRAIN_SECONDS"
TRAIN_MICRO=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['micro_batch_tokens'])" "$OUT/bench-base-materialized.json" 2>/dev/null || echo 0)
timeout "$TRAIN_LIMIT" "$GOLF" train "${BACKEND[@]}" "${TRAIN_BATCH[@]}" --preset "$BASE" --devices 1 --data "$DATA" \
  --max-seconds "$TRAIN_SECONDS" --warmup-steps 1 --val-every 0 --micro-batch-tokens "$TRAIN_MICRO" \
  --out "$OUT/train" --force --json-out "$OUT/train-results.json" --quiet > "$OUT/train-stdout.log" 2> "$OUT/train-stderr.log"
TRAIN_RC=$?
grep -E "^(step|warmup_time|stopping|backend|world_size)" "$OUT/train/train.log" | tail -8

step "5. golf train --preset $BASE --devices 1 --spmd --max-steps $SPMD_STEPS"
timeout 150 "$GOLF" train "${BACKEND[@]}" "${TRAIN_BATCH[@]}" --preset "$BASE" --devices 1 --spmd --data "$DATA" \
  --max-steps "$SPMD_STEPS" --max-seconds 0 --warmup-steps 1 --val-every 0 --val-tokens 8192 --micro-batch-tokens "$TRAIN_MICRO" \
  --out "$OUT/train-spmd" --force --json-out "$OUT/train-spmd-results.json" --quiet > "$OUT/train-spmd-stdout.log" 2> "$OUT/train-spmd-stderr.log"
SPMD_RC=$?
[ $SPMD_RC = 0 ] || tail -3 "$OUT/train-spmd-stderr.log"

step "6. summary"
python3 - "$OUT" "$TRAIN_RC" "$SPMD_RC" "${CHECK_CPU:-0}" "${REF_WORK:-$ROOT/.gpu-ref}/ref.json" <<'EOF'
import json, os, re, sys
out, train_rc, spmd_rc, cpu, ref_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
ref = None
try:
    ref = json.load(open(ref_path))  # scripts/gpu/reference.sh, run earlier on this machine
    if "step_ms" not in ref:
        ref = None
except (OSError, ValueError):
    pass
rows = []
for name in ("base-materialized", "base-chunked", "rec-chunked"):
    path = os.path.join(out, f"bench-{name}.json")
    if not os.path.exists(path):
        rows.append((f"bench {name}", "FAILED")); continue
    rep = json.load(open(path))
    for r in rep["results"]:
        tag = f"{r['preset']}/{r['attention']}"
        rows += [(f"{tag} compile+first step", f"{r['compile_ms']/1000:.1f} s"),
                 (f"{tag} ms/step ({r['batch_tokens']:,} tok)", f"{r['step_ms']:.1f} (min {r['step_ms_min']:.1f}) micro {r['micro_batch_tokens']}x{r['accum_steps']}"),
                 (f"{tag} tokens/s", f"{r['tokens_per_s']:,.0f}"),
                 (f"{tag} model TFLOP/s, of peak", f"{r['model_tflops']:.3g} of {r.get('peak_tflops', 0):.3g} = {r.get('peak_fraction', 0):.1%}")]
        if r["preset"] == "baseline" and r["batch_tokens"] == 524288:
            rows.append((f"{tag} step vs PyTorch on one H100 (355 ms)", f"{r['step_ms']/355:.2f}x"))
            if ref:
                rows.append((f"{tag} step vs train_gpt.py here ({ref['step_ms']:.1f} ms)", f"{r['step_ms']/ref['step_ms']:.2f}x"))
if ref:
    rows.append(("train_gpt.py on this machine (reference.sh)", f"{ref['step_ms']:.1f} ms/step, {ref['tokens_per_s']:,.0f} tokens/s"))
mem = os.path.join(out, "xla", "memory.txt")
if os.path.exists(mem):
    rows += [("xla " + l.split(":")[0], l.split(":", 1)[1].strip()) for l in open(mem).read().splitlines()[:4] if ":" in l]
try:
    r = json.load(open(os.path.join(out, "train-results.json")))
    rows += [("train steps in budget", f"{r['steps']} ({r['stopped_by']})"),
             ("train step_avg", f"{r['step_avg_ms']:.1f} ms"),
             ("train warm-up (compile)", f"{r['warmup_ms']/1000:.1f} s"),
             ("val_loss / val_bpb", f"{r['val_loss']:.4f} / {r['val_bpb']:.4f}")]
except Exception as e:
    rows.append(("train", f"FAILED rc={train_rc}: {e}"))
def losses(log):
    got = {}
    try:
        for line in open(log):
            m = re.match(r"step:(\d+)/\d+ train_loss:([0-9.]+)", line)
            if m: got[int(m.group(1))] = float(m.group(2))
    except OSError:
        pass
    return got
a, b = losses(os.path.join(out, "train", "train.log")), losses(os.path.join(out, "train-spmd", "train.log"))
common = sorted(set(a) & set(b))
if cpu and spmd_rc != 0:
    rows.append(("SPMD (--devices 1 --spmd)", "refused on the pure-Go backend (expected: no SPMD there)"))
elif spmd_rc != 0 or not common:
    rows.append(("SPMD (--devices 1 --spmd)", f"FAILED rc={spmd_rc}"))
else:
    worst = max(abs(a[s] - b[s]) for s in common)
    rows.append(("SPMD vs single-device losses", f"steps {common[0]}..{common[-1]}: max |diff| {worst:.4f} ({'equal' if worst <= 2e-4 else 'DIFFERENT'})"))
w = max(len(k) for k, _ in rows)
for k, v in rows:
    print(f"{k:<{w}}  {v}")
EOF
