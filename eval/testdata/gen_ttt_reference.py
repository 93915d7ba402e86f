#!/usr/bin/python3
"""Writes ttt_reference/*.golden.gz: PR #2135's score-first phased LoRA test-time training
(eval_val_ttt_phased, with train_val_ttt_global_sgd_distributed for the global phase) run
unchanged on a micro record model, for eval's TestTTTRecordParity (ttt_*.golden.gz); and
the global phase alone on 8, 5 and 1 ranks, for TestTTTGlobalPhaseRecordParity
(global_*.golden.gz: one process per rank, joined by torch.distributed's gloo backend, so the
record's own gradient all-reduce runs; see GLOBAL_CASES).

Run with Debian's python3-torch (1.13, CPU), from anywhere:

    /usr/bin/python3 eval/testdata/gen_ttt_reference.py [--record PATH] [--out DIR]

The record's train_gpt.py comes from the challenge repository's mirror (see
model/testdata/gen_golden.py, whose loader, shims, model configs and weight maps this script
reuses) unless --record names a copy. Output is deterministic.

What runs is the record's own code: GPT (forward_ttt, forward), BatchedTTTLoRA,
_find_docs, _select_ttt_doc_entries, _build_ttt_global_batches, _compute_chunk_window,
_accumulate_bpb, eval_val_ttt_phased, train_val_ttt_global_sgd_distributed, AdamW and SGD,
on one rank (world size 1, no torch.distributed). Shims, besides record_shim's (F.rms_norm,
flash attention in float32, Triton stubs, autocast("cuda") as a null context, AdamW without
fused=True):

  * every MLP's use_fused = False: the global phase calls base_model.train(), where MLP.forward
    would launch the fused Triton LeakyReLU² kernel; the eager path is the same math;
  * BatchedTTTLoRA.__init__ (and, with TTT_WARM_START_A=0, BatchedTTTLoRA.reset) runs
    unchanged, then overwrites every A with deterministic values golf's test computes too
    (record_a below): A is drawn with torch's RNG, which golf cannot reproduce. Each
    BatchedTTTLoRA the record constructs is one "draw" (1, 2, ...): the first reusable adapter,
    the short batch's own adapter, the fresh adapter after a global phase, and without warm
    start every reset; golf must draw in the same order for the values to agree;
  * BatchedLinearLoRA._ALPHA is set per case (the record reads TTT_LORA_ALPHA at import);
  * _claim_next_batch and _accumulate_bpb are wrapped (the originals still run) to record which
    batch is scored and every scored target's loss at its stream position; the record's
    file-lock counters between ranks (/tmp/ttt_*_<run_id>) are removed afterwards.

Cases use eval_seq_len = ttt_eval_seq_len (golf has one context length) and, with a global
phase in the TTT cases, global_ttt_chunk_tokens = eval_seq_len: one sequence per SGD step;
the GLOBAL_CASES run longer chunks, several sequences per rank and step, and documents across
sequence boundaries (see eval/global.go for how golf lays out the record's packed rows).
AsymLogit's softcaps stay at the scalar
softcap, as the record never trains them (forward(), used by the global phase, takes the
scalar cap).

File format: gen_golden.py's (GOLFGLD1, JSON header, little-endian tensors). Header: case,
kind "ttt", source, source_sha256, description, config (golf's model.Config JSON), ttt (the
record's settings, golf's TTT field names), seq, val_loss, val_bpb (the record's return
values), draws (BatchedTTTLoRA constructions), batches (queue order: the record's batch
index and its documents [start, len]). Tensors: tokens [n] int32 (the validation stream);
lut/base_bytes, lut/leading_space, lut/boundary [V] int32 (the byte rule's tables);
nats [n] float32 (the loss of the target at each stream position, NaN at 0); nats_f64 [n]
(the same from a run with torch's default dtype float64: the model, adapters and optimizer
states in float64 except where the record casts to float32, such as its cross-entropy; how
far the two runs differ is the reference's own sensitivity to rounding: up to 9e-5 nats on
one document of ttt_tilt, about 1e-5 elsewhere); weights/<golf name> (the base model).

global_*.golden.gz (kind "ttt-global"): header case, source, source_sha256, description,
config, ttt (golf's settings, global_ranks = the world size), seq, world_size; tensors tokens
(the stream; its documents, concatenated, are what the phase trains on), weights/<golf name>
(before) and after/<golf name> (rank 0's weights after the phase).
"""

