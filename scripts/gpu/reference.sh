#!/bin/bash
# The PyTorch reference measured on the same lent GPU, in the same session:
# the challenge's unchanged baseline train_gpt.py (1 GPU, so 8 gradient
# accumulation steps per 524,288-token step) on the shards that check.sh
# builds from the embedded corpus, so that golf's ms/step is a ratio
# against a run of the reference, not only against the 355 ms (H100) /
# 305 ms (H200) noted in ../shared/notes/measured-here.md.
#
# The reference script is the challenge's code, not ours: it is not
# committed. On the CPU machine, put it beside the binary (both travel in
# .gpu):
#     git -C <parameter-golf clone> show 48404cd4f:train_gpt.py > .gpu/train_gpt.py
#     go build -o .gpu/golf ./cmd/golf
# then, on the device, after (or before) scripts/gpu/check.sh:
#     bash scripts/gpu/reference.sh
# About 2 minutes on one H100: torch.compile, REF_WARMUP untimed warm-up
# steps, REF_STEPS timed steps, the reference's own final evaluation and
# int8+zlib round trip on the small validation split. Only the environment
# is set (DATA_PATH, TOKENIZER_PATH, ITERATIONS, WARMUP_STEPS,
# VAL_LOSS_EVERY, TRAIN_LOG_EVERY, MAX_WALLCLOCK_SECONDS); every model and
# optimiser setting is the script's default. It writes its checkpoints in
# .gpu-ref (kept out of $OUT), its log and ref.json (steady ms/step: the
# training time between step 10 and the last step, over those steps) under
# $OUT, and a copy of ref.json in .gpu-ref for check.sh's summary.
#
# Testing the parsing without a GPU: REF_PYTHON=<a stand-in> runs it instead
# of PyTorch's python (scripts/gpu/reference_test.sh does).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/gpu-out}
GOLF=${GOLF:-$ROOT/.gpu/golf}
SCRIPT=${REF_SCRIPT:-$ROOT/.gpu/train_gpt.py}
REF_STEPS=${REF_STEPS:-40}
REF_WARMUP=${REF_WARMUP:-3}
REF_LIMIT=${REF_LIMIT:-300}
DATA=${DATA:-$ROOT/.gpu-data}
WORK=${REF_WORK:-$ROOT/.gpu-ref}
mkdir -p "$OUT" "$WORK"
[ -f "$SCRIPT" ] || { echo "no reference script at $SCRIPT: see this script's header"; exit 1; }

PY=${REF_PYTHON:-}
if [ -z "$PY" ]; then
  for p in /opt/torch/.venv/bin/python /opt/*/.venv/bin/python python3; do
    if "$p" -c "import torch, sentencepiece" 2>/dev/null; then PY=$p; break; fi
  done
fi
[ -n "$PY" ] || { echo "no python with torch and sentencepiece on this machine"; exit 1; }
echo "python: $PY ($("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null))"

if ! ls "$DATA"/fineweb_train_*.bin > /dev/null 2>&1; then
  [ -x "$GOLF" ] || { echo "no shards in $DATA and no golf binary at $GOLF to build them"; exit 1; }
  timeout 150 "$GOLF" data build --out "$DATA" --force --quiet > "$OUT/ref-data-build.log" 2>&1 \
    || { echo "shard build failed:"; tail -5 "$OUT/ref-data-build.log"; exit 1; }
fi

START=$(date +%s)
(cd "$WORK" && rm -rf logs && DATA_PATH="$DATA" TOKENIZER_PATH="$ROOT/tokenizer/models/fineweb_1024_bpe.model" \
  RUN_ID=ref ITERATIONS="$REF_STEPS" WARMUP_STEPS="$REF_WARMUP" VAL_LOSS_EVERY=0 TRAIN_LOG_EVERY=1 \
  MAX_WALLCLOCK_SECONDS=0 timeout "$REF_LIMIT" "$PY" "$SCRIPT") > "$OUT/ref-stdout.log" 2> "$OUT/ref-stderr.log"
RC=$?
WALL=$(( $(date +%s) - START ))
[ -f "$WORK/logs/ref.txt" ] && cp "$WORK/logs/ref.txt" "$OUT/ref-train.log"
[ $RC = 0 ] || { echo "train_gpt.py failed (rc=$RC, ${WALL}s):"; tail -8 "$OUT/ref-stderr.log"; }

python3 - "$OUT/ref-stdout.log" "$OUT/ref.json" "$RC" "$WALL" <<'EOF'
import json, re, sys
log, out, rc, wall = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
steps, val, peak, total = {}, None, None, None
for line in open(log, errors="replace"):
    m = re.match(r"step:(\d+)/(\d+) train_loss:([0-9.]+) train_time:(\d+)ms", line)
    if m:
        steps[int(m.group(1))] = (float(m.group(3)), float(m.group(4)))
        total = int(m.group(2))
    m = re.match(r"step:\d+/\d+ val_loss:([0-9.]+) val_bpb:([0-9.]+)", line)
    if m:
        val = (float(m.group(1)), float(m.group(2)))
    m = re.match(r"peak memory allocated: (\d+) MiB", line)
    if m:
        peak = int(m.group(1))
res = {"rc": rc, "wall_s": wall, "steps": max(steps) if steps else 0, "batch_tokens": 524288}
if steps and max(steps) > 10:
    last = max(steps)
    res["step_ms"] = (steps[last][1] - steps[10][1]) / (last - 10)
    res["step_ms_from"] = 10
    res["tokens_per_s"] = 524288 / (res["step_ms"] / 1000)
    res["train_loss_first_last"] = [steps[1][0], steps[last][0]] if 1 in steps else None
if val:
    res["val_loss"], res["val_bpb"] = val
if peak is not None:
    res["peak_mib"] = peak
json.dump(res, open(out, "w"), indent=1)
rows = [("train_gpt.py steps", f"{res['steps']} of {total} (rc={rc}, {wall} s wall)")]
if "step_ms" in res:
    rows += [("train_gpt.py ms/step (steps 10..%d)" % res["steps"], f"{res['step_ms']:.1f}"),
             ("train_gpt.py tokens/s", f"{res['tokens_per_s']:,.0f}")]
if val:
    rows.append(("train_gpt.py val_loss / val_bpb", f"{val[0]:.4f} / {val[1]:.4f}"))
if peak is not None:
    rows.append(("train_gpt.py peak memory", f"{peak} MiB"))
w = max(len(k) for k, _ in rows)
for k, v in rows:
    print(f"{k:<{w}}  {v}")
sys.exit(0 if "step_ms" in res else 1)
EOF
PARSE_RC=$?
cp "$OUT/ref.json" "$WORK/ref.json" 2>/dev/null
exit $PARSE_RC
