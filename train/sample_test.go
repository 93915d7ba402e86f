package train

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// greedyReference decodes greedily with a graph of the exact context
// length at every step (no padding, no window reuse).
func greedyReference(t *testing.T, cfg model.Config, w model.Weights, prompt []int, n int) []int {
	t.Helper()
	seq := append([]int(nil), prompt...)
	var out []int
	for range n {
		mc := mlctx.New()
		if err := model.LoadWeights(mc, cfg, w); err != nil {
			t.Fatal(err)
		}
		in := make([]int32, len(seq))
		for i, x := range seq {
			in[i] = int32(x)
		}
		res, err := mlctx.ExecOnce(goBackend(t), mc, func(ctx *mlctx.Context, x *graph.Node) *graph.Node {
			return model.Logits(ctx, cfg, x, model.Options{})
		}, tensors.FromFlatDataAndDimensions(in, 1, len(in)))
		if err != nil {
			t.Fatal(err)
		}
		all := tensors.MustCopyFlatData[float32](res)
		last := all[(len(seq)-1)*cfg.VocabSize:]
		best := 0
		for i, z := range last {
			if z > last[best] {
				best = i
			}
		}
		seq, out = append(seq, best), append(out, best)
	}
	return out
}

// Greedy sampling (temperature 0) is the argmax of the model's logits at
// every step, as a graph of the exact length computes them: the padded
// window changes nothing. Seeded sampling repeats with its seed.
func TestSample(t *testing.T) {
	cfg := smallModel(t)
	cfg.VocabSize = 64
	w, err := model.InitWeights(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Random weights everywhere (the init zeroes the output projections,
	// which would make every position's logits alike).
	for i := range w {
		for j := range w[i].Data {
			w[i].Data[j] += float32((j*7919+i*104729)%1000-500) * 2e-4
		}
	}
	prompt := []int{1, 17, 5, 40}
	ctx := context.Background()
	got, err := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if want := greedyReference(t, cfg, w, prompt, 6); !slices.Equal(got, want) {
		t.Fatalf("greedy %v, exact-length argmax %v", got, want)
	}
	// A window shorter than the sequence slides: still the model's argmax
	// over the last Window tokens.
	short, err := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 3, Window: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := greedyReference(t, cfg, w, prompt[len(prompt)-2:], 1); short[0] != want[0] {
		t.Fatalf("window 2: first token %d, the argmax over the last 2 tokens %d", short[0], want[0])
	}
	a, _ := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 12, Temperature: 1.5, Seed: 9})
	b, _ := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 12, Temperature: 1.5, Seed: 9})
	c, _ := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 12, Temperature: 1.5, Seed: 10})
	if !slices.Equal(a, b) || slices.Equal(a, c) || len(a) != 12 {
		t.Fatalf("seed 9 twice: %v, %v; seed 10: %v", a, b, c)
	}
	k := len(got) - 1 // the first place a token appears that was not drawn before
	for i := range got {
		if !slices.Contains(got[:i], got[i]) && i > 0 {
			k = i
			break
		}
	}
	stop, _ := Sample(ctx, goBackend(t), cfg, w, prompt, SampleOptions{Tokens: 6, Stop: []int{got[k]}})
	if !slices.Equal(stop, got[:slices.Index(got, got[k])+1]) {
		t.Fatalf("stop at %d: %v, greedy %v", got[k], stop, got)
	}
	for _, bad := range []struct {
		prompt []int
		opts   SampleOptions
		want   string
	}{
		{nil, SampleOptions{Tokens: 1}, "empty prompt"},
		{[]int{1, 64}, SampleOptions{Tokens: 1}, "outside the vocabulary"},
		{prompt, SampleOptions{}, "tokens to generate"},
		{prompt, SampleOptions{Tokens: 1, Temperature: -1}, "temperature"},
	} {
		if _, err := Sample(ctx, goBackend(t), cfg, w, bad.prompt, bad.opts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %+v: %v, want %q", bad.prompt, bad.opts, err, bad.want)
		}
	}
}

// pick: argmax at temperature 0; draws follow softmax(z/t).
func TestPickFollowsTheSoftmax(t *testing.T) {
	logits := []float32{0, 1, 2, 2}
	if got := pick(logits, 0, make([]float64, 4), nil); got != 2 {
		t.Fatalf("argmax with a tie: %d, want the lowest id 2", got)
	}
	rng := newTestRand()
	counts := make([]int, 4)
	const n = 40000
	for range n {
		counts[pick(logits, 1, make([]float64, 4), rng)]++
	}
	// softmax(0,1,2,2) = e^z / (1 + e + 2e^2)
	z := 1 + 2.718281828 + 2*7.389056099
	for i, want := range []float64{1 / z, 2.718281828 / z, 7.389056099 / z, 7.389056099 / z} {
		if got := float64(counts[i]) / n; got < want-0.01 || got > want+0.01 {
			t.Errorf("token %d drawn %.4f of the time, softmax %.4f", i, got, want)
		}
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