import argparse
import contextlib
import hashlib
import math
import os
import shutil
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "..", "model", "testdata"))
import gen_golden as gg  # noqa: E402

# golf's model.AdapterTarget values.
TARGETS = {"q_loras": 1, "k_loras": 2, "v_loras": 3, "o_loras": 4, "mlp_loras": 5}
HEAD = 6
MASK64 = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def record_a(draw, target, slot, rows, rank, width):
    """The A values of one LoRA (golf: testA in ttt_reference_test.go): entry [b, r, i] is
    (2u - 1)/sqrt(width) in float64, then float32, with u in [0, 1) from splitmix64 of
    the key ((((draw·8 + target)·64 + slot+1)·256 + b)·256 + r)·4096 + i."""
    bound = 1.0 / math.sqrt(width)
    out = np.empty((rows, rank, width), dtype=np.float32)
    for b in range(rows):
        for r in range(rank):
            for i in range(width):
                key = (((((draw * 8 + target) * 64 + slot + 1) * 256 + b) * 256 + r) * 4096 + i) & MASK64
                u = (splitmix64(key) >> 11) / float(1 << 53)
                out[b, r, i] = (2.0 * u - 1.0) * bound
    return out


DRAWS = [0]  # BatchedTTTLoRA constructions in the running case


def install_lora_hook(mod):
    orig = mod.BatchedTTTLoRA.__init__
    if getattr(orig, "_golf_hook", False):
        return

    orig_reset = mod.BatchedTTTLoRA.reset

    def draw(self):
        DRAWS[0] += 1
        d = DRAWS[0]
        loras = [(self.lm_head_lora, HEAD, -1)]
        for name, target in TARGETS.items():
            lst = getattr(self, name)
            if lst is not None:
                loras += [(l, target, slot) for slot, l in enumerate(lst)]
        with torch.no_grad():
            for l, target, slot in loras:
                a = l.A
                a.copy_(torch.from_numpy(record_a(d, target, slot, a.shape[0], a.shape[1], a.shape[2])))

    def init(self, bsz, model, rank, **kw):
        orig(self, bsz, model, rank, **kw)
        draw(self)

    def reset(self):
        orig_reset(self)
        if not mod.BatchedLinearLoRA._WARM_START_A:  # reset drew fresh A with torch's RNG
            draw(self)

    init._golf_hook = True
    mod.BatchedTTTLoRA.__init__ = init
    mod.BatchedTTTLoRA.reset = reset


TTT_MICRO = dict(rank=2, alpha=4.0, chunk=4, seq=8, batch_docs=3, lr=0.01, beta1=0.0, beta2=0.99,
                 eps=1e-10, weight_decay=2.0, k=False, mlp=True, o=True, prefix_docs=0, phases=1,
                 global_lr=0.01, global_momentum=0.9, global_clip=1.0, global_epochs=1, warm_start_a=True)

CASES = [
    ("ttt_full_stack", gg.FULL_STACK, dict(),
     "every record technique on, looped (adapter slots per virtual layer), TTT as the record (K off), no global phase; one short batch (the longest document) first"),
    ("ttt_phased", gg.FULL_STACK, dict(k=True, prefix_docs=5),
     "as ttt_full_stack with the K LoRA and one global SGD phase after the first 5 documents scored; fresh adapters after it"),
    ("ttt_minimal", {}, dict(batch_docs=4, prefix_docs=3, phases=2, chunk=3, seq=7),
     "the record's GPT with every option off, batches of 4, chunk 3, context 7, two global phases"),
    ("ttt_tilt", gg.FULL_STACK, dict(prefix_docs=4, tilt=dict(order=3, threshold=0.5, boost=2.625)),
     "as ttt_phased (K off) with the token n-gram tilt on the scores (order 3, threshold 0.5, boost 2.625; hints from the record's build_hints_for_targets) over documents of repeated phrases"),
    ("ttt_cold_a", gg.FULL_STACK, dict(warm_start_a=False, prefix_docs=4),
     "as ttt_phased (K off) with TTT_WARM_START_A=0: every batch's reset draws fresh A (a draw per reset in golf too)"),
]

