#!/usr/bin/python3
"""Writes record_reference.bin: outputs of the final record's own quantization
and serialization code (PR #2135's train_gpt.py) on deterministic inputs, for
quant's parity tests (record_parity_test.go).

The functions are taken from the record's file itself, not rewritten: the
file is parsed with `ast`, the definitions named in RECORD_FUNCTIONS (and the
module constants they read) are compiled from its source and exec'd in one
namespace. The module as a whole cannot be imported here: it imports
flash_attn_interface and triton and registers torch.library custom ops,
none of which exist for Debian's torch 1.13 on the CPU. Nothing else needed a
shim: gptq_quantize_weight, _lqer_pack_asym, gptq_mixed_quantize,
_similarity_sort_l1 and _byte_shuffle/_byte_unshuffle run unchanged under
torch 1.13 (torch.linalg.cholesky(upper=True), torch.cholesky_inverse and
torch.linalg.svd exist there). gptq_mixed_quantize calls the module's `log`,
which is replaced by a function that discards its argument, and reads its
hyperparameters from an object `h` built here with the record's values
(record-stack.md §7c: int6 matrices, int7 embedding, clip sigmas 13.0 /
11.5 / 14.0, LQER rank 4, top-k 3, asymmetric, group 32).

Run:  /usr/bin/python3 gen_record_reference.py [/work/ref/train_gpt.py]
(the record's file: `git show refs/pull/2135/head:records/track_10min_16mb/
2026-05-01_SP8192_PR2130Base_Calib32/train_gpt.py` in the challenge repo).

Output format (little-endian), zlib-compressed as a whole: a sequence of
arrays, each
  u16 name length, name (UTF-8), u8 dtype (1 f32, 2 i8, 3 u16, 4 u8, 5 i16, 6 i64),
  u8 rank, rank x u32 dims, the values in row-major order.
Names are "<case>/<field>"; the Go test reads them by name.
"""
import ast
import struct
import sys
import zlib

import numpy as np
import torch

RECORD_FUNCTIONS = [
    "gptq_quantize_weight", "_lqer_pack", "_lqer_pack_asym", "gptq_mixed_quantize",
    "_similarity_sort_l1", "_byte_shuffle", "_byte_unshuffle",
]
RECORD_CONSTANTS = ["_BSHF_MAGIC"]


def load_record(path):
    src = open(path, encoding="utf-8").read()
    tree = ast.parse(src)
    keep = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in RECORD_FUNCTIONS:
            keep.append(node)
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in RECORD_CONSTANTS for t in node.targets):
            keep.append(node)
    found = {n.name for n in keep if isinstance(n, ast.FunctionDef)}
    missing = set(RECORD_FUNCTIONS) - found
    if missing:
        sys.exit(f"{path}: functions not found: {sorted(missing)}")
    import collections, re  # the record's module-level imports these functions use
    ns = {"torch": torch, "np": np, "collections": collections, "re": re,
          "log": lambda *a, **k: None}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), ns)
    return ns


DTYPES = {np.float32: 1, np.int8: 2, np.uint16: 3, np.uint8: 4, np.int16: 5, np.int64: 6}


class Writer:
    def __init__(self):
        self.blob = bytearray()
        self.names = set()

    def add(self, name, arr):
        if isinstance(arr, torch.Tensor):
            if arr.dtype == torch.float16:
                arr = arr.view(torch.int16).numpy().view(np.uint16)
            else:
                arr = arr.numpy()
        arr = np.ascontiguousarray(arr)
        code = DTYPES[arr.dtype.type]
        assert name not in self.names, name
        self.names.add(name)
        nb = name.encode()
        self.blob += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", code, arr.ndim)
        for d in arr.shape:
            self.blob += struct.pack("<I", d)
        self.blob += arr.astype(arr.dtype.newbyteorder("<")).tobytes()


MASK = (1 << 64) - 1


