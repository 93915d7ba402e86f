#!/usr/bin/python3
"""Writes reference_losses.json: the challenge's own train_gpt.py, trained on
the CPU in float32 from golf's initial weights on the committed shards
data/testdata/ref_sp1024, for a few steps of golf's tiny preset; package
train's TestRunEqualsReferenceTraining checks golf's losses against it.

What runs is the reference's main() itself (its hyperparameters from the
environment, its loader, GPT, Muon, Adam split, LR schedule, momentum
warm-up, eval_val and int8 round trip), with the shims listed below for a
machine without CUDA and with torch 1.13. Get the script with

    git -C <parameter-golf clone> show 48404cd4f:train_gpt.py > baseline_train_gpt.py

and run from the repository root (Go and torch 1.13 needed):

    go run ./train/testdata/initweights -preset tiny -seed 1337 -out /tmp/init.bin
    /usr/bin/python3 train/testdata/gen_reference_losses.py /tmp/init.bin [baseline_train_gpt.py]

Shims (what the CPU and torch 1.13 lack, and the float32 run):
  1. torch.compile (torch >= 2.0): the identity.
  2. CUDA: torch.cuda.is_available() is True, set_device/synchronize do
     nothing, max_memory_* are 0, torch.device("cuda", i) is the CPU.
  3. torch.backends.cuda.enable_{cudnn,flash,mem_efficient,math}_sdp
     (torch >= 2.0): do nothing.
  4. subprocess.run(["nvidia-smi"]): empty output (no GPU tool here).
  5. torch.autocast(device_type="cuda", bfloat16): off, so the run is fp32.
  6. GPT(...).bfloat16(): the identity (fp32), and the GPT's weights are
     replaced by golf's model.InitWeights (the tensor file) after its own
     initialisation.
  7. torch.optim.Adam(fused=True): fused=False (1.13 fuses on CUDA only;
     same formula).
  8. F.rms_norm and F.scaled_dot_product_attention (torch >= 2.4 / 2.0):
     their documented formulas (eps None = finfo(dtype).eps; causal mask;
     enable_gqa repeats each KV head for its query heads; scale 1/sqrt(d)).
  9. zeropower_via_newtonschulz5 in float32 instead of bfloat16: the tiny
     preset runs Newton-Schulz in float32 (golf --muon-dtype float32); the
     function's own source with G.bfloat16() -> G.float().
 10. torch.from_numpy of load_data_shard's uint16 array (no uint16 tensors
     in 1.13): widened to int32, the same values.
Recorded: the loss of every training forward (grad enabled) grouped by
optimizer step (train_loss = their mean, as the reference logs it), and
eval_val's (val_loss, val_bpb) at full precision: the final evaluation and
the int8+zlib round trip.
"""
import contextlib
import hashlib
import importlib.util
import inspect
import json
import math
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REF = "/work/ref/baseline_train_gpt.py"

# golf's tiny preset (model.Preset("tiny"), train.PresetSettings("tiny")),
# step-counted: 5 iterations with a 3-step warm-down, no warm-up steps (the
# reference undoes them: they change nothing), validation at the end only.
STEPS = 5
ENV = {
    "DATA_PATH": str(REPO / "data/testdata/ref_sp1024"),
    "TOKENIZER_PATH": str(REPO / "tokenizer/models/fineweb_1024_bpe.model"),
    "RUN_ID": "golf_reference", "SEED": "1337",
    "VOCAB_SIZE": "1024", "NUM_LAYERS": "4", "MODEL_DIM": "128", "NUM_HEADS": "4",
    "NUM_KV_HEADS": "2", "MLP_MULT": "2",
    "TRAIN_BATCH_TOKENS": "2048", "TRAIN_SEQ_LEN": "256",
    "ITERATIONS": str(STEPS), "WARMDOWN_ITERS": "3", "WARMUP_STEPS": "0",
    "MAX_WALLCLOCK_SECONDS": "0", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1",
}


def read_tensors(path):
    """golf's tensor file (train/tensorfile.go): name -> float32 array. The
    CRC-32C trailer is not checked (no crc32c in Python's standard library):
    the file was just written by initweights; the records must fill it."""
    b = Path(path).read_bytes()
    version = struct.unpack_from("<I", b, 8)[0]
    assert b[:8] == b"GOLFTENS" and version in (1, 2), (b[:8], version)
    n = struct.unpack_from("<I", b, 12)[0]
    off, out = 16, {}
    for _ in range(n):
        ln = struct.unpack_from("<H", b, off)[0]
        off += 2
        name = b[off:off + ln].decode()
        off += ln
        if version >= 2:  # class byte, then the initialiser's text (uint16 length)
            off += 1
            off += 2 + struct.unpack_from("<H", b, off)[0]
        rank = b[off]
        off += 1
        shape = struct.unpack_from("<%dI" % rank, b, off)
        off += 4 * rank
        count = int(np.prod(shape)) if rank else 1
        out[name] = np.frombuffer(b, dtype="<f4", count=count, offset=off).reshape(shape).copy()
        off += 4 * count
    assert off == len(b) - 4
    return out


def golf_to_torch_name(name):
    """golf's parameter names (model.Config.Params) -> the GPT's state_dict."""
    if name in ("tok_emb",):
        return "tok_emb.weight"
    if name == "skip_weights":
        return name
    block, rest = name.split("/", 1)
    i = int(block.removeprefix("block_"))
    parts = rest.split("/")
    if parts[-1] in ("q_gain", "attn_scale", "mlp_scale", "resid_mix"):
        return f"blocks.{i}." + ".".join(parts)
    return f"blocks.{i}." + ".".join(parts) + ".weight"


