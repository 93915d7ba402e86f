#!/bin/bash
# Checks reference.sh's parsing and output without a GPU: a stand-in for
# PyTorch's python prints the reference's log lines (the formats of
# train_gpt.py at 48404cd4f) for 40 steps of 300 ms after step 10.
set -eu -o pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/data" "$TMP/out"
: > "$TMP/data/fineweb_train_000000.bin"
: > "$TMP/train_gpt.py"
cat > "$TMP/python" <<'PY'
#!/bin/bash
if [ "$1" = -c ]; then echo "torch stand-in"; exit 0; fi
echo "logs/ref.txt"
for s in $(seq 1 40); do
  t=$(( s <= 10 ? s * 320 : 3200 + (s - 10) * 300 ))
  echo "step:$s/40 train_loss:$(( 7 - s / 10 )).5000 train_time:${t}ms step_avg:$(( t / s )).00ms"
done
echo "step:40/40 val_loss:4.2000 val_bpb:2.4900 train_time:12200ms step_avg:305.00ms"
echo "peak memory allocated: 10900 MiB reserved: 11000 MiB"
PY
chmod +x "$TMP/python"
OUT="$TMP/out" REF_WORK="$TMP/work" DATA="$TMP/data" REF_SCRIPT="$TMP/train_gpt.py" REF_PYTHON="$TMP/python" \
  bash "$ROOT/scripts/gpu/reference.sh" > "$TMP/table.txt"
cat "$TMP/table.txt"
python3 - "$TMP/out/ref.json" <<'CHECK'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["rc"] == 0 and r["steps"] == 40, r
assert abs(r["step_ms"] - 300.0) < 1e-9, r          # (12200 - 3200) / 30
assert abs(r["tokens_per_s"] - 524288 / 0.3) < 1e-6, r
assert (r["val_loss"], r["val_bpb"], r["peak_mib"]) == (4.2, 2.49, 10900), r
print("reference.sh: parsing ok")
CHECK

# A reference that fails before its first step: reference.sh fails too.
printf '#!/bin/bash\n[ "$1" = -c ] && exit 0\necho "Traceback: CUDA is required" >&2\nexit 1\n' > "$TMP/python"
if OUT="$TMP/out" REF_WORK="$TMP/work" DATA="$TMP/data" REF_SCRIPT="$TMP/train_gpt.py" REF_PYTHON="$TMP/python" \
    bash "$ROOT/scripts/gpu/reference.sh" > "$TMP/table.txt"; then
  echo "reference.sh succeeded on a failed reference run"; exit 1
fi
grep -q '"rc": 1' "$TMP/out/ref.json" || { echo "ref.json does not record the failure"; exit 1; }
echo "reference.sh: a failed run fails"