# The record's n-gram tilt module and its C state, from the same folder as train_gpt.py.
NGRAM_SOURCES = ("online_ngram_tilt.py", "online_ngram_state.c")
SP1024 = os.path.join(HERE, "..", "..", "tokenizer", "models", "fineweb_1024_bpe.model")


def load_ngram(record_path, work):
    """Copies the record's online_ngram_tilt.py and online_ngram_state.c into work (the
    module compiles the C file next to itself) and imports it: from the record's folder when
    --record names a file, else from the mirror."""
    for f in NGRAM_SOURCES:
        if record_path:
            src = open(os.path.join(os.path.dirname(record_path), f), "rb").read()
        else:
            src, _ = gg.load_source(None, gg.SOURCES["record"].rsplit("/", 1)[0] + "/" + f)
        with open(os.path.join(work, f), "wb") as out:
            out.write(src)
    sys.path.insert(0, work)
    import online_ngram_tilt
    return online_ngram_tilt


def record_hints(ng, tokens, tilt):
    """The record's hints for every target of the stream (build_hints_for_targets with only
    the token expert on, as #2135 runs it), as eval_val_ttt_phased takes them."""
    hints = ng.build_hints_for_targets(
        target_token_ids_np=tokens[1:].astype(np.uint16), tokenizer_path=SP1024, vocab_size=1024,
        log0=lambda *_: None, token_order=tilt["order"], token_threshold=tilt["threshold"],
        token_boost=tilt["boost"], within_tau=99.0, within_boost=0.0, word_order=4,
        word_normalize="strip_punct_lower", word_tau=99.0, word_boost=0.0, agree_add_boost=0.0)
    return (torch.from_numpy(hints["hint_ids"].astype("int64")), torch.from_numpy(hints["gate_mask"]),
            torch.from_numpy(hints["boost"].astype("float32")))


def phrase_stream(seed, vocab, n_docs, min_len, max_len, phrases=4, plen=5, mutate=0.1):
    """Documents of repeated phrases (so the n-gram expert fires), a token mutated with
    probability mutate."""
    g = np.random.default_rng(seed)
    table = g.integers(2, vocab, size=(phrases, plen))
    out = []
    for _ in range(n_docs):
        n = int(g.integers(min_len, max_len + 1))
        doc = [gg.BOS]
        while len(doc) < n:
            for tok in table[g.integers(phrases)]:
                doc.append(int(g.integers(2, vocab)) if g.random() < mutate else int(tok))
        out += doc[:n]
    return np.array(out, dtype=np.int64)


def make_stream(seed, vocab, n_docs, min_len, max_len):
    g = np.random.default_rng(seed)
    out = []
    for _ in range(n_docs):
        n = int(g.integers(min_len, max_len + 1))
        out += [gg.BOS] + [int(x) for x in g.integers(2, vocab, size=n - 1)]
    return np.array(out, dtype=np.int64)


def build_model(mod, name, over, seq, seed, env):
    """The record's GPT at a micro config with gen_golden's seeded weights, ready for TTT
    (looping on, the eager MLP): returns h, the model, golf's config, the parameter map
    (record name -> golf names) and the golf-named weights."""
    h = gg.make_h(mod, dict(over), seq)
    torch.manual_seed(0)
    model = mod.GPT(h)
    if h.num_loops > 0:
        model.looping_active = True
    for m in model.modules():
        if isinstance(m, mod.MLP):
            m.use_fused = False
    mod.BOS_ID = gg.BOS
    cfg = gg.golf_config_record(h, name, seq, env)
    pmap = gg.record_param_map(model, h.num_layers)
    if h.parallel_start_layer <= 0:
        pmap = {k: v for k, v in pmap.items() if not k.startswith("parallel_")}
    case = dict(softcaps={"softcap_pos": h.logit_softcap, "softcap_neg": h.logit_softcap}, q_gain=h.qk_gain_init)
    weights = gg.fill_weights(model, pmap, seed, case)
    return h, model, cfg, pmap, weights


