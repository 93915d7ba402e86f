"""Loads the challenge's record train_gpt.py (PR #2135) on Debian's torch 1.13 CPU.

The record targets torch 2.9+ on H100s with FlashAttention 3 and Triton. To run
its own classes and functions here, unchanged, this module installs shims for
what torch 1.13 and a CPU machine lack, then execs the file as a module
(without running main()):

- torch.compile (torch >= 2.0): identity decorator.
- torch.library.custom_op / register_fake / register_autograd (torch >= 2.4):
  a decorator returning the plain function (the fused CE op is never called:
  callers set fused_ce_enabled = False).
- F.rms_norm (torch >= 2.4): x / sqrt(mean(x^2) + eps), eps=None meaning
  torch.finfo(x.dtype).eps, computed in float32 for low-precision inputs as
  torch's opmath does.
- flash_attn_interface (FlashAttention 3): flash_attn_func(q, k, v, causal)
  and flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, ...,
  causal) as explicit float32 softmax attention with a causal (and segment)
  mask; GQA by repeating K/V heads (layout [B, T, H, D] as FA3).
- triton, triton.language, triton.tools.tensor_descriptor: stub modules
  (jit returns the function; kernels are never launched).
- torch.autocast(device_type="cuda") without CUDA: a null context (the
  golden values are float32; bf16 autocast is a GPU matter).
- torch.optim.AdamW(fused=True) (torch >= 2.0): the keyword is dropped; the
  unfused AdamW computes the same update.

Usage: mod = load_record(path); mod.GPT, mod.Muon, mod.Optimizers, ...
"""
import contextlib
import math
import sys
import types

import torch
import torch.nn.functional as F


def _identity_decorator(fn=None, **_kw):
    if fn is None:
        return lambda f: f
    return fn


class _CustomOp:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *a, **kw):
        return self.fn(*a, **kw)

    def register_fake(self, fn):
        return fn

    def register_autograd(self, *a, **kw):
        return None


def _custom_op(_name, **_kw):
    return lambda fn: _CustomOp(fn)


def rms_norm(x, normalized_shape, weight=None, eps=None):
    dims = tuple(range(-len(normalized_shape), 0))
    xf = x.float()
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    y = xf * torch.rsqrt(xf.pow(2).mean(dim=dims, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    return y.to(x.dtype)


def _attend(q, k, v, mask):
    # q [T, H, D], k/v [T, Hk, D] -> [T, H, D]; float32 softmax.
    h, hk = q.size(-2), k.size(-2)
    if hk != h:
        k = k.repeat_interleave(h // hk, dim=-2)
        v = v.repeat_interleave(h // hk, dim=-2)
    qf, kf, vf = q.float().transpose(0, 1), k.float().transpose(0, 1), v.float().transpose(0, 1)
    s = qf @ kf.transpose(-1, -2) / math.sqrt(q.size(-1))
    s = s.masked_fill(~mask, float("-inf"))
    return (torch.softmax(s, dim=-1) @ vf).transpose(0, 1).to(q.dtype)


def flash_attn_func(q, k, v, causal=True, **_kw):
    t = q.size(1)
    mask = torch.ones(t, t, dtype=torch.bool).tril() if causal else torch.ones(t, t, dtype=torch.bool)
    return torch.stack([_attend(q[b], k[b], v[b], mask) for b in range(q.size(0))])


def flash_attn_varlen_func(q, k, v, cu_seqlens_q=None, cu_seqlens_k=None, max_seqlen_q=0, max_seqlen_k=0, causal=True, **_kw):
    t = q.size(0)
    seg = torch.zeros(t, dtype=torch.long)
    bounds = sorted(set(int(c) for c in cu_seqlens_q.tolist()))
    for i, start in enumerate(bounds):
        if start < t:
            seg[start:] = i
    mask = seg[:, None] == seg[None, :]
    if causal:
        mask &= torch.ones(t, t, dtype=torch.bool).tril()
    return _attend(q, k, v, mask)


class _AdamW(torch.optim.AdamW):
    def __init__(self, *a, fused=None, **kw):
        super().__init__(*a, **kw)


_real_autocast = torch.autocast


def _autocast(device_type="cuda", *a, **kw):
    if device_type == "cuda" and not torch.cuda.is_available():
        return contextlib.nullcontext()
    return _real_autocast(device_type, *a, **kw)


def install():
    torch.autocast = _autocast
    if torch.optim.AdamW is not _AdamW:
        torch.optim.AdamW = _AdamW
    torch.compile = _identity_decorator
    if not hasattr(torch, "library"):
        torch.library = types.ModuleType("torch.library")
    torch.library.custom_op = _custom_op
    F.rms_norm = rms_norm
    fa = types.ModuleType("flash_attn_interface")
    fa.flash_attn_func = flash_attn_func
    fa.flash_attn_varlen_func = flash_attn_varlen_func
    sys.modules["flash_attn_interface"] = fa
    triton = types.ModuleType("triton")
    triton.jit = _identity_decorator
    triton.cdiv = lambda a, b: (a + b - 1) // b
    tl = types.ModuleType("triton.language")
    tl.constexpr = int
    tools = types.ModuleType("triton.tools")
    td = types.ModuleType("triton.tools.tensor_descriptor")
    td.TensorDescriptor = object
    triton.language, triton.tools = tl, tools
    sys.modules.update({"triton": triton, "triton.language": tl, "triton.tools": tools, "triton.tools.tensor_descriptor": td})


def load_record(path, name="record_train_gpt"):
    install()
    src = open(path).read()
    mod = types.ModuleType(name)
    mod.__file__ = path
    sys.modules[name] = mod
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod
