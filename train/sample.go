package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// SampleOptions configure Sample.
type SampleOptions struct {
	// Tokens is the number of tokens to generate (at least 1).
	Tokens int
	// Temperature divides the logits before the softmax; 0 is greedy
	// decoding (the most likely token, the lowest id on a tie).
	Temperature float64
	// Seed fixes the random draws: the same seed, weights and prompt give
	// the same text.
	Seed uint64
	// Window is the most context tokens the model sees (0: the model's
	// SeqLen); older tokens slide out of it.
	Window int
	// Stop lists tokens that end generation once drawn (kept in the
	// output): the BOS id, for one, starts a new document.
	Stop []int
}

// Sample continues prompt (token ids, usually BOS then the encoded text)
// with up to opts.Tokens tokens drawn from the model's next-token
// distribution, softmax(model.Logits / Temperature), and returns the new
// tokens. One graph of [1, window] is compiled: the context sits at the
// window's start, padded after it, which the causal attention ignores.
func Sample(ctx context.Context, backend backends.Backend, cfg model.Config, weights model.Weights, prompt []int, opts SampleOptions) (out []int, err error) {
	defer recoverGraphPanic("sample", &err)
	switch {
	case len(prompt) == 0:
		return nil, fmt.Errorf("sample: empty prompt (start it with the BOS id)")
	case opts.Tokens < 1:
		return nil, fmt.Errorf("sample: %d tokens to generate, want at least 1", opts.Tokens)
	case opts.Temperature < 0 || math.IsNaN(opts.Temperature) || math.IsInf(opts.Temperature, 0):
		return nil, fmt.Errorf("sample: temperature %v, want a finite value >= 0", opts.Temperature)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	for i, t := range prompt {
		if t < 0 || t >= cfg.VocabSize {
			return nil, fmt.Errorf("sample: prompt token %d is %d, outside the vocabulary of %d", i, t, cfg.VocabSize)
		}
	}
	window := opts.Window
	if window <= 0 {
		window = cfg.SeqLen
	}
	window = min(window, len(prompt)+opts.Tokens-1)
	cfg = forBackend(backend, cfg)
	mc := mlctx.New()
	if err := model.LoadWeights(mc, cfg, weights); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	exec, err := mlctx.NewExec(backend, mc.Reuse(), func(ctx *mlctx.Context, inputs *graph.Node) *graph.Node {
		return model.Logits(ctx, cfg, inputs, model.Options{})
	})
	if err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	defer exec.Finalize()
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5a3b1e))
	seq := append([]int(nil), prompt...)
	in := make([]int32, window)
	probs := make([]float64, cfg.VocabSize)
	for range opts.Tokens {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		visible := seq[max(0, len(seq)-window):]
		clear(in)
		for i, t := range visible {
			in[i] = int32(t)
		}
		res, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, 1, window))
		if err != nil {
			return out, fmt.Errorf("sample: %w", err)
		}
		all, err := tensors.CopyFlatData[float32](res[0])
		res[0].FinalizeAll()
		if err != nil {
			return out, fmt.Errorf("sample: %w", err)
		}
		logits := all[(len(visible)-1)*cfg.VocabSize : len(visible)*cfg.VocabSize]
		next := pick(logits, opts.Temperature, probs, rng)
		seq = append(seq, next)
		out = append(out, next)
		if slices.Contains(opts.Stop, next) {
			break
		}
	}
	return out, nil
}

// pick draws the next token from logits at temperature t (0: argmax).
func pick(logits []float32, t float64, probs []float64, rng *rand.Rand) int {
	best := 0
	for i, z := range logits {
		if z > logits[best] {
			best = i
		}
	}
	if t == 0 {
		return best
	}
	zmax := float64(logits[best])
	var sum float64
	for i, z := range logits {
		probs[i] = math.Exp((float64(z) - zmax) / t)
		sum += probs[i]
	}
	u := rng.Float64() * sum
	for i, p := range probs {
		if u -= p; u < 0 {
			return i
		}
	}
	return best
}
