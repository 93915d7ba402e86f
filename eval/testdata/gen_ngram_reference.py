#!/usr/bin/python3
"""Writes ngram_reference.bin: the token n-gram hints of PR #2135's own code
(online_ngram_state.c through online_ngram_tilt.py) on deterministic token
streams that eval's tests regenerate bit for bit in Go.

Run with Debian's python3 (numpy, sentencepiece, torch 1.13) and gcc:

    /usr/bin/python3 gen_ngram_reference.py REF_DIR

REF_DIR holds the record's online_ngram_tilt.py and online_ngram_state.c
(records/track_10min_16mb/2026-05-01_SP8192_PR2130Base_Calib32/ of the
challenge repository, PR #2135). Both are copied to a temporary folder
first: the module compiles the C file next to itself. No shim is needed;
build_hints_for_targets runs unchanged with the record's effective settings
(within-word and word-start experts at threshold 99 with boost 0,
agreement bonus 0), with the embedded sp1024 tokenizer for its look-up
tables.

Format (little-endian), zlib-compressed as a whole:
  u32 case count; per case:
    u8 name length, name, u32 n (stream tokens), u64 seed, u32 vocab,
    u32 phrase count, u32 phrase length, f64 mutate, f64 bos,
    u32 order, f64 threshold, f64 boost,
    (n-1) x u16 top token, (n-1) x f32 top probability (process_chunk),
    (n-1) x u8 gate, (n-1) x u16 hint, (n-1) x f32 boost (build_hints_for_targets)
  Entry i is for target i+1 of the stream (the record's target index i).
"""
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np

MASK = (1 << 64) - 1

# name, n, seed, vocab, phrases, phrase length, mutate, bos, order, threshold, boost
CASES = [
    ("record-order16", 12000, 11, 1024, 24, 40, 0.02, 0.002, 16, 0.8, 2.625),
    ("order4-small-vocab", 5000, 12, 12, 6, 7, 0.15, 0.01, 4, 0.5, 1.5),
    ("order2-ties", 3000, 13, 6, 3, 5, 0.3, 0.0, 2, 0.34, 2.0),
    ("order1-unigram", 2000, 14, 8, 2, 9, 0.4, 0.0, 1, 0.2, 1.0),
]


class LCG:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 11

    def uniform(self):
        return self.next() * (1.0 / (1 << 53))

    def below(self, n):
        return self.next() % n


def make_stream(n, seed, vocab, phrases, plen, mutate, bos):
    """Phrases of plen tokens from [2, vocab) repeated in random order, each
    token replaced with probability mutate, a BOS (1) before a phrase with
    probability bos; the stream starts with BOS."""
    g = LCG(seed)
    table = [[2 + g.below(vocab - 2) for _ in range(plen)] for _ in range(phrases)]
    out = [1]
    while len(out) < n:
        if g.uniform() < bos:
            out.append(1)
        for t in table[g.below(phrases)]:
            out.append(2 + g.below(vocab - 2) if g.uniform() < mutate else t)
    return np.array(out[:n], dtype=np.uint16)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ref = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    tok = os.path.join(here, "..", "..", "tokenizer", "models", "fineweb_1024_bpe.model")
    work = tempfile.mkdtemp()
    for f in ("online_ngram_tilt.py", "online_ngram_state.c"):
        shutil.copy(os.path.join(ref, f), work)
    sys.path.insert(0, work)
    import online_ngram_tilt as ng

    lib = ng.ensure_online_ngram_lib(log0=lambda *_: None)
    out = [struct.pack("<I", len(CASES))]
    for (name, n, seed, vocab, phrases, plen, mutate, bos, order, thr, boost) in CASES:
        tokens = make_stream(n, seed, vocab, phrases, plen, mutate, bos)
        targets = tokens[1:]
        _, snw, bnd = ng.build_piece_luts(tokenizer_path=tok, vocab_size=1024)
        st = ng.OnlineNgramState(
            lib=lib, token_ctx_len=max(order - 1, 0),
            token_table_bits=ng.suggest_table_bits(len(targets), 0.55),
            within_table_bits=ng.suggest_table_bits(max(len(targets) // 2, 1), 0.60),
            starts_new_word_lut=snw, boundary_lut=bnd, seed_prefix_token=int(targets[0]))
        top_tok, top_prob, _, _, _ = st.process_chunk(targets)
        st.close()
        hints = ng.build_hints_for_targets(
            target_token_ids_np=targets, tokenizer_path=tok, vocab_size=1024, log0=lambda *_: None,
            token_order=order, token_threshold=thr, token_boost=boost,
            within_tau=99.0, within_boost=0.0, word_order=4, word_normalize="strip_punct_lower",
            word_tau=99.0, word_boost=0.0, agree_add_boost=0.0)
        nb = name.encode()
        out.append(struct.pack("<B", len(nb)) + nb)
        out.append(struct.pack("<IQIIIddIdd", n, seed, vocab, phrases, plen, mutate, bos, order, thr, boost))
        out.append(top_tok.astype("<u2").tobytes())
        out.append(top_prob.astype("<f4").tobytes())
        out.append(hints["gate_mask"].astype("u1").tobytes())
        out.append(hints["hint_ids"].astype("<u2").tobytes())
        out.append(hints["boost"].astype("<f4").tobytes())
        print(f"{name}: {len(targets)} targets, {int(hints['gate_mask'].sum())} gated", file=sys.stderr)
    shutil.rmtree(work)
    with open(os.path.join(here, "ngram_reference.bin"), "wb") as f:
        f.write(zlib.compress(b"".join(out), 9))


if __name__ == "__main__":
    main()
