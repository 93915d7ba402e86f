// Package train trains and evaluates models: optimizers (Muon and Adam),
// schedules, the wall-clock budgeted loop, and val_loss / val_bpb evaluation.
package train
