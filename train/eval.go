package train

import (
	"fmt"
	"io"
	"time"

	"github.com/paramgolf/golf/eval"
)

// ByteCounter gives the number of UTF-8 bytes a target token stands for,
// given the token before it: the challenge's val_bpb byte rule.
// *tokenizer.ByteTable implements it.
type ByteCounter interface {
	TokenBytes(prev, tok int) int
}

// EvalOptions configures Evaluate and Trainer.Evaluate: the plain and
// sliding passes of the eval package (which also has document isolation,
// the n-gram tilt and test-time training: use eval.Evaluator directly).
type EvalOptions struct {
	// SeqLen is the window length in tokens (the model's training sequence
	// length in the baseline).
	SeqLen int
	// Stride is the sliding-window step: 0 or SeqLen scores non-overlapping
	// windows (the baseline's eval_val); a smaller stride scores every token
	// with at least SeqLen-Stride tokens of context (the records use 64).
	Stride int
	// BatchRows is how many windows run per graph call; 0 picks about 64k
	// tokens per call. It is capped at the number of windows, and the last
	// call is padded, so one compiled graph serves the whole evaluation.
	BatchRows int
	// Progress, when set, receives periodic progress lines.
	Progress io.Writer
	// TargetBytes, when set, holds the bytes of every token of the
	// validation stream: the byte sidecar of CaseOps data
	// (data.LoadValidationBytes). The target at stream position p then
	// counts TargetBytes[p] bytes instead of what the ByteCounter says, as
	// the record's evaluation does. It must cover the whole stream.
	TargetBytes []uint16
}

// EvalResult is the outcome of one evaluation.
type EvalResult struct {
	ValLoss  float64       `json:"val_loss"` // mean cross-entropy per scored token, nats
	ValBPB   float64       `json:"val_bpb"`  // bits per byte: ValLoss/ln2 * Tokens/Bytes
	Tokens   int64         `json:"tokens"`   // scored target tokens
	Bytes    int64         `json:"bytes"`    // bytes of the scored targets (the byte rule)
	Windows  int           `json:"windows"`  // windows run through the model
	Duration time.Duration `json:"duration_ns"`
}

// toEval maps EvalOptions onto the eval package's.
func (o EvalOptions) toEval() eval.Options {
	e := eval.Options{SeqLen: o.SeqLen, Stride: o.Stride, Progress: o.Progress}
	if o.BatchRows > 0 {
		e.BatchTokens = o.BatchRows * max(o.SeqLen, 1)
	}
	return e
}

// byteSource is the eval package's byte source of a byte rule, or of the
// sidecar when the options carry one.
func (o EvalOptions) byteSource(rule ByteCounter) eval.ByteSource {
	if o.TargetBytes != nil {
		return eval.SidecarBytes(o.TargetBytes)
	}
	return eval.TableBytes(rule)
}

// fromEval maps an eval.Result onto EvalResult.
func fromEval(r *eval.Result) EvalResult {
	return EvalResult{ValLoss: r.ValLoss, ValBPB: r.ValBPB, Tokens: r.Tokens, Bytes: r.Bytes, Windows: r.Windows, Duration: r.Duration}
}

// recoverGraphPanic turns a panic raised while building or running a graph
// (gomlx reports shape errors by panicking) into an error, so that none
// crosses the package boundary.
func recoverGraphPanic(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %v", op, r)
	}
}