def run_case(mod, ng, name, over, tset, desc, seed, origin, digest, out_dir, nats64=None):
    """Runs one case; with nats64 None it returns the per-target losses only (the float64
    sensitivity run), else it writes the file with them."""
    t = {**TTT_MICRO, **tset}
    seq = t["seq"]
    env = {"SMEAR_GATE_BOS_FIX": "0"}
    h, model, cfg, pmap, weights = build_model(mod, name, over, seq, seed, env)
    tilt = t.get("tilt")
    if tilt:
        tokens = phrase_stream(seed + 1, h.vocab_size, 11, 3, 30)
    else:
        tokens = make_stream(seed + 1, h.vocab_size, 11, 3, 30)
    g = np.random.default_rng(seed + 2)
    base = g.integers(0, 5, size=h.vocab_size).astype(np.int32)
    lead = (g.random(h.vocab_size) < 0.4).astype(np.int32)
    boundary = np.zeros(h.vocab_size, dtype=np.int32)
    boundary[[0, gg.BOS, 2]] = 1
    base[gg.BOS] = 0
    lead[gg.BOS] = 0

    h.run_id = f"golf_ttt_ref_{os.getpid()}_{name}"
    h.rank, h.world_size, h.is_main_process = 0, 1, True
    h.eval_seq_len, h.ttt_eval_seq_len = seq, seq
    h.ttt_lora_rank, h.ttt_chunk_size, h.ttt_batch_size = t["rank"], t["chunk"], t["batch_docs"]
    h.ttt_lora_lr, h.ttt_beta1, h.ttt_beta2, h.ttt_weight_decay = t["lr"], t["beta1"], t["beta2"], t["weight_decay"]
    h.ttt_k_lora, h.ttt_mlp_lora, h.ttt_o_lora = t["k"], t["mlp"], t["o"]
    h.ttt_optimizer, h.ttt_grad_steps, h.ttt_grad_steps_clean, h.ttt_eval_batches = "adam", 1, False, ""
    h.phased_ttt_prefix_docs, h.phased_ttt_num_phases = t["prefix_docs"], t["phases"]
    h.val_doc_fraction = 1.0
    h.global_ttt_lr, h.global_ttt_momentum, h.global_ttt_epochs = t["global_lr"], t["global_momentum"], t["global_epochs"]
    h.global_ttt_chunk_tokens, h.global_ttt_batch_seqs = seq, 1
    h.global_ttt_warmup_chunks, h.global_ttt_warmup_start_lr = 0, 0.0
    h.global_ttt_grad_clip, h.global_ttt_respect_doc_boundaries = t["global_clip"], True
    h.global_ttt_optimizer = "sgd"
    h.ngram_tilt_enabled = False
    mod.BatchedLinearLoRA._ALPHA = t["alpha"]
    mod.BatchedLinearLoRA._WARM_START_A = t["warm_start_a"]

    val_tokens = torch.from_numpy(tokens)
    val_data = types.SimpleNamespace(
        val_tokens=val_tokens, caseops_enabled=False, val_bytes=None,
        base_bytes_lut=torch.from_numpy(base.astype(np.int16)),
        has_leading_space_lut=torch.from_numpy(lead.astype(bool)),
        is_boundary_token_lut=torch.from_numpy(boundary.astype(bool)))

    docs = mod._find_docs(val_tokens)
    queue = mod._build_ttt_global_batches(mod._select_ttt_doc_entries(docs, h), h)
    nats = np.full(len(tokens), np.nan, dtype=np.float32)
    state = dict(batch=None, ci=0)
    order = []

    orig_claim, orig_acc = mod._claim_next_batch, mod._accumulate_bpb

    def claim(path, qlen):
        idx = orig_claim(path, qlen)
        if idx < qlen:
            state["batch"], state["ci"] = queue[idx][1], 0
            order.append(dict(index=queue[idx][0], docs=[list(d) for _, d in queue[idx][1]]))
        return idx

    def accumulate(ptl, x, y, chunk_offsets, chunk_lens, *rest, **kw):
        ci = state["ci"]
        for b, (_, (start, dlen)) in enumerate(state["batch"]):
            pred = dlen - 1
            nc = (pred + t["chunk"] - 1) // t["chunk"]
            if ci >= nc:
                assert int(chunk_lens[b]) == 0, (name, b, ci)
                continue
            ws, wl, off, cl = mod._compute_chunk_window(ci, pred, nc, t["chunk"], seq)
            assert (int(chunk_offsets[b]), int(chunk_lens[b])) == (off, cl), (name, b, ci)
            for j in range(off, off + cl):
                p = start + ws + j + 1
                assert np.isnan(nats[p]), f"{name}: target {p} scored twice"
                assert int(y[b, j]) == int(tokens[p]), (name, p)
                nats[p] = float(ptl[b, j])
        state["ci"] += 1
        return orig_acc(ptl, x, y, chunk_offsets, chunk_lens, *rest, **kw)

    DRAWS[0] = 0
    install_lora_hook(mod)
    mod._claim_next_batch, mod._accumulate_bpb = claim, accumulate
    try:
        with gg.environ(env), contextlib.redirect_stdout(sys.stderr):
            hints = record_hints(ng, tokens, tilt) if tilt else None
            val_loss, val_bpb = mod.eval_val_ttt_phased(h, model, torch.device("cpu"), val_data, model.forward_ttt,
                                                        precomputed_hints=hints)
    finally:
        mod._claim_next_batch, mod._accumulate_bpb = orig_claim, orig_acc
        for f in os.listdir("/tmp"):
            if f.endswith(h.run_id):
                os.remove(os.path.join("/tmp", f))
    scored = ~np.isnan(nats[1:])
    assert scored.all(), f"{name}: targets never scored: {np.nonzero(~scored)[0] + 1}"

    if nats64 is None:
        return nats
    golf_ttt = dict(rank=t["rank"], alpha=t["alpha"], q=True, k=t["k"], v=True, o=t["o"], mlp=t["mlp"], head=True,
                    chunk=t["chunk"], lr=t["lr"], beta1=t["beta1"], beta2=t["beta2"], eps=t["eps"],
                    weight_decay=t["weight_decay"], batch_docs=t["batch_docs"], warm_start_a=t["warm_start_a"], order="record",
                    phases=t["phases"], prefix_docs=t["prefix_docs"], global_lr=t["global_lr"],
                    global_momentum=t["global_momentum"], global_clip=t["global_clip"], global_chunk_tokens=seq,
                    global_ranks=1, global_batch_seqs=1,
                    global_epochs=t["global_epochs"], seed=1)
    extra = dict(tilt=tilt, gated=int(hints[1].sum())) if tilt else {}
    tensors = {"tokens": tokens.astype(np.int32), "lut/base_bytes": base, "lut/leading_space": lead,
               "lut/boundary": boundary, "nats": nats, "nats_f64": nats64}
    for k in sorted(weights):
        tensors[f"weights/{k}"] = gg.f32(weights[k])
    header = dict(case=name, kind="ttt", source=gg.SOURCES["record"], source_sha256=digest, description=desc,
                  config=cfg, ttt=golf_ttt, seq=seq, val_loss=val_loss, val_bpb=val_bpb, draws=DRAWS[0],
                  batches=order, **extra)
    path = os.path.join(out_dir, f"{name}.golden.gz")
    gg.write_golden(path, header, tensors)
    print(f"{name:16s} val_loss {val_loss:.6f} val_bpb {val_bpb:.6f} draws {DRAWS[0]} batches {len(order)}  {os.path.getsize(path)} bytes")


