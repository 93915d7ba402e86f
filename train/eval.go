package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/progress"
)

// ByteCounter gives the number of UTF-8 bytes a target token stands for,
// given the token before it: the challenge's val_bpb byte rule.
// *tokenizer.ByteTable implements it.
type ByteCounter interface {
	TokenBytes(prev, tok int) int
}

// EvalOptions configures Evaluate.
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

// window is one model input: tokens[start : start+seqLen] predict
// tokens[start+1 : start+seqLen+1]; only targets at positions >= from of the
// window are scored.
type window struct{ start, from int }

// planWindows lays out windows over a stream with total targets (the stream
// has total+1 tokens) so that every target is scored exactly once.
//
// The first window starts at 0 and scores all seqLen targets. Each later
// window ends stride targets further (the last one at the end of the stream)
// and scores only the targets the previous windows did not, so a scored
// target has at least seqLen-stride tokens of context. Every window is full
// length, and starts satisfy start + seqLen - stride < total: no window is
// only re-scoring the end of the stream (the early records' duplicate bug).
// With stride == seqLen and total a multiple of seqLen this is exactly the
// non-overlapping evaluation.
func planWindows(total, seqLen, stride int) ([]window, error) {
	if seqLen <= 0 {
		return nil, fmt.Errorf("eval: sequence length must be positive, got %d", seqLen)
	}
	if stride == 0 {
		stride = seqLen
	}
	if stride < 0 || stride > seqLen {
		return nil, fmt.Errorf("eval: stride must be in [1, %d] (the sequence length), got %d", seqLen, stride)
	}
	if total < seqLen {
		return nil, fmt.Errorf("eval: %d validation targets are fewer than one sequence of %d", total, seqLen)
	}
	ws := []window{{0, 0}}
	for scored := seqLen; scored < total; {
		end := min(scored+stride, total)
		start := end - seqLen
		ws = append(ws, window{start, scored - start})
		scored = end
	}
	return ws, nil
}

// tokenLossFn builds per-token losses [B, T] (float32 nats) from inputs and
// targets [B, T] int32; model.TokenLosses with a fixed config.
type tokenLossFn func(ctx *mlctx.Context, inputs, targets *graph.Node) *graph.Node

// evaluator runs windows through a compiled per-token loss graph over the
// variables of a context (the trainer's live one, or one loaded from weights).
type evaluator struct {
	exec      *mlctx.Exec
	rows, seq int
}

func newEvaluator(backend backends.Backend, ctx *mlctx.Context, lossFn tokenLossFn, rows, seqLen int) (*evaluator, error) {
	exec, err := mlctx.NewExec(backend, ctx.Reuse(), func(ctx *mlctx.Context, inputs, targets *graph.Node) *graph.Node {
		return lossFn(ctx, inputs, targets)
	})
	if err != nil {
		return nil, fmt.Errorf("eval: build graph: %w", err)
	}
	return &evaluator{exec: exec, rows: rows, seq: seqLen}, nil
}

// evalRows is the number of windows per graph call for scoring a stream of
// n tokens: opts.BatchRows, or about 64k tokens' worth, but never more than
// the windows there are (a short stream would otherwise pay for a padded
// batch). It also reports settings planWindows rejects.
func evalRows(opts EvalOptions, n int) (int, error) {
	if n < 2 {
		return 0, fmt.Errorf("eval: need at least 2 validation tokens, got %d", n)
	}
	ws, err := planWindows(n-1, opts.SeqLen, opts.Stride)
	if err != nil {
		return 0, err
	}
	rows := opts.BatchRows
	if rows <= 0 {
		rows = max(1, 65536/opts.SeqLen)
	}
	return min(rows, len(ws)), nil
}

