#!/usr/bin/python3
"""Generate the golden files that model/golden_test.go compares golf's model against.

The references are the challenge's own PyTorch code, executed unchanged (never
rewritten) with a few shims, at micro sizes with fixed random weights and inputs:

  record    PR #2135's train_gpt.py (the final record): its GPT class, built from its
            Hyperparameters object h, one case per technique and the full stack;
  baseline  the challenge's baseline train_gpt.py: its GPT class (relu², additive skips);
  t1019     PR #1019's train_gpt.py (BigramHash3072 record), for BigramHash and value
            embeddings, which #2135 dropped (PR #549's classes are identical to #1019's
            for both modules, so one source covers them).

Run with Debian's python3-torch (1.13, CPU), from anywhere:

    /usr/bin/python3 model/testdata/gen_golden.py [--record PATH] [--baseline PATH]
        [--t1019 PATH] [--out DIR]

Each source defaults to the challenge repository's mirror
(git -C /work/.mirror/openai+parameter-golf/repo show REF:PATH, see SOURCES). The script
writes one DIR/<case>.golden.gz per case (default DIR: model/testdata/golden) and is
deterministic: the same sources give byte-identical files.

Shims (torch 1.13 and a CPU machine lack what the record's GPU run had). Every source is
loaded through scripts/reference/record_shim.py (shared with train's golden generator;
details there):
  * F.rms_norm (torch >= 2.4): x * rsqrt(mean(x², last dims) + eps) with the record's eps
    semantics, eps=None -> torch.finfo(dtype).eps (1.19e-7 for float32; every call in the
    sources passes None);
  * flash_attn_interface (FlashAttention 3, CUDA only): flash_attn_func(q, k, v, causal)
    and flash_attn_varlen_func(q, k, v, cu_seqlens, ..., causal) as explicit float32
    softmax attention, scale 1/sqrt(head_dim), causal and per-cu_seqlens-segment masks,
    GQA by repeating K/V (query head h reads KV head h // (H / Hkv), FA's convention);
  * triton, triton.language, triton.tools.tensor_descriptor: stub modules so the record
    imports; torch.library.custom_op (torch >= 2.4): a plain decorator; torch.compile
    (torch >= 2.0; the record decorates its Newton-Schulz with it): the identity.
The record's two Triton paths stay off (a launch would fail: the stubs cannot run a
kernel, the fused CE rejects CPU tensors): the fused softcapped CE with
h.fused_ce_enabled = False (forward() then takes its eager path: softcap in float32 and
F.cross_entropy, "PR-1736 numerics"); the fused LeakyReLU² MLP by model.eval()
(MLP.forward uses it only when self.training; nothing else in GPT reads self.training).
The plain path is the training math: the kernel stores pre = x W_upᵀ and post =
leaky(pre)², and its backward multiplies by where(pre > 0, 2 pre, 0.5 pre), the derivative
autograd takes through F.leaky_relu(·, 0.5).square(); the fused CE computes 2c·σ(2z/c) =
c·tanh(z/c) + c, equal to the eager softcap CE since cross-entropy is shift-invariant.
Specific to this script:
  * F.scaled_dot_product_attention (torch >= 2.0; the baseline calls it with
    is_causal=True and enable_gqa): explicit float32 softmax(q kᵀ/sqrt(d) + causal mask) v,
    K/V repeated per query-head group (enable_gqa's repeat_interleave);
  * the baseline's GPT.forward returns only the mean loss: its module's F is
    torch.nn.functional with a cross_entropy that records the per-token losses
    (reduction="none") and returns their mean, the value forward() returned before;
  * sentencepiece and zstandard are stubbed only if absent (imported, never used here).

Inputs and what is recorded. Weights are random (seeded per parameter name; see init_value)
so that no path is the identity; gates and lambdas are far from their zero/one inits. For
the record the banks map to golf's per-layer names (qo_bank[i] -> block_i/attn/c_q,
qo_bank[n+i] -> block_i/attn/proj, kv_bank[i] -> c_k, kv_bank[n+i] -> c_v, mlp_up_bank[i]
-> block_i/mlp/fc, mlp_down_bank[i] -> block_i/mlp/proj; blocks.i.attn.attn_gate_w ->
block_i/attn/gate, smear_gate.weight -> smear/gate, smear_lambda -> smear/lambda, 0-d
scalars -> [1]). Per case: the golf config, the inputs, targets, the record's per-token
losses (forward_logits + F.cross_entropy(reduction="none"): the eval path) and logits,
forward()'s training loss, and the gradient of the mean per-token loss with respect to
every golf parameter. Where forward() differs from forward_logits (AsymLogit: training
uses the scalar softcap) its loss is recorded separately as train_loss; elsewhere the script
checks that forward()'s loss and gradients equal the eval path's. A record parameter
golf does not declare for the config (parallel lambdas without lanes) must get no gradient;
the script checks that.

Quirks handled as the record has them: SMEAR_GATE_BOS_FIX is read from the environment at
forward time (set per case); BOS_ID is a module global that the record's loaders set to 1;
looping_active is set on the model (golf: Options.Unlooped); document-isolated attention
gets cu_seqlens from the record's own _build_cu_seqlens (BOS positions, max_doc_len cuts,
bucket padding) on a single packed row, as its DocumentPackingLoader does. PR #1019's GPT
hard-wires the #65 SmearGate (x <- (1-σ(g)) x + σ(g) x_prev after the first rmsnorm), which
golf does not implement: its gate is set to -1e4, so σ(g) = 0 exactly in float32 and the
module is the identity (its gradient is then exactly 0; the script checks that).

Not covered (float32 here): the record's and the baseline's GPU runs build the model with
GPT(h).to(device).bfloat16(), which also casts Rotary's non-persistent inv_freq buffer to
bfloat16 (restore_fp32_params restores parameters, not buffers); the baseline's Rotary then
also makes its positions in bfloat16 (arange in inv_freq's dtype). The models as run use
those rounded frequencies (and, for the baseline, rounded positions above 256), not the
float32 tables these files hold.

File format (gzip, mtime 0): the 8 bytes "GOLFGLD1", a little-endian uint32 header length,
the header (UTF-8 JSON: case, kind, source (the repository ref of SOURCES; a file given on
the command line is taken as a copy of it), source_sha256 (of the code that ran),
description, config (golf's model.Config JSON), options, batch, seq, mean_loss, train_loss,
and tensors: name -> {dtype "float32"|"int32", shape, offset}), then the tensor data,
little-endian, at the offsets (bytes from the end of the header). Tensor names: inputs,
targets [B, T] int32; cu_seqlens [N] int32 (varlen cases); losses [B, T]; logits [B, T, V]
(not for the baseline, whose GPT has no logits method); weights/<golf name>;
grads/<golf name>. The "rope" file (kind "rope") holds the record's and the baseline's
Rotary tables: inv_freq/<tag> and cos/<tag>, sin/<tag> [P, rd/2] at the positions
positions/<tag>. The "bigram_hash" file holds PR #1019's bigram_hash of tokens [3, 40]
(edge and random ids over the uint16 range) as hash/vb<N> for the table sizes in sizes.
"""

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import types
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "reference"))
import record_shim  # noqa: E402