class LCG:
    """The generator of gen_reference.py (and of the Go tests): float64 draws."""

    def __init__(self, seed):
        self.state = seed & MASK

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return (self.state >> 11) * (1.0 / (1 << 53))


def weights(seed, rows, cols, heavy=False):
    """Row gains, column gains and Gaussian-like (or heavy-tailed) values, in
    float64 as the Go test recomputes them, then rounded to float32."""
    g = LCG(seed)
    col = [0.5 + g.uniform() for _ in range(cols)]
    out = []
    for r in range(rows):
        u = g.uniform()
        row = 0.01 * (0.25 + 2.0 * u * u)
        for c in range(cols):
            if heavy:
                a = g.uniform() - 0.5
                v = a / (g.uniform() + 0.05) * 0.1 * row * col[c]
            else:
                v = (g.uniform() + g.uniform() + g.uniform() + g.uniform() - 2.0) * row * col[c]
            out.append(v)
    return torch.tensor(out, dtype=torch.float64).reshape(rows, cols).float()


def hessian(seed, n, cols, dead=()):
    """X^T X of n integer input rows: per-feature gains 1..4, a component
    shared by the row's features (so features correlate), `dead` features
    never firing. Every value is an integer below 2^24, so the float32
    product is exact and the Go test rebuilds it bit for bit."""
    g = LCG(seed)
    gain = [1 + int(g.uniform() * 4) for _ in range(cols)]
    x = []
    for _ in range(n):
        shared = int(g.uniform() * 9) - 4
        x.append([(int(g.uniform() * 15) - 7) * gain[c] + shared for c in range(cols)])
    x = torch.tensor(x, dtype=torch.float32)
    for j in dead:
        x[:, j] = 0
    h = x.T @ x
    assert float(h.abs().max()) < 2 ** 24
    return h