// run scores tokens (a stream of total+1 tokens) window by window. Per-token
// losses come back to the host and are summed there in float64: the pure-Go
// backend's float32 reductions lose percent-level accuracy over millions of
// values.
func (e *evaluator) run(ctx context.Context, tokens []uint16, bytes ByteCounter, sidecar []uint16, stride int, w io.Writer) (EvalResult, error) {
	start := time.Now()
	if len(tokens) < 2 {
		return EvalResult{}, fmt.Errorf("eval: need at least 2 validation tokens, got %d", len(tokens))
	}
	if sidecar != nil && len(sidecar) < len(tokens) {
		return EvalResult{}, fmt.Errorf("eval: the byte sidecar has %d values for %d validation tokens", len(sidecar), len(tokens))
	}
	ws, err := planWindows(len(tokens)-1, e.seq, stride)
	if err != nil {
		return EvalResult{}, err
	}
	var res EvalResult
	var lossSum float64
	meter := progress.New(w, "eval", "windows", int64(len(ws)))
	inputs := make([]int32, e.rows*e.seq)
	targets := make([]int32, e.rows*e.seq)
	for b := 0; b < len(ws); b += e.rows {
		if err := ctx.Err(); err != nil {
			return EvalResult{}, fmt.Errorf("eval: %w", err)
		}
		batch := ws[b:min(b+e.rows, len(ws))]
		clear(inputs)
		clear(targets)
		for r, win := range batch {
			for i := range e.seq {
				inputs[r*e.seq+i] = int32(tokens[win.start+i])
				targets[r*e.seq+i] = int32(tokens[win.start+i+1])
			}
		}
		out, err := e.exec.Exec(tensors.FromFlatDataAndDimensions(inputs, e.rows, e.seq),
			tensors.FromFlatDataAndDimensions(targets, e.rows, e.seq))
		if err != nil {
			return EvalResult{}, fmt.Errorf("eval: windows %d-%d: %w", b, b+len(batch)-1, err)
		}
		losses, err := tensors.CopyFlatData[float32](out[0])
		out[0].FinalizeAll()
		if err != nil {
			return EvalResult{}, fmt.Errorf("eval: read losses: %w", err)
		}
		if len(losses) != e.rows*e.seq {
			return EvalResult{}, fmt.Errorf("eval: loss graph returned %d values, want %d (shape [%d,%d])", len(losses), e.rows*e.seq, e.rows, e.seq)
		}
		for r, win := range batch {
			for i := win.from; i < e.seq; i++ {
				l := float64(losses[r*e.seq+i])
				if math.IsNaN(l) || math.IsInf(l, 0) {
					return EvalResult{}, fmt.Errorf("eval: non-finite loss %v at validation token %d", l, win.start+i+1)
				}
				lossSum += l
				if sidecar != nil {
					res.Bytes += int64(sidecar[win.start+i+1])
				} else {
					res.Bytes += int64(bytes.TokenBytes(int(tokens[win.start+i]), int(tokens[win.start+i+1])))
				}
			}
			res.Tokens += int64(e.seq - win.from)
		}
		res.Windows += len(batch)
		meter.Add(int64(len(batch)))
	}
	if res.Bytes <= 0 {
		return EvalResult{}, fmt.Errorf("eval: the %d scored tokens stand for 0 bytes: wrong byte table?", res.Tokens)
	}
	res.ValLoss, res.ValBPB = bitsPerByte(lossSum, res.Tokens, res.Bytes)
	res.Duration = time.Since(start)
	return res, nil
}

// bitsPerByte turns a total loss in nats over tokens targets standing for
// bytes bytes into the challenge's two metrics:
//
//	val_loss = lossSum / tokens
//	val_bpb  = val_loss / ln 2 * tokens / bytes  (= lossSum / (bytes * ln 2))
func bitsPerByte(lossSum float64, tokens, bytes int64) (valLoss, valBPB float64) {
	valLoss = lossSum / float64(tokens)
	valBPB = valLoss / math.Ln2 * float64(tokens) / float64(bytes)
	return valLoss, valBPB
}

// checkTokens reports a token id outside the vocabulary, which would index
// past the embedding table.
func checkTokens(tokens []uint16, vocab int) error {
	for i, t := range tokens {
		if int(t) >= vocab {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	return nil
}

// recoverGraphPanic turns a panic raised while building or running a graph
// (gomlx reports shape errors by panicking) into an error, so that none
// crosses the package boundary.
func recoverGraphPanic(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %v", op, r)
	}
}