# The global phase alone, on W ranks: train_val_ttt_global_sgd_distributed in W processes
# joined by torch.distributed's gloo backend (its gradient all-reduce is the real one).
# Two streams: "aligned" cuts documents so that every eval_seq_len boundary of the
# concatenated stream is a document start (the comparison then isolates the per-rank split
# and averaging, the batch_seqs steps, the cosine LR, the clip and the momentum);
# "documents" has documents that run across sequence boundaries and past eval_seq_len, so
# that golf must rebuild each rank's packed row: its segments (_build_cu_seqlens) and, where
# golf splits a row, the token before each piece that the SmearGate mixes in.
GLOBAL_SEQ = 8
# golf's TTT settings of the global cases besides the global ones (unused by the phase).
TTT_GOLF_BASE = dict(rank=2, alpha=4.0, q=True, k=False, v=True, o=True, mlp=True, head=True, chunk=4, lr=0.01,
                     beta1=0.0, beta2=0.99, eps=1e-10, weight_decay=2.0, batch_docs=3, warm_start_a=True,
                     order="record", seed=1)
GLOBAL_CASES = [
    # name, world size, batch_seqs per rank, stream, SMEAR_GATE_BOS_FIX, description
    ("global_w8", 8, 32, "aligned", "1", "8 ranks, 12 sequences per chunk: ranks of 1 and 2 sequences, one step per chunk"),
    ("global_w5", 5, 32, "aligned", "1", "5 ranks, 12 sequences per chunk: ranks of 2 and 3 sequences"),
    ("global_w1_b5", 1, 5, "aligned", "1", "one rank, 5 sequences per step: steps of 5, 5 and 2 sequences per chunk"),
    ("global_w6_docs", 6, 32, "documents", "0", "6 ranks of 2 sequences, documents across sequence boundaries and longer than eval_seq_len, BOS fix off: each rank's packed row"),
    ("global_w3_b3_docs", 3, 3, "documents", "1", "3 ranks of 4 sequences, steps of 3 and 1: documents across sequence boundaries, rows longer than two sequences"),
    ("global_w1_b5_docs", 1, 5, "documents", "0", "one rank, steps of 5, 5 and 2 sequences, documents across sequence boundaries, BOS fix off"),
]
GLOBAL_SETTINGS = dict(lr=0.02, momentum=0.9, clip=0.5, chunk_seqs=12, chunks=4)


