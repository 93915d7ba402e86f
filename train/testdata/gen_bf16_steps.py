#!/usr/bin/python3
"""Writes bf16_steps.json: the reference's bfloat16 storage points on a GPU,
computed by PyTorch on the CPU, for package train's TestBF16StorageMatchesTorch.

1. Adam on a bf16 tied embedding. train_gpt.py casts the model to bf16 and
   restores only the small/control parameters to fp32, so tok_emb.weight is
   a bf16 parameter: its .grad is bf16 (every micro-step's loss*grad_scale
   backward adds into it in bf16) and torch.optim.Adam(fused=True) keeps its
   exp_avg/exp_avg_sq in bf16, computing in fp32 and storing every value
   rounded. Here: W [12, 8] bf16, the reference's Adam hyperparameters
   (betas 0.9/0.95, eps 1e-8, TIED_EMBED_LR 0.05), two optimizer steps of
   two micro-steps each (grad_scale 0.5), the second at LR scale 0.5; the
   loss of a micro-step is mean_t sum_j W[x_t, j] * K[y_t, j] over 8 positions
   with distinct inputs x_t, so each gradient row comes from one position.
   Shim: torch 1.13 has no fused Adam on the CPU (fused=True requires CUDA);
   the fused kernel's arithmetic is float32 on the bf16 values, every
   result stored in bf16, which is torch.optim.Adam's own float32 step on
   float32 copies of the bf16 parameter, gradient and moments, rounded back
   to bf16 after each step.
2. Muon's bf16 update. The reference's own Muon class (imported from
   train_gpt.py) writes every orthogonalised, scaled update into the bf16
   buffer updates_flat and adds it to the fp32 matrix. Here: two fp32
   matrices, [16, 8] (scaled by sqrt(2)) and [8, 16], two steps at momentum
   0.85 and 0.9, MATRIX_LR 0.04 at LR scale 1 then 0.5. Shim: Newton-Schulz
   in float32 (golf's tiny preset; the function's own source with
   G.bfloat16() -> G.float()), so that only the updates_flat rounding is in
   bf16 and golf's float32 Newton-Schulz can be compared with it.

Run with torch 1.13 (the reference file as in gen_reference_losses.py):
    /usr/bin/python3 train/testdata/gen_bf16_steps.py [baseline_train_gpt.py]
"""
import hashlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path

import torch

DEFAULT_REF = "/work/ref/baseline_train_gpt.py"


def vals(t):
    return [float(v) for v in t.detach().float().reshape(-1).tolist()]


def adam_case():
    g = torch.Generator().manual_seed(20240520)
    V, D, T = 12, 8, 8
    W = torch.nn.Parameter((torch.randn(V, D, generator=g) * 0.02).bfloat16())
    K = torch.randn(V, D, generator=g) * 0.5
    w32 = torch.nn.Parameter(W.detach().float())
    opt = torch.optim.Adam([w32], lr=0.05, betas=(0.9, 0.95), eps=1e-8)
    steps = []
    out = {"shape": [V, D], "w0": vals(W), "k": vals(K), "steps": steps}
    for scale in (1.0, 0.5):
        micro = []
        W.grad = None
        for _ in range(2):
            x = torch.randperm(V, generator=g)[:T].reshape(1, T)
            y = torch.randint(0, V, (1, T), generator=g)
            loss = (W[x].float() * K[y]).sum(-1).mean()
            (loss * 0.5).backward()
            micro.append({"x": x.reshape(-1).tolist(), "y": y.reshape(-1).tolist()})
        assert W.grad.dtype == torch.bfloat16
        # The fused step, emulated: float32 arithmetic on the bf16 values.
        w32.data = W.detach().float()
        w32.grad = W.grad.float()
        for group in opt.param_groups:
            group["lr"] = 0.05 * scale
        opt.step()
        st = opt.state[w32]
        st["exp_avg"].copy_(st["exp_avg"].bfloat16().float())
        st["exp_avg_sq"].copy_(st["exp_avg_sq"].bfloat16().float())
        with torch.no_grad():
            W.copy_(w32.data.bfloat16())
        steps.append({"lr_scale": scale, "micro": micro, "grad": vals(W.grad), "w": vals(W),
                      "adam_m": vals(st["exp_avg"]), "adam_v": vals(st["exp_avg_sq"])})
    return out


def muon_case(ref):
    g = torch.Generator().manual_seed(7)
    cases = []
    for rows, cols in ((16, 8), (8, 16)):
        p = torch.nn.Parameter(torch.randn(rows, cols, generator=g) * 0.1)
        opt = ref.Muon([p], lr=0.04, momentum=0.95, backend_steps=5)
        case = {"shape": [rows, cols], "p0": vals(p), "steps": []}
        for scale, momentum in ((1.0, 0.85), (0.5, 0.9)):
            grad = torch.randn(rows, cols, generator=g)
            p.grad = grad.clone()
            for group in opt.param_groups:
                group["lr"], group["momentum"] = 0.04 * scale, momentum
            opt.step()
            case["steps"].append({"lr_scale": scale, "momentum": momentum, "grad": vals(grad), "p": vals(p)})
        cases.append(case)
    return cases


def main():
    ref_path = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REF).resolve()
    spec = importlib.util.spec_from_file_location("train_gpt", ref_path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    src = inspect.getsource(ref.zeropower_via_newtonschulz5)
    assert src.count("G.bfloat16()") == 1
    exec(compile(src.replace("G.bfloat16()", "G.float()"), str(ref_path), "exec"), ref.__dict__)
    torch.set_num_threads(1)
    out = {
        "reference_sha256": hashlib.sha256(ref_path.read_bytes()).hexdigest(),
        "adam": adam_case(),
        "muon": muon_case(ref),
    }
    with open(Path(__file__).resolve().parent / "bf16_steps.json", "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