class TorchShim:
    """torch as the reference module sees it (shims 1, 2, 5, 7, 10)."""

    class cuda:
        is_available = staticmethod(lambda: True)
        set_device = staticmethod(lambda *a, **k: None)
        synchronize = staticmethod(lambda *a, **k: None)
        manual_seed_all = staticmethod(lambda *a, **k: None)
        max_memory_allocated = staticmethod(lambda *a, **k: 0)
        max_memory_reserved = staticmethod(lambda *a, **k: 0)

    class optim:
        Optimizer = torch.optim.Optimizer

        @staticmethod
        def Adam(*args, fused=False, **kw):
            return torch.optim.Adam(*args, **kw)

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def device(*args, **kw):
        return torch.device("cpu")

    @staticmethod
    def compile(fn, *a, **k):
        return fn

    @staticmethod
    def autocast(*a, **k):
        return contextlib.nullcontext()

    @staticmethod
    def from_numpy(a):
        if a.dtype == np.uint16:
            a = a.astype(np.int32)
        return torch.from_numpy(a)


class SubprocessShim:
    """shim 4: no nvidia-smi."""

    class _Done:
        stdout = ""

    PIPE = -1

    def run(self, *a, **k):
        return self._Done()


def rms_norm(x, normalized_shape, weight=None, eps=None):
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    dims = tuple(range(-len(normalized_shape), 0))
    y = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + eps)
    return y if weight is None else y * weight


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    assert attn_mask is None and dropout_p == 0.0
    if enable_gqa and k.size(-3) != q.size(-3):
        rep = q.size(-3) // k.size(-3)
        k = k.repeat_interleave(rep, dim=-3)
        v = v.repeat_interleave(rep, dim=-3)
    s = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    att = (q @ k.transpose(-2, -1)) * s
    if is_causal:
        L, S = q.size(-2), k.size(-2)
        mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        att = att.masked_fill(~mask, float("-inf"))
    return torch.softmax(att, dim=-1) @ v


def main():
    init_path = sys.argv[1]
    ref_path = Path(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_REF).resolve()
    os.environ.update(ENV)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        os.environ.pop(var, None)
    torch.set_num_threads(2)

    # Shims 3 and 8 live in torch's own modules (imported by name there).
    import torch.backends.cuda as tbc
    for fn in ("enable_cudnn_sdp", "enable_flash_sdp", "enable_mem_efficient_sdp", "enable_math_sdp"):
        if not hasattr(tbc, fn):
            setattr(tbc, fn, lambda *a, **k: None)
    if not hasattr(F, "rms_norm"):
        F.rms_norm = rms_norm
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = scaled_dot_product_attention

    spec = importlib.util.spec_from_file_location("train_gpt", ref_path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    ref.torch = TorchShim()
    ref.subprocess = SubprocessShim()
    src = inspect.getsource(ref.zeropower_via_newtonschulz5)  # shim 9
    assert src.count("G.bfloat16()") == 1
    exec(compile(src.replace("G.bfloat16()", "G.float()"), str(ref_path), "exec"), ref.__dict__)

    init = read_tensors(init_path)
    train_losses, evals = [], []
    BaseGPT = ref.GPT

    class GPT(BaseGPT):  # shim 6, and the recording of training losses
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            sd = self.state_dict()
            loaded = {golf_to_torch_name(n): torch.from_numpy(v) for n, v in init.items()}
            assert set(loaded) == set(sd), (set(loaded) ^ set(sd))
            for n, t in loaded.items():
                assert tuple(t.shape) == tuple(sd[n].shape), n
            self.load_state_dict(loaded, strict=True)

        def bfloat16(self):
            return self

        def forward(self, input_ids, target_ids):
            loss = super().forward(input_ids, target_ids)
            if torch.is_grad_enabled():
                train_losses.append(loss.item())
            return loss

    ref.GPT = GPT
    base_eval = ref.eval_val

    def eval_val(*a, **k):
        r = base_eval(*a, **k)
        evals.append(r)
        return r

    ref.eval_val = eval_val

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            ref.main()
        finally:
            os.chdir(cwd)

    accum = 8
    assert len(train_losses) == STEPS * accum, len(train_losses)
    steps = [sum(train_losses[i * accum:(i + 1) * accum]) / accum for i in range(STEPS)]
    out = {
        "reference": "train_gpt.py (challenge baseline), main() on the CPU in float32, shims in gen_reference_losses.py",
        "reference_sha256": hashlib.sha256(ref_path.read_bytes()).hexdigest(),
        "init_sha256": hashlib.sha256(Path(init_path).read_bytes()).hexdigest(),
        "env": ENV | {"DATA_PATH": "data/testdata/ref_sp1024", "TOKENIZER_PATH": "tokenizer/models/fineweb_1024_bpe.model"},
        "train_loss": steps,
        "micro_step_loss": train_losses,
        "final": {"val_loss": evals[0][0], "val_bpb": evals[0][1]},
        "int8_zlib_roundtrip": {"val_loss": evals[1][0], "val_bpb": evals[1][1]},
    }
    with open(Path(__file__).resolve().parent / "reference_losses.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({"train_loss": steps, "final": out["final"]}))


if __name__ == "__main__":
    main()
