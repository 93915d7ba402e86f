#!/usr/bin/python3
"""Writes loader_rows.json: the rows the challenge's own DistributedTokenLoader
(train_gpt.py) gives every rank for every optimizer step, read from the
committed shards ref_sp1024/, so that package data's tests can check that
golf's Loader.NextStep reads the same tokens.

The loader is imported from the challenge's baseline train_gpt.py unchanged
(TokenStream + DistributedTokenLoader + load_data_shard; importing the file
runs no training). Get it with

    git -C <parameter-golf clone> show 48404cd4f:train_gpt.py > baseline_train_gpt.py

and run from data/testdata with torch 1.13 and numpy:

    /usr/bin/python3 gen_loader_rows.py [path/to/baseline_train_gpt.py]

One shim: torch 1.13 has no uint16 tensors, so torch.from_numpy, as the
module sees it, widens load_data_shard's uint16 array to int32 (the same
values; next_batch converts to int64 anyway). Everything else (torch.cat,
slicing, reshape, .to(device)) is torch 1.13's own; the device is the CPU.

One optimizer step on rank r of W ranks is what train_gpt.py's loop does:
grad_accum_steps = 8 // W calls of next_batch(TRAIN_BATCH_TOKENS,
TRAIN_SEQ_LEN, grad_accum_steps), every rank reading its own loader over the
same stream. For each case and step the file holds the SHA-256 of the
concatenated x rows and of the y rows (int32 little-endian; its first 16
hex digits); for the first step also the first 16 tokens of x and y.
"""
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DEFAULT_REF = "/work/ref/baseline_train_gpt.py"

# (global batch tokens, sequence length, steps): the tiny preset's layout
# (2,056 stream tokens a step: the 23,335-token stream wraps within the
# steps), a small odd one, and one whose spans are several rows.
CASES = [(2048, 256, 14), (64, 4, 9), (4096, 64, 8)]
WORLD_SIZES = [1, 2, 4, 8]


class TorchShim:
    """torch as the reference module sees it: from_numpy accepts uint16."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def from_numpy(a):
        if a.dtype == np.uint16:
            a = a.astype(np.int32)
        return torch.from_numpy(a)


def load_reference(path):
    spec = importlib.util.spec_from_file_location("train_gpt", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.torch = TorchShim()
    return mod


def digest(t):
    return hashlib.sha256(t.to(torch.int32).numpy().astype("<i4").tobytes()).hexdigest()[:16]


def main():
    ref_path = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REF)
    ref = load_reference(ref_path)
    pattern = str(HERE / "ref_sp1024" / "fineweb_train_*.bin")
    out = {
        "reference": "train_gpt.py (challenge baseline)",
        "reference_sha256": hashlib.sha256(ref_path.read_bytes()).hexdigest(),
        "shards": "ref_sp1024",
        "cases": [],
    }
    for global_tokens, seq_len, steps in CASES:
        for world in WORLD_SIZES:
            accum = 8 // world
            for rank in range(world):
                loader = ref.DistributedTokenLoader(pattern, rank, world, torch.device("cpu"))
                case = {"global_tokens": global_tokens, "seq_len": seq_len, "world_size": world,
                        "rank": rank, "grad_accum_steps": accum, "x_sha256": [], "y_sha256": [],
                        "x_head": [], "y_head": []}
                for _ in range(steps):
                    xs, ys = [], []
                    for _ in range(accum):
                        x, y = loader.next_batch(global_tokens, seq_len, accum)
                        xs.append(x)
                        ys.append(y)
                    x, y = torch.cat(xs), torch.cat(ys)
                    assert x.shape == (global_tokens // world // seq_len, seq_len), x.shape
                    case["x_sha256"].append(digest(x))
                    case["y_sha256"].append(digest(y))
                    if not case["x_head"]:
                        case["x_head"] = x.reshape(-1)[:16].tolist()
                        case["y_head"] = y.reshape(-1)[:16].tolist()
                out["cases"].append(case)
    cases = out.pop("cases")
    with open(HERE / "loader_rows.json", "w") as f:  # one case per line
        head = json.dumps(out)[:-1]
        f.write(head + ', "cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}\n")
    print(len(cases), "cases written to loader_rows.json")


if __name__ == "__main__":
    main()
