#!/usr/bin/python3
"""Writes packing_shards/ (three small shards of synthetic documents, each
starting with BOS = 1, one holding a long document and a tail too short for
a span) and packing_rows.json: what the record's (PR #2135) own
DocumentPackingLoader gives every rank for every optimizer step over them,
so that package
data's tests can check golf's PackingLoader: the same spans, the same shard
skips, and the same document segments (_build_cu_seqlens).

Run from data/testdata with Debian's torch 1.13:

    /usr/bin/python3 gen_packing_rows.py [path/to/record/train_gpt.py]

The record is loaded unchanged through scripts/reference/record_shim.py (its
shims are listed there). One more shim here: Tensor.pin_memory, which needs
CUDA, is the identity; torch 1.13 has no uint16 tensors, so the module's
torch.from_numpy widens load_data_shard's uint16 array to int32.

One optimizer step on rank r of W ranks is 8 // W calls of
next_batch(global_tokens, grad_accum_steps) with h.train_seq_len as the
document cap. Per step the file holds the SHA-256 (first 16 hex digits) of
the concatenated x and of y (int32 little-endian), and per call the segment
boundaries (cu_seqlens without its padding, ending at the span length).
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "scripts" / "reference"))
import record_shim  # noqa: E402

DEFAULT_REF = "/work/ref/train_gpt.py"
# (global batch tokens, document cap, steps, world sizes)
CASES = [(512, 16, 30, [1, 2, 8]), (1024, 48, 12, [1, 4]), (256, 0, 40, [1, 8]), (2048, 96, 6, [1, 8])]


def digest(t):
    return hashlib.sha256(t.to(torch.int32).numpy().astype("<i4").tobytes()).hexdigest()[:16]


def write_shards():
    """Deterministic documents in the challenge's shard format."""
    rng = np.random.default_rng(2135)
    d = HERE / "packing_shards"
    d.mkdir(exist_ok=True)
    for i, n in enumerate([3000, 2500, 2800]):
        toks = []
        while len(toks) < n:
            length = int(rng.integers(5, 120)) if rng.random() > 0.05 else 400
            toks += [1] + [int(t) for t in rng.integers(2, 1024, size=length)]
        toks = np.array(toks[:n], dtype="<u2")
        header = np.zeros(256, dtype="<i4")
        header[0], header[1], header[2] = 20240520, 1, len(toks)
        with open(d / f"fineweb_train_{i:06d}.bin", "wb") as f:
            f.write(header.tobytes() + toks.tobytes())


def main():
    write_shards()
    ref_path = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REF)
    mod = record_shim.load_record(str(ref_path))
    torch.Tensor.pin_memory = lambda self: self
    real_from_numpy = torch.from_numpy
    mod.torch.from_numpy = lambda a: real_from_numpy(a.astype(np.int32) if a.dtype == np.uint16 else a)
    out = {"reference": "train_gpt.py (record PR #2135)",
           "reference_sha256": hashlib.sha256(ref_path.read_bytes()).hexdigest(),
           "shards": "packing_shards", "cases": []}
    for global_tokens, cap, steps, worlds in CASES:
        for world in worlds:
            accum = 8 // world
            for rank in range(world):
                h = mod.Hyperparameters()
                h.rank, h.world_size, h.train_seq_len = rank, world, cap
                h.train_files = str(HERE / "packing_shards" / "fineweb_train_*.bin")
                loader = mod.DocumentPackingLoader(h, torch.device("cpu"))
                case = {"global_tokens": global_tokens, "max_doc_len": cap, "world_size": world, "rank": rank,
                        "x_sha256": [], "y_sha256": [], "boundaries": [], "x_head": []}
                for _ in range(steps):
                    xs, ys, bounds = [], [], []
                    for _ in range(accum):
                        x, y, cu, _ = loader.next_batch(global_tokens, accum)
                        n = x.numel()
                        cu = [int(c) for c in cu.tolist()]
                        end = cu.index(n)
                        bounds.append(cu[: end + 1])
                        xs.append(x.reshape(-1))
                        ys.append(y.reshape(-1))
                    x, y = torch.cat(xs), torch.cat(ys)
                    case["x_sha256"].append(digest(x))
                    case["y_sha256"].append(digest(y))
                    case["boundaries"].append(bounds)
                    if not case["x_head"]:
                        case["x_head"] = x[:16].tolist()
                out["cases"].append(case)
    cases = out.pop("cases")
    with open(HERE / "packing_rows.json", "w") as f:
        head = json.dumps(out)[:-1]
        f.write(head + ', "cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")
    print(len(cases), "cases written to packing_rows.json")


if __name__ == "__main__":
    main()
