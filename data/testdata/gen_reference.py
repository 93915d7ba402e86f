#!/usr/bin/python3
"""Regenerates the reference data of package data's tests.

Run from data/testdata with the Debian python3-sentencepiece (0.1.97) and
numpy:  /usr/bin/python3 gen_reference.py

1. docs.jsonl: 40 documents, snippets of the embedded corpus in its frozen
   order interleaved with hand-written edge cases (empty text, whitespace
   only, NUL, CR/LF, tabs, accents, CJK and emoji that need byte fallback).
2. ref_sp1024/ and ref_sp8192/: the shards the challenge's exporter
   (export_shards in data/download_hf_docs_and_tokenize.py) makes from
   docs.jsonl with the sp1024 and sp8192 models, with 7 validation documents
   and 700-token shards: every document is BOS (id 1) followed by
   SentencePiece's encode(text), no EOS; the first 7 documents go to
   fineweb_val_*, the rest to fineweb_train_*; a shard is flushed when full
   and when the split changes, so documents straddle shards within a split.
   Written by an independent numpy writer of the header layout.
3. golden_shard.bin: 1000 tokens t[i] = (i*7919 + 13) mod 65536 written by
   the same numpy writer.
"""
import json
import random
import subprocess
from pathlib import Path

import numpy as np
import sentencepiece as spm

HERE = Path(__file__).resolve().parent
MAGIC, VERSION = 20240520, 1
VAL_DOCS, SHARD_TOKENS = 7, 700
MODELS = {
    "sp1024": HERE / "../../tokenizer/models/fineweb_1024_bpe.model",
    "sp8192": HERE / "../../tokenizer/testdata/fineweb_8192_bpe.model",
}

EDGE_CASES = [
    "",
    "   \n\t  ",
    "Hello\nworld",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u2014 \u201cquoted\u201d \u2026",
    "\u4e2d\u6587\u6587\u672c\u548c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "emoji \U0001f389\U0001f680 and \U0001f9ea test",
    "nul\x00byte and\ttab\r\nwindows line",
    "  leading and trailing spaces   ",
    "Numbers 1234567890 3.14159 -42 1e10 0x1F",
    "\ufb01 ligature x\u00b2 \u2460 full\uff37idth",
]


def write_shard(path, toks):
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, VERSION, len(toks)
    arr = np.asarray(toks, dtype=np.int64)
    assert ((arr >= 0) & (arr < 65536)).all()
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(arr.astype("<u2").tobytes())


def make_docs():
    raw = subprocess.run(["zstd", "-dc", str(HERE / "../corpus/sotu.jsonl.zst")],
                         check=True, capture_output=True).stdout.decode("utf-8")
    corpus = [json.loads(l)["text"] for l in raw.splitlines() if l.strip()]
    rng = random.Random(20240520)
    docs = []
    for i in range(30):
        text = corpus[i]
        n = rng.randint(40, 3000)
        start = rng.randint(0, max(0, len(text) - n))
        docs.append(text[start:start + n])
    for j, e in enumerate(EDGE_CASES):
        docs.insert(3 + 4 * j, e)
    with open(HERE / "docs.jsonl", "w", encoding="utf-8") as f:
        for i, d in enumerate(docs):  # half the lines with \uXXXX escapes, half raw UTF-8
            f.write(json.dumps({"text": d, "n": len(d)}, ensure_ascii=i % 2 == 0) + "\n")
    return docs


def export(docs, model, out):
    out.mkdir(exist_ok=True)
    for old in out.glob("fineweb_*.bin"):
        old.unlink()
    sp = spm.SentencePieceProcessor(model_file=str(model))
    streams = {"val": [], "train": []}
    for i, d in enumerate(docs):
        split = "val" if i < VAL_DOCS else "train"
        streams[split] += [sp.bos_id()] + sp.encode(d, out_type=int)
    for split, toks in streams.items():
        for k in range(0, len(toks), SHARD_TOKENS):
            write_shard(out / f"fineweb_{split}_{k // SHARD_TOKENS:06d}.bin", toks[k:k + SHARD_TOKENS])
        print(out.name, split, len(toks), "tokens")


def main():
    docs = make_docs()
    for name, model in MODELS.items():
        export(docs, model, HERE / f"ref_{name}")
    write_shard(HERE / "golden_shard.bin", [(i * 7919 + 13) % 65536 for i in range(1000)])


if __name__ == "__main__":
    main()
