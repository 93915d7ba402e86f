#!/usr/bin/python3
"""Writes optim_golden.json.gz (tensors as base64 float32 little-endian): the record's (PR #2135) optimizer arithmetic on
a micro model, from the record's own train_gpt.py, for train's golden tests.

Run with Debian's python3-torch (1.13, CPU):

    /usr/bin/python3 gen_optim_golden.py [path/to/record/train_gpt.py]

Without a path the record is read from the challenge's mirrored repository
(git show refs/pull/2135/head:records/.../train_gpt.py). The file is loaded
through scripts/reference/record_shim.py (torch 1.13 shims; see there).

What runs is the record's code, unchanged:
- GPT(h) and Optimizers(h, model): the record's parameter groups (Muon on the
  banks with Polar-Express Newton-Schulz and MuonEq-R row normalisation,
  AdamW for the tied embedding and the scalars, weight decay per group);
- train_model's nested step_fn, lr_mul and training_frac and its EMA update
  statement, taken from the file's syntax tree and executed with the record's
  own names in scope (step_fn gets a stand-in model whose loss has exactly
  the chosen gradients, and a stand-in loader);
- torch.nn.utils.clip_grad_norm_ through step_fn.

One shim is specific to this script: the record runs Muon in bfloat16
(G.bfloat16(), a bf16 momentum buffer). For a float32 golden test,
Tensor.bfloat16 is made the identity while Muon steps, so the same code runs
in float32 ("fp32" case); the "bf16" case keeps it and is compared loosely.
"""
import ast
import base64
import gzip
import json
import math
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "reference"))
import record_shim  # noqa: E402

MIRROR = "/work/.mirror/openai+parameter-golf/repo"
RECORD = "refs/pull/2135/head:records/track_10min_16mb/2026-05-01_SP8192_PR2130Base_Calib32/train_gpt.py"


def record_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    out = os.path.join("/tmp", "record_train_gpt.py")
    with open(out, "wb") as f:
        f.write(subprocess.check_output(["git", "-C", MIRROR, "show", RECORD]))
    return out


def nested(path, outer, names):
    """Returns the source of the statements named in names (function names, or
    'ema' for the EMA update) nested in function outer of the file."""
    tree = ast.parse(open(path).read())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == outer)
    found = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            found[node.name] = ast.unparse(node)
        if isinstance(node, ast.With) and "ema_state[name].mul_" in ast.unparse(node):
            found["ema"] = ast.unparse(node)
    missing = set(names) - set(found)
    if missing:
        raise SystemExit(f"{path}: {outer} has no {sorted(missing)}")
    return found


GOLF_NAMES = {
    "tok_emb.weight": "tok_emb", "skip_weights": "skip_weights", "skip_gates": "skip_gates",
    "parallel_post_lambdas": "parallel_post_lambdas", "parallel_resid_lambdas": "parallel_resid_lambdas",
    "smear_gate.weight": "smear/gate", "smear_lambda": "smear/lambda",
    "softcap_pos": "softcap_pos", "softcap_neg": "softcap_neg",
}


def golf_tensors(model, n):
    """The model's parameters under golf's names, banks split per layer."""
    out = {}
    for name, p in model.named_parameters():
        t = p.detach().float()
        if name == "qo_bank":
            for i in range(n):
                out[f"block_{i}/attn/c_q"], out[f"block_{i}/attn/proj"] = t[i], t[n + i]
        elif name == "kv_bank":
            for i in range(n):
                out[f"block_{i}/attn/c_k"], out[f"block_{i}/attn/c_v"] = t[i], t[n + i]
        elif name == "mlp_up_bank":
            for i in range(n):
                out[f"block_{i}/mlp/fc"] = t[i]
        elif name == "mlp_down_bank":
            for i in range(n):
                out[f"block_{i}/mlp/proj"] = t[i]
        elif name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            rest = {"attn.q_gain": "attn/q_gain", "attn.attn_gate_w": "attn/gate"}.get(rest, rest)
            out[f"block_{i}/{rest}"] = t
        else:
            out[GOLF_NAMES[name]] = t
    # float32 little-endian bytes, base64: compact and exact.
    return {k: base64.b64encode(v.reshape(-1).contiguous().numpy().astype("<f4").tobytes()).decode() for k, v in out.items()}


def micro_h(mod):
    h = mod.Hyperparameters()
    for k, v in dict(vocab_size=24, num_layers=4, model_dim=16, num_heads=4, num_kv_heads=2, mlp_mult=2.0,
                     train_seq_len=8, xsa_last_n=4, rope_dims=2, num_loops=1, loop_start=1, loop_end=2,
                     parallel_start_layer=3, skip_gates_enabled=True, smear_gate_enabled=True, gate_window=4,
                     sparse_attn_gate_enabled=True, sparse_attn_gate_scale=0.5, asym_logit_rescale=True,
                     fused_ce_enabled=False, matrix_lr=0.028, tied_embed_lr=0.03, scalar_lr=0.02,
                     muon_momentum=0.97, muon_momentum_warmup_start=0.92, muon_momentum_warmup_steps=1500,
                     muon_row_normalize=True, muon_wd=0.095, embed_wd=0.085, adam_wd=0.02, beta1=0.9, beta2=0.99,
                     adam_eps=1e-8, grad_clip_norm=0.3, ema_decay=0.9965, warmdown_frac=0.85, min_lr=0.1,
                     max_wallclock_seconds=600.0, gptq_reserve_seconds=0.5, iterations=20000,
                     grad_accum_steps=1, distributed=False, train_batch_tokens=8).items():
        setattr(h, k, v)
    return h


