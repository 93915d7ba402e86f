// Package eval scores a model on a validation stream the way the
// challenge's records do, and hands every score to whoever wants to check it.
//
// A validation stream is the concatenated validation tokens; every token
// after the first is a target, scored once. val_loss is the mean loss in
// nats over the targets and val_bpb = Σ loss / (ln 2 · Σ bytes), the bytes
// coming from a ByteSource (the tokenizer's byte rule, or a CaseOps byte
// sidecar). Losses come back to the host per target and are summed there in
// float64, in stream order, so the token-losses file (WriteTokenLosses)
// reproduces both numbers exactly; the pure-Go backend's float32 reductions
// would be off by percents over millions of targets.
//
// # Modes
//
//   - Plain: non-overlapping windows of Options.SeqLen tokens (the
//     evaluation context, separate from training's sequence length).
//   - Sliding: windows every Stride targets, each scoring only its new
//     targets, so each has at least SeqLen−Stride tokens of context.
//   - Document-isolated: attention never crosses a BOS (either of the
//     above).
//   - Tilt: the record's token n-gram tilt (record-stack.md §6.4), its
//     hints computed in one causal pass with the record's hashing, the
//     tilted distribution renormalised over the whole vocabulary.
//   - TTT: score-first LoRA test-time training (§6.3): each document's
//     chunks of 48 targets are scored, then trained on (one AdamW step of
//     per-document adapters on Q, V, O, MLP and the head at every virtual
//     layer), documents batched side by side, A warm from batch to batch;
//     after a prefix of documents is scored the whole base model (but its
//     frozen parameters) is fine-tuned on them by SGD, each step the
//     record's 8-rank data-parallel step reproduced on one device
//     (TTT.GlobalRanks), and the rest is scored by the updated model.
//     Documents go in stream order by default; the record's length-sorted
//     order is an option (not stream-causal).
//
// # Parity
//
// The record-order TTT (with and without the tilt, warm or fresh A, one or
// two global phases) is tested against PR #2135's own eval_val_ttt_phased
// run unchanged on micro models, target by target, and the global phase
// against its train_val_ttt_global_sgd_distributed on 8, 6, 5, 3 and 1
// gloo ranks, with documents aligned to the sequences and across them
// (testdata/gen_ttt_reference.py); the tilt's hints against its
// online_ngram_state.c (testdata/gen_ngram_reference.py).
//
// # Compile once
//
// An Evaluator keeps its compiled graphs per shape: scoring new weights
// (SetWeights), or the live variables of a trainer (NewFromContext), reuses
// them. Test-time training pads its rows to a few lengths (the chunk times
// powers of two, up to SeqLen) so any document runs through a handful of
// shapes.
//
// # Checking
//
// Every mode is a Mode: it reports each score to a Recorder, and on request
// the whole distribution behind it, which is what eval/audit needs to check
// causality, normalisation and that each target is scored once.
package eval