def aligned_stream(seed, vocab, seq, n_seqs):
    """Documents whose concatenation (each BOS .. next BOS, as _find_docs cuts them) has a
    document start at every multiple of seq: each group of documents fills seq tokens."""
    g = np.random.default_rng(seed)
    lens = []
    for _ in range(n_seqs):
        left = seq
        while left:
            n = left if left <= 3 else int(g.integers(2, left - 1))
            lens.append(n)
            left -= n
    out = []
    for n in lens:  # a document of Len n holds its BOS, n-2 tokens, and the next BOS
        out += [gg.BOS] + [int(x) for x in g.integers(2, vocab, size=n - 2)]
    out.append(gg.BOS)
    out += [int(x) for x in g.integers(2, vocab, size=3)]
    return np.array(out, dtype=np.int64)


def documents_stream(seed, vocab, seq, n_seqs):
    """Documents of 2 .. 2.5 eval_seq_len tokens (each with its BOS) that start anywhere in
    the concatenated stream: they run across sequence boundaries, and the longer ones are cut
    every eval_seq_len tokens by _build_cu_seqlens."""
    g = np.random.default_rng(seed)
    out = []
    while len(out) < n_seqs * seq + 4:
        n = int(g.integers(2, 5 * seq // 2 + 1))
        out += [gg.BOS] + [int(x) for x in g.integers(2, vocab, size=n - 1)]
    out.append(gg.BOS)
    out += [int(x) for x in g.integers(2, vocab, size=3)]
    return np.array(out, dtype=np.int64)


STREAMS = {"aligned": aligned_stream, "documents": documents_stream}


def global_setup(mod, name, world, batch_seqs, stream, bos_fix, seed):
    env = {"SMEAR_GATE_BOS_FIX": bos_fix}
    h, model, cfg, pmap, weights = build_model(mod, name, gg.FULL_STACK, GLOBAL_SEQ, seed, env)
    gs = GLOBAL_SETTINGS
    n_seqs = gs["chunk_seqs"] * gs["chunks"]
    tokens = STREAMS[stream](seed + 1, h.vocab_size, GLOBAL_SEQ, n_seqs)
    h.eval_seq_len = GLOBAL_SEQ
    h.global_ttt_lr, h.global_ttt_momentum, h.global_ttt_epochs = gs["lr"], gs["momentum"], 1
    h.global_ttt_chunk_tokens, h.global_ttt_batch_seqs = gs["chunk_seqs"] * GLOBAL_SEQ, batch_seqs
    h.global_ttt_warmup_chunks, h.global_ttt_warmup_start_lr = 0, 0.0
    h.global_ttt_grad_clip, h.global_ttt_respect_doc_boundaries = gs["clip"], True
    h.global_ttt_optimizer = "sgd"
    h.world_size = world
    val = torch.from_numpy(tokens)
    flat = torch.cat([val[s:s + n] for s, n in mod._find_docs(val)])
    return env, h, model, cfg, pmap, weights, tokens, flat


def golf_weights(model, pmap):
    params = dict(model.named_parameters())
    out = {}
    for name, targets in pmap.items():
        for gname, idx in targets:
            v = params[name].detach() if idx is None else params[name].detach()[idx]
            out[gname] = v.clone().reshape(list(v.shape) or [1])
    return out


def _global_worker(rank, world, src, origin, name, batch_seqs, stream, bos_fix, seed, init_file, out_file):
    torch.set_num_threads(1)
    gg.install_shims()
    mod = gg.exec_source(f"ttt_global_{rank}", src, origin)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        env, h, model, _, pmap, _, _, flat = global_setup(mod, name, world, batch_seqs, stream, bos_fix, seed)
        h.rank = rank
        with gg.environ(env), contextlib.redirect_stdout(sys.stderr):
            mod.train_val_ttt_global_sgd_distributed(h, torch.device("cpu"), None, model, flat)
        if rank == 0:
            torch.save(golf_weights(model, pmap), out_file)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def run_global_case(mod, src, origin, digest, name, world, batch_seqs, stream, bos_fix, desc, seed, out_dir):
    _, h, _, cfg, _, weights, tokens, _ = global_setup(mod, name, world, batch_seqs, stream, bos_fix, seed)
    work = tempfile.mkdtemp(prefix="golf_ttt_global_")
    try:
        out_file = os.path.join(work, "after.pt")
        args = (world, src, origin, name, batch_seqs, stream, bos_fix, seed, os.path.join(work, "init"), out_file)
        if world > 1:
            torch.multiprocessing.spawn(_global_worker, args=args, nprocs=world, join=True)
        else:
            _global_worker(0, *args)
        after = torch.load(out_file)
    finally:
        shutil.rmtree(work)
    gs = GLOBAL_SETTINGS
    golf_ttt = dict(TTT_GOLF_BASE, global_lr=gs["lr"], global_momentum=gs["momentum"], global_clip=gs["clip"],
                    global_chunk_tokens=gs["chunk_seqs"] * GLOBAL_SEQ, global_epochs=1, global_ranks=world,
                    global_batch_seqs=batch_seqs, prefix_docs=1, phases=1)
    tensors = {"tokens": tokens.astype(np.int32)}
    moved = 0.0
    for k in sorted(weights):
        tensors[f"weights/{k}"] = gg.f32(weights[k])
        tensors[f"after/{k}"] = gg.f32(after[k])
        moved = max(moved, (after[k] - weights[k].reshape(after[k].shape)).abs().max().item())
    header = dict(case=name, kind="ttt-global", source=gg.SOURCES["record"], source_sha256=digest, description=desc,
                  config=cfg, ttt=golf_ttt, seq=GLOBAL_SEQ, world_size=world)
    path = os.path.join(out_dir, f"{name}.golden.gz")
    gg.write_golden(path, header, tensors)
    print(f"{name:16s} {world} ranks, batch_seqs {batch_seqs}: largest weight change {moved:.3e}  {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", help="PR #2135 train_gpt.py (default: from the mirror)")
    ap.add_argument("--out", default=os.path.join(HERE, "ttt_reference"))
    ap.add_argument("--only", help="comma-separated case-name prefixes to write (default: every case)")
    args = ap.parse_args()
    assert torch.__version__.startswith("1.13"), torch.__version__
    torch.set_num_threads(1)
    gg.install_shims()
    src, origin = gg.load_source(args.record, gg.SOURCES["record"])
    digest = hashlib.sha256(src).hexdigest()
    mod = gg.exec_source("ttt_record_train_gpt", src, origin)
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="golf_ttt_ngram_")
    try:
        ng = load_ngram(args.record, work)
        for i, (name, over, tset, desc) in enumerate(CASES):
            if args.only and not any(name.startswith(o) for o in args.only.split(",")):
                continue
            torch.set_default_dtype(torch.float64)
            try:
                nats64 = run_case(mod, ng, name, over, tset, desc, 2000 + i, origin, digest, args.out)
            finally:
                torch.set_default_dtype(torch.float32)
            run_case(mod, ng, name, over, tset, desc, 2000 + i, origin, digest, args.out, nats64)
    finally:
        shutil.rmtree(work)
    for i, (name, world, batch_seqs, stream, bos_fix, desc) in enumerate(GLOBAL_CASES):
        if args.only and not any(name.startswith(o) for o in args.only.split(",")):
            continue
        run_global_case(mod, src, origin, digest, name, world, batch_seqs, stream, bos_fix, desc, 3000 + i, args.out)


if __name__ == "__main__":
    main()
