#!/usr/bin/python3
"""Writes int8_reference.bin: the challenge reference quantizer's output
(quantize_float_tensor semantics of train_gpt.py, recomputed here with
torch.quantile / torch.round) on deterministic inputs that quant's tests
regenerate bit for bit in Go.

Run with Debian's python3-torch: /usr/bin/python3 gen_reference.py
Format (little-endian), zlib-compressed as a whole:
  per case: u8 name length, name, u32 rows, u32 cols, u8 per_row,
            rows x f32 clip, rows x (u16 fp16 scale if per_row else f32 scale),
            rows*cols x i8 symbols
"""
import struct
import zlib

import torch

MASK = (1 << 64) - 1
CLIP_Q = 99.99984 / 100.0


class LCG:
    def __init__(self, seed):
        self.state = seed & MASK

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return (self.state >> 11) * (1.0 / (1 << 53))


def case_values(name, rows, cols, seed):
    g = LCG(seed)
    out = []
    for r in range(rows):
        u = g.uniform()
        row_scale = 0.005 + 3.0 * (u * u * u)
        for c in range(cols):
            if name == "heavy":
                v = (g.uniform() - 0.5) / (g.uniform() + 0.003) * 0.01
            else:
                v = (g.uniform() + g.uniform() + g.uniform() + g.uniform() - 2.0) * row_scale
            if name == "edge":
                if r == 0:
                    v = 0.0
                elif r == 1:
                    v = 0.5
                elif r == 2:
                    v = v * 1e-6
                elif r == 3:
                    v = 100.0 if c == 7 else v * 0.01
            out.append(v)
    return out


CASES = [("gauss", 48, 512, 1), ("heavy", 16, 1024, 2), ("edge", 8, 300, 3), ("vector", 1, 70000, 4)]


def main():
    blob = bytearray()
    for name, rows, cols, seed in CASES:
        vals = case_values(name, rows, cols, seed)
        t32 = torch.tensor(vals, dtype=torch.float32).reshape(rows, cols)
        per_row = name != "vector"
        if per_row:
            clip = torch.quantile(t32.abs(), CLIP_Q, dim=1)
            clipped = torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None])
            scale = (clip / 127.0).clamp_min(1.0 / 127.0)
            q = torch.clamp(torch.round(clipped / scale[:, None]), -127, 127).to(torch.int8)
            stored = scale.to(torch.float16)
        else:
            flat = t32.flatten()
            clip_abs = float(torch.quantile(flat.abs(), CLIP_Q).item())
            clip = torch.tensor([clip_abs], dtype=torch.float32)
            s = torch.tensor(clip_abs / 127.0 if clip_abs > 0 else 1.0, dtype=torch.float32)
            q = torch.clamp(torch.round(torch.clamp(flat, -clip_abs, clip_abs) / s), -127, 127).to(torch.int8)
            stored = s.reshape(1)
        blob += struct.pack("<B", len(name)) + name.encode()
        blob += struct.pack("<IIB", rows, cols, 1 if per_row else 0)
        blob += clip.numpy().astype("<f4").tobytes() if hasattr(clip, "numpy") else b""
        if per_row:
            blob += stored.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            blob += stored.numpy().astype("<f4").tobytes()
        blob += q.flatten().numpy().astype("i1").tobytes()
    with open("int8_reference.bin", "wb") as f:
        f.write(zlib.compress(bytes(blob), 9))


if __name__ == "__main__":
    main()
