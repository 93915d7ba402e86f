package quant

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/model"
)

// TokenSource yields calibration tokens: rows of training sequences.
type TokenSource interface {
	// NextTokens returns the next rows x seqLen tokens, row after row.
	NextTokens(rows, seqLen int) ([]int32, error)
}

// LoaderSource reads calibration tokens from a data.Loader over training
// shards (the loader's inputs: each row is seqLen consecutive tokens).
type LoaderSource struct{ Loader *data.Loader }

// NextTokens implements TokenSource.
func (s LoaderSource) NextTokens(rows, seqLen int) ([]int32, error) {
	in, _, err := s.Loader.Next(rows*seqLen, seqLen, 1)
	return in, err
}

// sliceSource hands out a fixed token slice in order.
type sliceSource struct{ tokens []int32 }

func (s *sliceSource) NextTokens(rows, seqLen int) ([]int32, error) {
	n := min(rows*seqLen, len(s.tokens)/seqLen*seqLen)
	if n == 0 {
		return nil, io.EOF
	}
	out := s.tokens[:n]
	s.tokens = s.tokens[n:]
	return out, nil
}

// CalibrateOptions says how much calibration data to read, and by when.
type CalibrateOptions struct {
	SeqLen    int // tokens per row (the model's training sequence length)
	BatchRows int // rows per graph call (0: about 8,192 tokens)
	MaxTokens int // stop after this many tokens (0: until the source or the deadline ends)
	// Deadline, when set, is the end of the training budget: no batch
	// starts unless the previous batch's duration says it ends before the
	// deadline (the first batch always runs, after the graph is compiled).
	Deadline time.Time
	Progress io.Writer // a line per batch (nil: none)
}

// CalibrationReport says what Calibrate read and how long it took.
type CalibrationReport struct {
	Tokens  int     `json:"tokens"`
	Batches int     `json:"batches"`
	Seconds float64 `json:"seconds"` // compile + forward passes + accumulation
	// InsideBudget is true when calibration ended by the deadline (always
	// true without one); StoppedEarly when the deadline, not MaxTokens or
	// the source, ended it.
	InsideBudget bool `json:"inside_budget"`
	StoppedEarly bool `json:"stopped_early"`
	// SecondsLeft is the time from the end of calibration to the deadline
	// (negative: over budget; 0 without a deadline).
	SecondsLeft float64 `json:"seconds_left"`
}

