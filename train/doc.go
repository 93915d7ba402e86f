// Package train trains and evaluates golf's models the way the challenge's
// train_gpt.py does, in Go on GoMLX backends.
//
// The pieces, from the bottom up:
//
//   - Optimizers (OptimizerConfig): Muon for every 2-D block matrix
//     (Nesterov momentum warmed up from 0.85 to 0.95, five Newton-Schulz
//     orthogonalisation steps in bfloat16, update scaled by
//     sqrt(max(1, rows/cols))); Adam with torch's bias correction for the
//     tied embedding and the control parameters; optional decoupled weight
//     decay and global-norm clipping.
//   - Schedules: Schedule.LRScale is the reference's lr_mul (constant, then a
//     linear warm-down by steps or, under a wall-clock cap, by estimated time);
//     MomentumWarmup is Muon's momentum ramp.
//   - Trainer: a model's parameters and optimizer state on a backend, with
//     forward, backward, gradient accumulation over micro-batches, clipping and
//     both optimizers compiled into one graph per micro-step kind. Step feeds
//     one optimizer step of micro-batches; Snapshot/Restore undo warm-up steps.
//   - Evaluation: Evaluate (from weights alone) and Trainer.Evaluate give
//     val_loss, the mean cross-entropy in nats over every validation target in
//     whole windows, and val_bpb = val_loss/ln 2 * tokens/bytes with the
//     tokenizer's byte rule; EvalOptions.Stride turns on sliding windows that
//     score every token exactly once. Per-token losses are summed in float64
//     on the host.
//   - Run: the reference's whole job (warm-up, the timed loop, periodic
//     validation, checkpoints, train.log, results.json and, through
//     Options.LossPlot, loss.png), driven by
//     Settings; PresetSettings gives the "tiny" (CPU) and "baseline" presets.
//   - Checkpoints: SaveCheckpoint/LoadCheckpoint, a directory of JSON and
//     checksummed tensor files (format in checkpoint.go and tensorfile.go),
//     replaced atomically; a resumed run continues the same loss curve.
//   - Bench: milliseconds per optimizer step, tokens per second and compile
//     time, for `golf bench train`.
package train