def run_case(mod, src, bf16):
    torch.manual_seed(1)
    h = micro_h(mod)
    model = mod.GPT(h).float()
    # Random weights everywhere (the record zero-initialises some).
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (1.0 if p.dim() < 2 else 0.0))
    initial = golf_tensors(model, h.num_layers)
    optimizers = mod.Optimizers(h, model)
    grads_by_step = []
    params = list(model.parameters())
    softcaps = [model.softcap_pos, model.softcap_neg]

    class StandIn:
        """The record's step_fn calls model(x, y, ...) and backward(): this
        loss's gradient is exactly the chosen G for every parameter."""
        G = None

        def __call__(self, *a, **kw):
            # The softcaps never see a gradient in the record's training
            # (forward() uses the scalar cap): leave their .grad None.
            return sum((p * gp).sum() for p, gp in zip(params, StandIn.G) if not any(p is s for s in softcaps))

    class Loader:
        def next_batch(self, *a):
            return None, None, None, None

    ns = dict(mod.__dict__)
    ns.update(h=h, optimizers=optimizers, train_loader=Loader(), model=StandIn(), base_model=model,
              device="cpu", max_wallclock_ms=(h.max_wallclock_seconds - h.gptq_reserve_seconds) * 1e3)
    funcs = nested(src, "train_model", ["step_fn", "lr_mul", "training_frac"])
    exec(funcs["step_fn"], ns)
    exec(funcs["lr_mul"], ns)
    exec(funcs["training_frac"], ns)
    ema_state = {name: t.detach().float().clone() for name, t in model.state_dict().items()}
    ns.update(ema_state=ema_state, ema_decay=h.ema_decay)
    ema_code = compile(funcs["ema"], src, "exec")
    # torch.autocast(device_type="cuda") is a no-op on a CPU build: keep it.
    steps = []
    for step, scale in [(0, 1.0), (1, 0.6)]:
        StandIn.G = [torch.randn(p.shape, generator=g) * (0.2 if step == 0 else 2.0) for p in params]
        grads_by_step.append(golf_tensors(types_like(model, StandIn.G), h.num_layers))
        orig = torch.Tensor.bfloat16
        if not bf16:
            torch.Tensor.bfloat16 = lambda self: self
        try:
            ns["step_fn"](step, scale)
        finally:
            torch.Tensor.bfloat16 = orig
        exec(ema_code, ns)
        steps.append({
            "lr_scale": scale,
            "momentum": optimizers.optimizer_muon.param_groups[0]["momentum"],
            "params": golf_tensors(model, h.num_layers),
            "ema": golf_tensors(ema_from_state(model, ema_state), h.num_layers),
        })
    schedule = []
    for step, elapsed in [(0, 0.0), (100, 50000.0), (1000, 89925.0), (2000, 300000.0), (4000, 580000.0), (5000, 599500.0), (5100, 610000.0)]:
        frac = ns["training_frac"](step, elapsed)
        schedule.append({"step": step, "elapsed_ms": elapsed, "frac": frac, "lr_mul": ns["lr_mul"](frac)})
    return {"initial": initial, "grads": grads_by_step, "steps": steps}, schedule


def types_like(model, grads):
    """A shallow copy of model whose parameters hold grads (for naming)."""
    import copy
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p, gp in zip(m.parameters(), grads):
            p.copy_(gp)
    return m


def ema_from_state(model, ema_state):
    import copy
    m = copy.deepcopy(model)
    m.load_state_dict({k: v for k, v in ema_state.items()}, strict=True)
    return m


def main():
    src = record_path()
    mod = record_shim.load_record(src)
    fp32, schedule = run_case(mod, src, bf16=False)
    bf16, _ = run_case(mod, src, bf16=True)
    bf16.pop("initial")  # the same seeds: the fp32 case's initial weights and
    bf16.pop("grads")    # gradients are the bf16 case's too
    h = micro_h(mod)
    out = {
        "config": {k: getattr(h, k) for k in ["vocab_size", "num_layers", "model_dim", "num_heads", "num_kv_heads",
                                             "mlp_mult", "xsa_last_n", "rope_dims", "num_loops", "loop_start", "loop_end",
                                             "parallel_start_layer", "gate_window", "matrix_lr", "tied_embed_lr", "scalar_lr",
                                             "muon_momentum", "muon_momentum_warmup_start", "muon_momentum_warmup_steps",
                                             "muon_wd", "embed_wd", "adam_wd", "beta1", "beta2", "adam_eps", "grad_clip_norm",
                                             "ema_decay", "warmdown_frac", "min_lr", "max_wallclock_seconds", "gptq_reserve_seconds",
                                             "muon_backend_steps"]},
        "fp32": fp32, "bf16": bf16, "schedule": schedule,
    }
    with gzip.open(os.path.join(HERE, "optim_golden.json.gz"), "wt") as f:
        json.dump(out, f)
    print("wrote optim_golden.json.gz")


if __name__ == "__main__":
    main()