// Calibrate runs the model with weights w (e.g. the EMA weights at the end
// of training) over calibration tokens from src and returns GPTQ's
// Hessians: for every Attention and MLP matrix (and the output head:
// tok_emb when tied) the Gram matrix XᵀX of the activations it multiplies,
// summed over every calibration token (model.InputGrams), accumulated on
// the host in float64, with Count the tokens seen. The challenge accepts
// calibration on training data inside the training budget (or on text the
// model generates itself), never on validation data: give a source over
// the training shards and, for a run under a wall-clock cap, the cap's end
// as the deadline.
func Calibrate(ctx context.Context, backend backends.Backend, cfg model.Config, w model.Weights, src TokenSource, o CalibrateOptions) (hs map[string]*Hessian, rep *CalibrationReport, err error) {
	start := time.Now()
	if o.SeqLen <= 0 {
		return nil, nil, fmt.Errorf("calibration: sequence length %d must be positive", o.SeqLen)
	}
	if o.BatchRows <= 0 {
		o.BatchRows = max(8192/o.SeqLen, 1)
	}
	mc := mlctx.New()
	if err := model.LoadWeights(mc, cfg, w); err != nil {
		return nil, nil, fmt.Errorf("calibration: %w", err)
	}
	defer func() {
		// Graph building reports errors by panicking; turn them into errors.
		if r := recover(); r != nil {
			hs, rep, err = nil, nil, fmt.Errorf("calibration: %v", r)
		}
	}()
	var names []string // the parameters with a Gram, in Params order
	exec, err := mlctx.NewExec(backend, mc.Reuse(), func(ctx *mlctx.Context, in *graph.Node) []*graph.Node {
		grams := model.InputGrams(ctx, cfg, in, model.Options{})
		names = names[:0]
		var out []*graph.Node
		for _, p := range cfg.Params() {
			if g, ok := grams[p.Name]; ok {
				names = append(names, p.Name)
				out = append(out, g)
			}
		}
		return out
	})
	if err != nil {
		return nil, nil, fmt.Errorf("calibration: %w", err)
	}
	defer exec.Finalize()
	hs = map[string]*Hessian{}
	rep = &CalibrationReport{}
	var last time.Duration
	for o.MaxTokens <= 0 || rep.Tokens < o.MaxTokens {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if !o.Deadline.IsZero() && rep.Batches > 0 && time.Now().Add(last).After(o.Deadline) {
			rep.StoppedEarly = true
			break
		}
		rows := o.BatchRows
		if o.MaxTokens > 0 {
			rows = min(rows, max((o.MaxTokens-rep.Tokens)/o.SeqLen, 1))
		}
		t0 := time.Now()
		batch, err := src.NextTokens(rows, o.SeqLen)
		if err == io.EOF && rep.Batches > 0 {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("calibration data: %w", err)
		}
		n := len(batch) / o.SeqLen
		if n == 0 || len(batch)%o.SeqLen != 0 {
			return nil, nil, fmt.Errorf("calibration data: %d tokens are not whole rows of %d", len(batch), o.SeqLen)
		}
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(batch, n, o.SeqLen))
		if err != nil {
			return nil, nil, fmt.Errorf("calibration: %w", err)
		}
		for i, name := range names {
			g := tensors.MustCopyFlatData[float32](out[i])
			h := hs[name]
			if h == nil {
				h = NewHessian(out[i].Shape().Dimensions[0])
				hs[name] = h
			}
			for j, v := range g {
				h.Sum[j] += float64(v)
			}
			h.Count += n * o.SeqLen
		}
		rep.Tokens += n * o.SeqLen
		rep.Batches++
		last = time.Since(t0)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "calibration: batch %d, %d tokens, %.1fs\n", rep.Batches, rep.Tokens, time.Since(start).Seconds())
		}
	}
	end := time.Now()
	rep.Seconds = end.Sub(start).Seconds()
	rep.InsideBudget = o.Deadline.IsZero() || !end.After(o.Deadline)
	if !o.Deadline.IsZero() {
		rep.SecondsLeft = o.Deadline.Sub(end).Seconds()
	}
	return hs, rep, nil
}

// CollectHessians is Calibrate over a fixed token slice: whole sequences of
// seqLen ids, row after row, batchRows sequences per graph call, every one
// of them used.
func CollectHessians(ctx context.Context, backend backends.Backend, cfg model.Config, w model.Weights,
	tokens []int32, seqLen, batchRows int) (map[string]*Hessian, error) {
	if seqLen <= 0 || len(tokens) == 0 || len(tokens)%seqLen != 0 {
		return nil, fmt.Errorf("calibration: %d tokens are not whole sequences of %d", len(tokens), seqLen)
	}
	hs, _, err := Calibrate(ctx, backend, cfg, w, &sliceSource{tokens}, CalibrateOptions{SeqLen: seqLen, BatchRows: batchRows})
	return hs, err
}

// HessianTensors converts Hessians into float32 tensors named after their
// matrices, the form HessiansFromTensors reads back (e.g. to save them with
// train.WriteTensors and reuse them with --hessians).
func HessianTensors(hs map[string]*Hessian, order []string) []model.Tensor {
	var ts []model.Tensor
	for _, name := range order {
		h, ok := hs[name]
		if !ok {
			continue
		}
		d := make([]float32, len(h.Sum))
		for i, v := range h.Sum {
			d[i] = float32(v)
		}
		ts = append(ts, model.Tensor{Name: name, Shape: []int{h.In, h.In}, Data: d})
	}
	return ts
}
