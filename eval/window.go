package eval

import (
	"context"
	"fmt"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/paramgolf/golf/internal/progress"
)

// window is one model input: tokens[start : start+seqLen] predict
// tokens[start+1 : start+seqLen+1]; only row positions >= from are scored.
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

// windowMode scores fixed windows: non-overlapping, sliding, optionally
// document-isolated, optionally tilted.
type windowMode struct {
	e      *Evaluator
	opts   Options
	timing *Result
}

func (m *windowMode) Score(ctx context.Context, tokens []uint16, rec Recorder) (err error) {
	defer recoverGraphPanic("eval", &err)
	opts := m.opts
	hints, err := hintsFor(tokens, opts, m.timing)
	if err != nil {
		return err
	}
	t0 := time.Now()
	defer func() { m.timing.addPhase("score", time.Since(t0)) }()
	seq := opts.SeqLen
	ws, err := planWindows(len(tokens)-1, seq, opts.stride())
	if err != nil {
		return err
	}
	rows := min(opts.rows(), len(ws))
	probing := false
	for p := 1; p < len(tokens) && !probing; p++ {
		probing = rec.Probe(p)
	}
	kind := scoreKind{isolated: opts.DocIsolated, hints: hints != nil, probe: probing}
	exec, err := m.e.scoreExec(kind)
	if err != nil {
		return err
	}
	vocab := m.e.cfg.VocabSize
	bos := opts.bos()
	inputs := make([]int32, rows*seq)
	targets := make([]int32, rows*seq)
	var segs, hint []int32
	if kind.isolated {
		segs = make([]int32, rows*seq)
	}
	if kind.hints {
		hint = make([]int32, rows*seq)
	}
	probe := make([]int32, rows)
	probed := make([]int, rows) // stream position probed in each row, or 0
	meter := progress.New(opts.Progress, "eval", "windows", int64(len(ws)))
	for b := 0; b < len(ws); b += rows {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		batch := ws[b:min(b+rows, len(ws))]
		clear(inputs)
		clear(targets)
		clear(hint)
		clear(probe)
		clear(probed)
		for r, win := range batch {
			for i := range seq {
				inputs[r*seq+i] = int32(tokens[win.start+i])
				targets[r*seq+i] = int32(tokens[win.start+i+1])
				if hint != nil {
					hint[r*seq+i] = int32(hints.Tok[win.start+i+1])
				}
			}
			if segs != nil {
				segmentIDs(segs[r*seq:(r+1)*seq], tokens, win.start, bos)
			}
			if probing {
				for i := win.from; i < seq; i++ {
					if pos := win.start + i + 1; rec.Probe(pos) {
						if probed[r] != 0 {
							return fmt.Errorf("eval: probed positions %d and %d fall in one window; probe positions at least %d apart", probed[r], pos, seq)
						}
						probe[r], probed[r] = int32(i), pos
					}
				}
			}
		}
		args := []any{tensors.FromFlatDataAndDimensions(inputs, rows, seq), tensors.FromFlatDataAndDimensions(targets, rows, seq)}
		if segs != nil {
			args = append(args, tensors.FromFlatDataAndDimensions(segs, rows, seq))
		}
		if hint != nil {
			args = append(args, tensors.FromFlatDataAndDimensions(hint, rows, seq))
		}
		if probing {
			args = append(args, tensors.FromFlatDataAndDimensions(probe, rows))
		}
		outs, err := exec.Exec(args...)
		if err != nil {
			return fmt.Errorf("eval: windows %d-%d: %w", b, b+len(batch)-1, err)
		}
		got, err := readOutputs(outs, rows*seq, kind, rows*vocab)
		if err != nil {
			return err
		}
		for r, win := range batch {
			for i := win.from; i < seq; i++ {
				pos := win.start + i + 1
				at := r*seq + i
				nats := float64(got.nats[at])
				var hn float64
				gated := hints != nil && hints.Gate[pos]
				if gated {
					hn = float64(got.hintNats[at])
					nats = tiltNats(nats, hn, tokens[pos] == hints.Tok[pos], hints.Boost)
				}
				rec.Score(pos, nats)
				if probed[r] == pos {
					logp := float64s(got.probe[r*vocab : (r+1)*vocab])
					if gated {
						tiltDistribution(logp, int(hints.Tok[pos]), hn, hints.Boost)
					}
					rec.Distribution(pos, logp)
				}
			}
		}
		m.timing.Windows += len(batch)
		meter.Add(int64(len(batch)))
	}
	return nil
}

// outputs are a scoring graph's results on the host.
type outputs struct {
	nats, hintNats, probe []float32
}

// readOutputs copies a scoring graph's results to the host and frees them.
func readOutputs(outs []*tensors.Tensor, n int, k scoreKind, probeLen int) (o outputs, err error) {
	defer func() {
		for _, t := range outs {
			t.FinalizeAll()
		}
	}()
	read := func(i, want int) ([]float32, error) {
		if i >= len(outs) {
			return nil, fmt.Errorf("eval: scoring graph returned %d outputs, want %d", len(outs), i+1)
		}
		v, err := tensors.CopyFlatData[float32](outs[i])
		if err != nil {
			return nil, fmt.Errorf("eval: read losses: %w", err)
		}
		if len(v) != want {
			return nil, fmt.Errorf("eval: scoring graph output %d has %d values, want %d", i, len(v), want)
		}
		return v, nil
	}
	if o.nats, err = read(0, n); err != nil {
		return o, err
	}
	i := 1
	if k.hints {
		if o.hintNats, err = read(i, n); err != nil {
			return o, err
		}
		i++
	}
	if k.probe {
		if o.probe, err = read(i, probeLen); err != nil {
			return o, err
		}
	}
	return o, nil
}

func float64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