MIRROR = "/work/.mirror/openai+parameter-golf/repo"
SOURCES = {
    "record": "refs/pull/2135/head:records/track_10min_16mb/2026-05-01_SP8192_PR2130Base_Calib32/train_gpt.py",
    "baseline": "main:train_gpt.py",
    "t1019": "refs/pull/1019/head:records/track_10min_16mb/2026-03-25_ValCalib_GPTQ_XSA_BigramHash3072/train_gpt.py",
}
MAGIC = b"GOLFGLD1"
BOS = 1


# ----------------------------------------------------------------------------- shims


def _softmax_attention(q, k, v, allowed):
    """q [T, H, D], k, v [T, Hkv, D], allowed [T, T] bool -> [T, H, D] in float32."""
    h, hkv, d = q.shape[1], k.shape[1], q.shape[2]
    if h % hkv:
        raise ValueError(f"attention shim: {h} query heads not a multiple of {hkv} KV heads")
    k = k.float().repeat_interleave(h // hkv, dim=1)
    v = v.float().repeat_interleave(h // hkv, dim=1)
    scores = torch.einsum("thd,shd->hts", q.float(), k) / math.sqrt(d)
    scores = scores.masked_fill(~allowed[None], float("-inf"))
    return torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).to(q.dtype)


def _causal(t, device):
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """torch >= 2.0's SDPA for the baseline's call: q [B, H, T, D], k, v [B, Hkv, T, D]."""
    if attn_mask is not None or dropout_p or scale is not None or not is_causal:
        raise NotImplementedError("scaled_dot_product_attention shim: unsupported arguments")
    if k.shape[1] != q.shape[1] and not enable_gqa:
        raise ValueError("SDPA shim: KV heads differ from query heads without enable_gqa")
    allowed = _causal(q.shape[2], q.device)
    out = [_softmax_attention(q[b].transpose(0, 1), k[b].transpose(0, 1), v[b].transpose(0, 1), allowed)
           for b in range(q.shape[0])]
    return torch.stack(out).transpose(1, 2)


class _StubModule(types.ModuleType):
    """A module whose every attribute is a harmless placeholder."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self.__name__}.{name}")


class _Placeholder:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, name):
        return _Placeholder(f"{self._name}.{name}")

    def __call__(self, *a, **k):
        raise RuntimeError(f"{self._name} called: not available in the golden generator")


def install_shims():
    """record_shim's shims, then what only the baseline needs."""
    record_shim.install()
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = scaled_dot_product_attention
    for name in ("sentencepiece", "zstandard"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _StubModule(name)


def load_source(path, ref):
    if path:
        with open(path, "rb") as f:
            return f.read(), path
    out = subprocess.run(["git", "-C", MIRROR, "show", ref], check=True, capture_output=True).stdout
    return out, f"{MIRROR} {ref}"


def exec_source(name, src, origin):
    mod = types.ModuleType(name)
    mod.__file__ = origin
    sys.modules[name] = mod
    exec(compile(src, origin, "exec"), mod.__dict__)
    return mod


class CapturingF(types.ModuleType):
    """torch.nn.functional with cross_entropy recording per-token losses: the baseline's
    GPT.forward returns only their mean, which this returns unchanged."""

    def __init__(self):
        super().__init__("F_capturing")
        self.token_losses = None

    def __getattr__(self, name):
        return getattr(F, name)

    def cross_entropy(self, logits, targets, reduction="mean", **kw):
        if reduction != "mean" or kw:
            raise NotImplementedError("capturing cross_entropy: only the baseline's call")
        losses = F.cross_entropy(logits, targets, reduction="none")
        self.token_losses = losses
        return losses.mean()


# ----------------------------------------------------------------------------- weights


def init_value(golf_name, shape, seed, case):
    """Random values for one golf parameter, seeded by (case seed, name)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(golf_name.encode()))

    def n(scale=1.0, mean=0.0):
        return torch.randn(shape, generator=g, dtype=torch.float32) * scale + mean

    base = golf_name.rsplit("/", 1)[-1]
    if golf_name in ("tok_emb", "lm_head"):
        return n(0.5)
    if golf_name == "ve/table":
        return n()
    if golf_name == "bigram/table":
        return n(0.7)
    if base in ("c_q", "c_k", "c_v", "proj", "fc"):
        return n(1.0 / math.sqrt(shape[1]))
    if base == "q_gain":
        return n(0.2, case.get("q_gain", 1.5))
    if base == "gate":
        return n(0.7)
    if base in ("attn_scale", "mlp_scale", "skip_weights", "parallel_post_lambdas", "ve_scale"):
        return n(0.3, 1.0)
    if base == "resid_mix":
        v = n(0.3)
        v[0] += 1.0
        return v
    if base == "skip_gates":
        return n()
    if base == "parallel_resid_lambdas":
        return n(0.1, 1.1)
    if base == "lambda":
        return n(0.2, 0.6)
    if base in ("softcap_pos", "softcap_neg"):
        return torch.full(shape, case["softcaps"][base])
    if base == "scale":
        return n(0.05, 0.3 if golf_name.startswith("bigram") else 0.5)
    raise KeyError(f"no random init rule for {golf_name}")


def bank_map(name, n):
    """The record's banks (and tok_emb/lm_head) -> golf names, or None for other names."""
    if name == "qo_bank":
        return [(f"block_{i}/attn/c_q", i) for i in range(n)] + [(f"block_{i}/attn/proj", n + i) for i in range(n)]
    if name == "kv_bank":
        return [(f"block_{i}/attn/c_k", i) for i in range(n)] + [(f"block_{i}/attn/c_v", n + i) for i in range(n)]
    if name == "mlp_up_bank":
        return [(f"block_{i}/mlp/fc", i) for i in range(n)]
    if name == "mlp_down_bank":
        return [(f"block_{i}/mlp/proj", i) for i in range(n)]
    if name in ("tok_emb.weight", "lm_head.weight"):
        return [(name.split(".")[0], None)]
    return None


BLOCK_NAMES = {"attn.q_gain": "attn/q_gain", "attn.attn_gate_w": "attn/gate", "attn_scale": "attn_scale",
               "mlp_scale": "mlp_scale", "resid_mix": "resid_mix"}


def record_param_map(model, n):
    """Record parameter name -> list of (golf name, index into the record tensor or None)."""
    out = {}
    for name, _ in model.named_parameters():
        if (m := bank_map(name, n)) is not None:
            out[name] = m
        elif name in ("skip_weights", "skip_gates", "parallel_post_lambdas", "parallel_resid_lambdas",
                      "softcap_pos", "softcap_neg"):
            out[name] = [(name, None)]
        elif name == "smear_gate.weight":
            out[name] = [("smear/gate", None)]
        elif name == "smear_lambda":
            out[name] = [("smear/lambda", None)]
        elif name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            out[name] = [(f"block_{i}/{BLOCK_NAMES[rest]}", None)]
        else:
            raise KeyError(f"record parameter {name} has no golf name")
    return out


def baseline_param_map(model):
    out = {}
    for name, _ in model.named_parameters():
        if name in ("tok_emb.weight", "lm_head.weight"):
            out[name] = [(name.split(".")[0], None)]
        elif name == "skip_weights":
            out[name] = [(name, None)]
        else:
            _, i, rest = name.split(".", 2)
            golf = {"attn.c_q.weight": "attn/c_q", "attn.c_k.weight": "attn/c_k", "attn.c_v.weight": "attn/c_v",
                    "attn.proj.weight": "attn/proj", "attn.q_gain": "attn/q_gain", "mlp.fc.weight": "mlp/fc",
                    "mlp.proj.weight": "mlp/proj", "attn_scale": "attn_scale", "mlp_scale": "mlp_scale",
                    "resid_mix": "resid_mix"}[rest]
            out[name] = [(f"block_{i}/{golf}", None)]
    return out


def t1019_param_map(model, n, ve_layers):
    out = {}
    for name, _ in model.named_parameters():
        if (m := bank_map(name, n)) is not None:
            out[name] = m
        elif name == "skip_weights":
            out[name] = [(name, None)]
        elif name == "smear.gate":
            out[name] = []  # the #65 SmearGate, neutralised (see the docstring)
        elif name.startswith("ve_layer_scales."):
            out[name] = [(f"block_{ve_layers[int(name.split('.')[1])]}/ve_scale", None)]
        elif name.startswith(("bigram.", "ve_shared.")):
            mod, part = name.split(".")[:2]
            golf = {"embed": "table", "proj": "proj", "scale": "scale"}[part]
            out[name] = [(f"{'bigram' if mod == 'bigram' else 've'}/{golf}", None)]
        elif name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            out[name] = [(f"block_{i}/{BLOCK_NAMES[rest]}", None)]
        else:
            raise KeyError(f"PR #1019 parameter {name} has no golf name")
    return out


def fill_weights(model, pmap, seed, case):
    """Writes random values into every mapped parameter; returns golf name -> tensor."""
    params = dict(model.named_parameters())
    golf = {}
    with torch.no_grad():
        for name, targets in pmap.items():
            p = params[name]
            for gname, idx in targets:
                view = p if idx is None else p[idx]
                shape = list(view.shape) or [1]
                v = init_value(gname, shape, seed, case)
                view.copy_(v.reshape(view.shape))
                golf[gname] = v.clone()
    return golf


def golf_grads(model, pmap):
    params = dict(model.named_parameters())
    grads = {}
    for name, targets in pmap.items():
        g = params[name].grad
        for gname, idx in targets:
            shape = list((params[name] if idx is None else params[name][idx]).shape) or [1]
            if g is None:
                grads[gname] = torch.zeros(shape)
            else:
                grads[gname] = (g if idx is None else g[idx]).detach().clone().reshape(shape)
    return grads


def check_unmapped_grads(model, pmap, golf_names, what):
    """Record parameters golf does not declare for this config must get no gradient."""
    params = dict(model.named_parameters())
    for name, targets in pmap.items():
        names = [g for g, _ in targets]
        if names and all(g in golf_names for g in names):
            continue
        g = params[name].grad
        if g is not None and torch.count_nonzero(g) > 0:
            raise AssertionError(f"{what}: {name} is not a golf parameter of this config but has a gradient")


# ----------------------------------------------------------------------------- cases


def tokens(case, seed, vocab):
    g = torch.Generator().manual_seed(seed)
    b, t = case["batch"], case["seq"]
    x = torch.randint(2, vocab, (b, t + 1), generator=g)
    for pos in case.get("bos", []):
        x[:, pos] = BOS
    return x[:, :-1].contiguous(), x[:, 1:].contiguous()


MICRO = dict(vocab_size=40, num_layers=4, model_dim=16, num_heads=4, num_kv_heads=2, mlp_mult=2.0)

# The record's h with every model option off (its file's defaults are the record's run).
RECORD_OFF = dict(
    logit_softcap=30.0, tie_embeddings=True, tied_embed_init_std=0.005, asym_logit_rescale=False,
    fused_ce_enabled=False, rope_base=10000.0, rope_dims=0, rope_yarn=False, ln_scale=False,
    qk_gain_init=1.5, qk_gain_schedule=[], xsa_last_n=0, num_loops=0, loop_start=0, loop_end=0,
    parallel_start_layer=0, parallel_final_lane="mean", skip_gates_enabled=False,
    attn_out_gate_enabled=False, attn_out_gate_src="proj", gate_window=6, gated_attn_enabled=False,
    gated_attn_init_std=0.01, sparse_attn_gate_enabled=False, sparse_attn_gate_init_std=0.0,
    sparse_attn_gate_scale=1.0, smear_gate_enabled=False,
)

FULL_STACK = dict(
    num_layers=6, mlp_mult=2.0, rope_dims=2, ln_scale=True, xsa_last_n=6, sparse_attn_gate_enabled=True,
    sparse_attn_gate_scale=0.5, smear_gate_enabled=True, skip_gates_enabled=True, num_loops=1, loop_start=2,
    loop_end=3, parallel_start_layer=4, asym_logit_rescale=True, qk_gain_init=5.0,
)

CASES = [
    # name, source, h overrides, extra
    ("record_minimal", "record", {}, dict(desc="the record's GPT with every option off: LeakyReLU(0.5)² MLP, full RoPE, QK-norm, resid_mix, additive U-Net skips, tied head, softcap 30")),
    ("record_partial_rope", "record", dict(model_dim=32, num_layers=2, mlp_mult=1.0, rope_dims=4), dict(desc="partial RoPE: 4 of 8 head dims")),
    ("record_ln_scale", "record", dict(ln_scale=True), dict(desc="LN scale 1/sqrt(i+1)")),
    ("record_qk_gain", "record", dict(qk_gain_init=5.0), dict(q_gain=5.0, desc="q_gain around the record's init 5.0")),
    ("record_xsa", "record", dict(xsa_last_n=2), dict(desc="XSA on the last 2 of 4 layers")),
    ("record_sparse_gate", "record", dict(sparse_attn_gate_enabled=True, sparse_attn_gate_scale=0.5), dict(desc="sparse attention gate, window 6, scale 0.5")),
    ("record_smear", "record", dict(smear_gate_enabled=True), dict(bos=[0, 5, 9], env={"SMEAR_GATE_BOS_FIX": "0"}, desc="SmearGate, BOS fix off (the record's run)")),
    ("record_smear_bos_fix", "record", dict(smear_gate_enabled=True), dict(bos=[0, 5, 9], env={"SMEAR_GATE_BOS_FIX": "1"}, desc="SmearGate with SMEAR_GATE_BOS_FIX=1")),
    ("record_skip_gates", "record", dict(skip_gates_enabled=True), dict(desc="sigmoid skip gates (lerp)")),
    ("record_loops", "record", dict(num_loops=1, loop_start=1, loop_end=2), dict(desc="depth recurrence, layers 1-2 twice, looping_active")),
    ("record_loops_unlooped", "record", dict(num_loops=1, loop_start=1, loop_end=2), dict(unlooped=True, desc="depth recurrence config before its switch-on (looping_active False)")),
    ("record_loops_skip_gates", "record", dict(num_layers=5, num_loops=2, loop_start=1, loop_end=2, skip_gates_enabled=True, ln_scale=True), dict(desc="two loops over 5 layers: skips sized for the looped graph, LN scale by physical index")),
    ("record_parallel", "record", dict(parallel_start_layer=2), dict(desc="parallel two-lane decoder from layer 2, mean final lane")),
    ("record_parallel_lane_mlp", "record", dict(parallel_start_layer=3, parallel_final_lane="mlp", skip_gates_enabled=True), dict(desc="parallel lanes from layer 3, final lane mlp, gated skip into lane 0")),
    ("record_asym_logit", "record", dict(asym_logit_rescale=True), dict(softcaps={"softcap_pos": 8.0, "softcap_neg": 5.0}, desc="AsymLogit with s+=8, s-=5 (eval path; forward() trains with the scalar softcap)")),
    ("record_untied_head", "record", dict(tie_embeddings=False), dict(desc="untied lm_head")),
    ("record_varlen", "record", {}, dict(batch=1, seq=16, bos=[5, 11], varlen=dict(max_doc_len=4, bucket=8), desc="document-isolated attention: cu_seqlens from _build_cu_seqlens (BOS 5, 11; cuts every 4)")),
    ("record_full_stack", "record", FULL_STACK, dict(q_gain=5.0, softcaps={"softcap_pos": 30.0, "softcap_neg": 30.0}, bos=[0, 7], env={"SMEAR_GATE_BOS_FIX": "0"}, desc="tiny-record-like: every technique on, looped")),
    ("record_full_stack_unlooped", "record", FULL_STACK, dict(q_gain=5.0, unlooped=True, softcaps={"softcap_pos": 30.0, "softcap_neg": 30.0}, bos=[0, 7], env={"SMEAR_GATE_BOS_FIX": "0"}, desc="every technique on, before looping")),
    ("record_full_stack_varlen", "record", FULL_STACK, dict(q_gain=5.0, batch=1, seq=16, softcaps={"softcap_pos": 9.0, "softcap_neg": 6.0}, bos=[0, 6, 13], env={"SMEAR_GATE_BOS_FIX": "1"}, varlen=dict(max_doc_len=5, bucket=8), desc="every technique on, packed row with document isolation and the BOS fix, AsymLogit s+=9 s-=6")),
    ("baseline_tiny", "baseline", {}, dict(desc="the challenge baseline's GPT at golf's tiny shape, micro")),
    ("baseline_odd_layers", "baseline", dict(num_layers=3), dict(desc="baseline, 3 layers (1 encoder, 2 decoder: the last decoder layer gets no skip)")),
    ("t1019_bigram_ve", "t1019", dict(bigram_vocab_size=11, bigram_dim=6, ve_dim=4, ve_layers="1,3"), dict(desc="PR #1019 GPT: BigramHash 11x6 (projected), value embeddings dim 4 (projected) on layers 1, 3")),
    ("t1019_bigram_ve_unprojected", "t1019", dict(bigram_vocab_size=13, bigram_dim=16, ve_dim=8, ve_layers="0,2", xsa_last_n=2, rope_dims=2, ln_scale=True), dict(desc="PR #1019 GPT: BigramHash 13x16 and VE dim 8 = kv width (no projections), with its XSA, partial RoPE, LN scale")),
]


def make_h(mod, over, T):
    h = mod.Hyperparameters()
    for k, v in {**RECORD_OFF, **MICRO, **over}.items():
        setattr(h, k, v)
    h.train_seq_len = T
    return h


def golf_config_record(h, name, T, env):
    hd = h.model_dim // h.num_heads
    if h.attn_out_gate_enabled or h.gated_attn_enabled or h.rope_yarn or h.qk_gain_schedule:
        raise ValueError("an option golf does not implement is on")
    c = dict(name=name, vocab_size=h.vocab_size, num_layers=h.num_layers, model_dim=h.model_dim,
             num_heads=h.num_heads, num_kv_heads=h.num_kv_heads, mlp_hidden=int(h.mlp_mult * h.model_dim),
             seq_len=T, rope_base=h.rope_base, logit_softcap=h.logit_softcap,
             embed_init_std=h.tied_embed_init_std, qk_gain_init=h.qk_gain_init,
             activation="leaky_relu2", leaky_slope=0.5)
    if 0 < h.rope_dims < hd:
        c["rope_dims"] = h.rope_dims
    if h.ln_scale:
        c["ln_scale"] = True
    if h.xsa_last_n > 0:
        c["xsa_last_n"] = min(h.xsa_last_n, h.num_layers)
    if h.sparse_attn_gate_enabled:
        c.update(attn_gate="sparse", attn_gate_scale=h.sparse_attn_gate_scale, gate_window=h.gate_window)
    if h.smear_gate_enabled:
        c.update(smear_gate=True, gate_window=h.gate_window)
        if env.get("SMEAR_GATE_BOS_FIX", "0") == "1":
            c.update(smear_bos_fix=True, bos_id=BOS)
    if h.skip_gates_enabled:
        c["skip_gates"] = True
    if h.num_loops > 0:
        c.update(num_loops=h.num_loops, loop_start=h.loop_start, loop_end=h.loop_end)
    if h.parallel_start_layer > 0:
        c["parallel_start_layer"] = h.parallel_start_layer
        if h.parallel_final_lane != "mean":  # golf's default ("") is the mean
            c["parallel_final_lane"] = h.parallel_final_lane
    if not h.tie_embeddings:
        c["untied_head"] = True
    if h.asym_logit_rescale:
        c["asym_logit"] = True
    return c


@contextlib.contextmanager
def environ(env):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ce_none(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), reduction="none").reshape(targets.shape)


def run_record(mod, name, over, extra, seed):
    b, t = extra.get("batch", 2), extra.get("seq", 12)
    case = dict(extra, batch=b, seq=t)
    env = extra.get("env", {"SMEAR_GATE_BOS_FIX": "0"})
    h = make_h(mod, over, t)
    torch.manual_seed(0)
    model = mod.GPT(h)
    model.eval()  # MLP.forward's fused Triton path runs only in training mode
    if h.num_loops > 0:
        model.looping_active = not extra.get("unlooped", False)
    mod.BOS_ID = BOS
    cfg = golf_config_record(h, name, t, env)
    full_pmap = record_param_map(model, h.num_layers)
    pmap = dict(full_pmap)
    if h.parallel_start_layer <= 0:  # golf declares the lanes only with parallel blocks
        pmap = {k: v for k, v in pmap.items() if not k.startswith("parallel_")}
    weights = fill_weights(model, pmap, seed, case)
    inputs, targets = tokens(case, seed + 1, h.vocab_size)
    kw, cu = {}, None
    if "varlen" in extra:
        assert b == 1
        bos_pos = (inputs[0] == BOS).nonzero(as_tuple=True)[0].tolist()
        cu, max_seqlen = mod._build_cu_seqlens(bos_pos, t, inputs.device, extra["varlen"]["max_doc_len"], extra["varlen"]["bucket"])
        kw = dict(cu_seqlens=cu, max_seqlen=max_seqlen)
    with environ(env):
        model.zero_grad()
        logits = model.forward_logits(inputs, **kw)
        losses = ce_none(logits, targets)
        losses.mean().backward()
        grads = golf_grads(model, pmap)
        check_unmapped_grads(model, full_pmap, set(weights), name)
        model.zero_grad()
        train_loss = model.forward(inputs, targets, **kw)
        train_loss.backward()
        train_grads = golf_grads(model, pmap)
    if not h.asym_logit_rescale or case["softcaps"]["softcap_pos"] == case["softcaps"]["softcap_neg"] == h.logit_softcap:
        # forward() is the same math as forward_logits + CE: check the generator itself.
        assert abs(train_loss.item() - losses.mean().item()) <= 1e-6 * abs(train_loss.item()), (train_loss, losses.mean())
        for k in grads:
            if k in ("softcap_pos", "softcap_neg"):
                continue  # forward() does not use them
            d = (grads[k] - train_grads[k]).abs().max().item()
            assert d <= 1e-5 * max(grads[k].abs().max().item(), 1e-30), (k, d)
    return dict(cfg=cfg, weights=weights, grads=grads, inputs=inputs, targets=targets, losses=losses,
                logits=logits, train_loss=train_loss.item(), cu=cu, unlooped=extra.get("unlooped", False),
                env=env, b=b, t=t)


def run_baseline(mod, name, over, extra, seed):
    b, t = extra.get("batch", 2), extra.get("seq", 12)
    case = dict(extra, batch=b, seq=t)
    a = {**MICRO, **over}
    cap = CapturingF()
    mod.F = cap
    torch.manual_seed(0)
    mlp_mult = int(a["mlp_mult"])
    model = mod.GPT(vocab_size=a["vocab_size"], num_layers=a["num_layers"], model_dim=a["model_dim"],
                    num_heads=a["num_heads"], num_kv_heads=a["num_kv_heads"], mlp_mult=mlp_mult,
                    tie_embeddings=True, tied_embed_init_std=0.005, logit_softcap=30.0, rope_base=10000.0,
                    qk_gain_init=1.5)
    pmap = baseline_param_map(model)
    weights = fill_weights(model, pmap, seed, case)
    inputs, targets = tokens(case, seed + 1, a["vocab_size"])
    model.zero_grad()
    loss = model(inputs, targets)
    loss.backward()
    losses = cap.token_losses.detach().reshape(b, t)
    grads = golf_grads(model, pmap)
    cfg = dict(name=name, vocab_size=a["vocab_size"], num_layers=a["num_layers"], model_dim=a["model_dim"],
               num_heads=a["num_heads"], num_kv_heads=a["num_kv_heads"], mlp_hidden=mlp_mult * a["model_dim"],
               seq_len=t, rope_base=10000.0, logit_softcap=30.0, embed_init_std=0.005, qk_gain_init=1.5)
    return dict(cfg=cfg, weights=weights, grads=grads, inputs=inputs, targets=targets, losses=losses,
                logits=None, train_loss=loss.item(), cu=None, unlooped=False, env={}, b=b, t=t)


def run_t1019(mod, name, over, extra, seed):
    b, t = extra.get("batch", 2), extra.get("seq", 12)
    case = dict(extra, batch=b, seq=t)
    a = {**MICRO, "xsa_last_n": 0, "rope_dims": 0, "ln_scale": False, **over}
    ve_layers = [int(x) for x in a["ve_layers"].split(",")]
    os.environ.pop("TRIGRAM", None)
    torch.manual_seed(0)
    model = mod.GPT(vocab_size=a["vocab_size"], num_layers=a["num_layers"], model_dim=a["model_dim"],
                    num_heads=a["num_heads"], num_kv_heads=a["num_kv_heads"], mlp_mult=a["mlp_mult"],
                    tie_embeddings=True, tied_embed_init_std=0.005, logit_softcap=30.0, rope_base=10000.0,
                    qk_gain_init=1.5, bigram_vocab_size=a["bigram_vocab_size"], bigram_dim=a["bigram_dim"],
                    xsa_last_n=a["xsa_last_n"], rope_dims=a["rope_dims"], ln_scale=a["ln_scale"],
                    ve_enabled=True, ve_dim=a["ve_dim"], ve_layers=a["ve_layers"])
    model.eval()
    pmap = t1019_param_map(model, a["num_layers"], ve_layers)
    weights = fill_weights(model, pmap, seed, case)
    with torch.no_grad():
        model.smear.gate.fill_(-1e4)  # σ = 0 exactly: the #65 SmearGate is the identity
    inputs, targets = tokens(case, seed + 1, a["vocab_size"])
    model.zero_grad()
    logits = model.forward_logits(inputs)
    losses = ce_none(logits, targets)
    losses.mean().backward()
    assert model.smear.gate.grad is None or torch.count_nonzero(model.smear.gate.grad) == 0
    grads = golf_grads(model, pmap)
    model.zero_grad()
    train_loss = model(inputs, targets)
    assert abs(train_loss.item() - losses.mean().item()) <= 1e-6 * train_loss.item()
    hd = a["model_dim"] // a["num_heads"]
    cfg = dict(name=name, vocab_size=a["vocab_size"], num_layers=a["num_layers"], model_dim=a["model_dim"],
               num_heads=a["num_heads"], num_kv_heads=a["num_kv_heads"], mlp_hidden=int(a["mlp_mult"] * a["model_dim"]),
               seq_len=t, rope_base=10000.0, logit_softcap=30.0, embed_init_std=0.005, qk_gain_init=1.5,
               activation="leaky_relu2", leaky_slope=0.5, bigram_vocab=a["bigram_vocab_size"],
               bigram_dim=a["bigram_dim"], ve_dim=a["ve_dim"], ve_layers=ve_layers)
    if 0 < a["rope_dims"] < hd:
        cfg["rope_dims"] = a["rope_dims"]
    if a["ln_scale"]:
        cfg["ln_scale"] = True
    if a["xsa_last_n"]:
        cfg["xsa_last_n"] = a["xsa_last_n"]
    return dict(cfg=cfg, weights=weights, grads=grads, inputs=inputs, targets=targets, losses=losses,
                logits=logits, train_loss=train_loss.item(), cu=None, unlooped=False, env={}, b=b, t=t)


# ----------------------------------------------------------------------------- files


def write_golden(path, header, tensors):
    blob = io.BytesIO()
    index = {}
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}[arr.dtype]
        index[name] = dict(dtype=dtype, shape=list(arr.shape), offset=blob.tell())
        blob.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    header = dict(header, tensors=index)
    hb = json.dumps(header, indent=1).encode()
    raw = MAGIC + struct.pack("<I", len(hb)) + hb + blob.getvalue()
    with open(path + ".tmp", "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
            gz.write(raw)
    os.replace(path + ".tmp", path)


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


def write_case(out_dir, name, source, origin, digest, desc, r):
    tensors = {"inputs": r["inputs"].to(torch.int32).numpy(), "targets": r["targets"].to(torch.int32).numpy(),
               "losses": f32(r["losses"])}
    if r["logits"] is not None:
        tensors["logits"] = f32(r["logits"])
    if r["cu"] is not None:
        tensors["cu_seqlens"] = r["cu"].to(torch.int32).numpy()
    for k in sorted(r["weights"]):
        tensors[f"weights/{k}"] = f32(r["weights"][k])
    for k in sorted(r["grads"]):
        tensors[f"grads/{k}"] = f32(r["grads"][k])
    header = dict(case=name, kind="model", source=origin, source_sha256=digest, description=desc,
                  config=r["cfg"], options=dict(unlooped=r["unlooped"], env=r["env"]), batch=r["b"], seq=r["t"],
                  mean_loss=float(r["losses"].mean()), train_loss=r["train_loss"])
    path = os.path.join(out_dir, f"{name}.golden.gz")
    write_golden(path, header, tensors)
    return path


def write_rope(out_dir, record, baseline, origins, digests):
    """The record's Rotary (rope_dims 16 of 64, as #2135 runs) and the baseline's (64 of
    64): inv_freq and cos/sin rows at positions up to the record's packed-row length."""
    positions = list(range(16)) + [255, 1023, 2047, 4095, 32767, 65535, 98303]
    tensors = {}
    for tag, rot in (("record_rd16", record.Rotary(64, base=10000.0, train_seq_len=2048, rope_dims=16, yarn=False)),
                     ("baseline_hd64", baseline.Rotary(64, base=10000.0))):
        cos, sin = rot(positions[-1] + 1, torch.device("cpu"), torch.float32)
        cos, sin = cos.reshape(positions[-1] + 1, -1), sin.reshape(positions[-1] + 1, -1)
        tensors[f"inv_freq/{tag}"] = f32(rot.inv_freq)
        tensors[f"positions/{tag}"] = np.array(positions, dtype=np.int32)
        tensors[f"cos/{tag}"] = f32(cos[positions])
        tensors[f"sin/{tag}"] = f32(sin[positions])
    header = dict(case="rope", kind="rope", source=origins, source_sha256=digests, description="Rotary tables (base 10000) from the sources' own Rotary classes")
    path = os.path.join(out_dir, "rope.golden.gz")
    write_golden(path, header, tensors)
    return path


def write_bigram_hash(out_dir, t1019, origin, digest):
    """PR #1019's BigramHashEmbedding.bigram_hash (int32 products that wrap, torch's floor
    %) on token ids over the whole uint16 range, for table sizes 2 to 65,536."""
    g = torch.Generator().manual_seed(1019)
    edge = torch.tensor([0, 1, 59138, 59139, 59140, 65534, 65535, 40000, 65535, 0], dtype=torch.int64)
    tokens = torch.cat([edge, torch.randint(0, 65536, (3 * 40 - len(edge),), generator=g)]).reshape(3, 40)
    tensors = {"tokens": tokens.to(torch.int32).numpy()}
    sizes = [2, 11, 64, 3072, 10240, 65536]
    for vb in sizes:
        h = t1019.BigramHashEmbedding(vb, 4, 4).bigram_hash(tokens)
        tensors[f"hash/vb{vb}"] = h.to(torch.int32).numpy()
    tensors["sizes"] = np.array(sizes, dtype=np.int32)
    header = dict(case="bigram_hash", kind="bigram_hash", source=origin, source_sha256=digest,
                  description="BigramHashEmbedding.bigram_hash of PR #1019 on random and edge token ids")
    path = os.path.join(out_dir, "bigram_hash.golden.gz")
    write_golden(path, header, tensors)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", help="PR #2135 train_gpt.py (default: from the mirror)")
    ap.add_argument("--baseline", help="the challenge's baseline train_gpt.py (default: from the mirror)")
    ap.add_argument("--t1019", help="PR #1019 train_gpt.py (default: from the mirror)")
    ap.add_argument("--out", default=os.path.join(HERE, "golden"))
    ap.add_argument("--only", help="comma-separated case names")
    args = ap.parse_args()
    assert torch.__version__.startswith("1.13"), torch.__version__
    torch.set_num_threads(1)  # deterministic reductions
    install_shims()
    mods, origins, digests = {}, {}, {}
    for key, path in (("record", args.record), ("baseline", args.baseline), ("t1019", args.t1019)):
        src, origin = load_source(path, SOURCES[key])
        digests[key] = hashlib.sha256(src).hexdigest()
        origins[key] = SOURCES[key]  # the ref; source_sha256 says which content ran
        mods[key] = exec_source(f"golden_{key}_train_gpt", src, origin)
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    runners = {"record": run_record, "baseline": run_baseline, "t1019": run_t1019}
    for i, (name, source, over, extra) in enumerate(CASES):
        if only and name not in only:
            continue
        r = runners[source](mods[source], name, over, extra, seed=1000 + i)
        path = write_case(args.out, name, source, origins[source], digests[source], extra["desc"], r)
        print(f"{name:32s} mean loss {r['losses'].mean().item():.6f}  {os.path.getsize(path):7d} bytes")
    if not only or "rope" in only:
        two = ("record", "baseline")
        path = write_rope(args.out, mods["record"], mods["baseline"], {k: origins[k] for k in two}, {k: digests[k] for k in two})
        print(f"{'rope':32s} {os.path.getsize(path):7d} bytes")
    if not only or "bigram_hash" in only:
        path = write_bigram_hash(args.out, mods["t1019"], origins["t1019"], digests["t1019"])
        print(f"{'bigram_hash':32s} {os.path.getsize(path):7d} bytes")


if __name__ == "__main__":
    main()