class H:
    """The record's quantization hyperparameters (record-stack.md §7c)."""
    matrix_bits = 6
    embed_bits = 7
    matrix_clip_sigmas = 12.85
    attn_clip_sigmas = 13.0
    mlp_clip_sigmas = 11.5
    embed_clip_sigmas = 14.0
    lqer_enabled = True
    lqer_rank = 4
    lqer_top_k = 3
    lqer_factor_bits = 4
    lqer_asym_enabled = True
    lqer_asym_group = 32
    gated_attn_quant_gate = False


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/train_gpt.py"
    rec = load_record(path)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2135)
    out = Writer()

    # GPTQ on single matrices: int6 at 13 std (attention), int7 at 14 std with
    # dead input columns (embedding), int6 at 11.5 std on heavy tails over
    # three column blocks (MLP).
    gptq_cases = [("gptq_attn", 96, 192, 13.0, 31, False, ()),
                  ("gptq_dead", 48, 160, 14.0, 63, False, (3, 77, 159)),
                  ("gptq_mlp", 64, 320, 11.5, 31, True, ())]
    for i, (name, rows, cols, k, qmax, heavy, dead) in enumerate(gptq_cases):
        w = weights(100 + i, rows, cols, heavy)  # dead columns keep weights: GPTQ zeroes them
        hs = hessian(200 + i, 2 * cols, cols, dead)
        q, s = rec["gptq_quantize_weight"](w, hs, clip_sigmas=k, clip_range=qmax)
        out.add(name + "/params", np.array([rows, cols, 100 + i, 200 + i, 2 * cols, int(heavy), qmax], dtype=np.int64))
        out.add(name + "/dead", np.array(dead, dtype=np.int64))
        out.add(name + "/clip", np.array([k], dtype=np.float32))
        out.add(name + "/q", q)
        out.add(name + "/s", s)

    # LQER asymmetric packing of given factors, groups of 32 (the record) and 64.
    for g in (32, 64):
        a = torch.randn(96, 4, generator=gen) * torch.tensor([0.3, 0.1, 0.05, 0.02])
        b = torch.randn(4, 192, generator=gen) * 0.07
        a[5, 2] = 0.0
        qa, sa, qb, sb = rec["_lqer_pack_asym"](a.float(), b.float(), g)
        c = f"lqer_g{g}"
        out.add(c + "/a", a.float())
        out.add(c + "/b", b.float())
        out.add(c + "/qa", qa)
        out.add(c + "/sa", sa.reshape(1))
        out.add(c + "/qb", qb)
        out.add(c + "/sb", sb)

    # The whole mixed quantizer on a small state dict: GPTQ per class, fp16
    # passthrough of tensors <= 65,536 values, LQER on the top 3 errors.
    # (name, rows, cols, heavy); seeds 300+i for weights, 400+i for inputs
    mixed = [("blocks.0.attn.c_q.weight", 272, 256, False), ("blocks.0.attn.proj.weight", 256, 272, False),
             ("blocks.0.mlp.fc.weight", 544, 128, True), ("blocks.0.mlp.proj.weight", 128, 544, False),
             ("tok_emb.weight", 320, 224, False), ("blocks.0.attn_scale", 1, 256, False),
             ("blocks.0.resid_mix", 2, 256, False)]
    sd, hs = {}, {}
    for i, (n, rows, cols, heavy) in enumerate(mixed):
        sd[n] = weights(300 + i, rows, cols, heavy)
        if n == "blocks.0.attn_scale":
            sd[n] = sd[n].reshape(cols)
        if sd[n].numel() > 65536:
            hs[n] = hessian(400 + i, cols + cols // 2, cols)
        out.add("mixed/spec/" + n, np.array([rows, cols, 300 + i, 400 + i, cols + cols // 2, int(heavy)], dtype=np.int64))
    result, meta = rec["gptq_mixed_quantize"](sd, hs, H())
    for n in sorted(result):
        out.add("mixed/out/" + n, result[n])
    lq = sorted(n for n, m in meta.items() if "lqer" in m)
    out.add("mixed/lqer_names", np.frombuffer(("\n".join(lq)).encode(), dtype=np.uint8))

    # Greedy L1 row ordering: ties between rows (duplicates, equal distances)
    # go to the lowest index; one and two rows; a wide int6 matrix.
    sort_cases = {
        "sort_ties": np.array([[0, 1, 2], [5, 5, 5], [0, 1, 3], [0, 1, 1], [5, 5, 5], [0, 1, 2], [3, 3, 3]], dtype=np.int8),
        "sort_one": np.array([[1, -2, 3]], dtype=np.int8),
        "sort_two": np.array([[4, 4], [-4, -4]], dtype=np.int8),
        "sort_int6": torch.clamp(torch.round(torch.randn(70, 48, generator=gen) * 6), -31, 31).to(torch.int8).numpy(),
        "sort_full": np.random.default_rng(7).integers(-128, 128, size=(33, 9)).astype(np.int8),
    }
    for name, m in sort_cases.items():
        out.add(name + "/m", m)
        out.add(name + "/perm", rec["_similarity_sort_l1"](m).astype(np.uint16))

    # Byte shuffle (stride 2, the record's) on an odd length, then stride 4 and
    # inputs shorter than the stride.
    rng = np.random.default_rng(11)
    for name, n, stride in [("shuffle_odd", 1001, 2), ("shuffle_s4", 64 + 3, 4), ("shuffle_short", 1, 2)]:
        data = rng.integers(0, 256, size=n).astype(np.uint8).tobytes()
        sh = rec["_byte_shuffle"](data, stride)
        assert rec["_byte_unshuffle"](sh) == data
        out.add(name + "/in", np.frombuffer(data, dtype=np.uint8))
        out.add(name + "/out", np.frombuffer(sh, dtype=np.uint8))
        out.add(name + "/stride", np.array([stride], dtype=np.int64))

    with open("record_reference.bin", "wb") as f:
        f.write(zlib.compress(bytes(out.blob), 9))
    print(f"record_reference.bin: {len(out.names)} arrays, lqer on {lq}")


if __name__ == "__main__":
    main()
