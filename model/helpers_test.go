package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/compute"
)

var testBackend backends.Backend

func backend(t testing.TB) backends.Backend {
	t.Helper()
	if testBackend == nil {
		b, _, err := compute.Open("go")
		if err != nil {
			t.Fatal(err)
		}
		testBackend = b
	}
	return testBackend
}

// microConfig is a model small enough for exhaustive gradient checks but with
// every feature of the baseline: GQA (2 query heads per KV head), U-Net skips
// over an odd number of blocks, RoPE, softcap.
func microConfig() Config {
	return Config{
		Name: "micro", VocabSize: 40, NumLayers: 3, ModelDim: 16, NumHeads: 4, NumKVHeads: 2,
		MLPHidden: 24, SeqLen: 8, RopeBase: 10000, LogitSoftcap: 30, EmbedInitStd: 0.5, QKGainInit: 1.5,
	}
}

// randomWeights returns weights with every parameter random (no zero
// projections), so every gradient path carries signal.
func randomWeights(cfg Config, seed uint64) Weights {
	rng := rand.New(rand.NewPCG(seed, 7))
	var w Weights
	for _, p := range cfg.Params() {
		t := Tensor{Name: p.Name, Shape: p.Shape, Data: make([]float32, p.NumElements())}
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * 0.4)
			if p.Class == Control {
				t.Data[i] += 1
			}
		}
		w = append(w, t)
	}
	return w
}

func randomTokens(n, vocab int, seed uint64) []int32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(rng.IntN(vocab))
	}
	return out
}

// lossAndGrads evaluates the mean token loss of cfg with weights w on a batch
// and its gradient with respect to every parameter (in Params order).
func lossAndGrads(t testing.TB, cfg Config, w Weights, in, tg []int32, b, seq int) (float64, [][]float32) {
	t.Helper()
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	exec, err := mlctx.NewExec(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) []*graph.Node {
		loss := graph.ReduceAllMean(TokenLosses(ctx, cfg, in, tg, Options{}))
		var vars []*graph.Node
		for _, p := range cfg.Params() {
			vars = append(vars, variable(ctx, p.Name).ValueGraph(in.Graph()))
		}
		return append([]*graph.Node{loss}, graph.Gradient(loss, vars...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq))
	if err != nil {
		t.Fatal(err)
	}
	var grads [][]float32
	for _, o := range out[1:] {
		grads = append(grads, tensors.MustCopyFlatData[float32](o))
	}
	return float64(tensors.MustCopyFlatData[float32](out[0])[0]), grads
}

// tokenLosses evaluates per-token losses [b*seq] of cfg with weights w.
func tokenLosses(t testing.TB, cfg Config, w Weights, in, tg []int32, b, seq int) []float32 {
	t.Helper()
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	return tokenLossesCtx(t, ctx, cfg, in, tg, b, seq)
}

// tokenLossesCtx evaluates per-token losses with the variables of ctx.
func tokenLossesCtx(t testing.TB, ctx *mlctx.Context, cfg Config, in, tg []int32, b, seq int) []float32 {
	t.Helper()
	out, err := mlctx.ExecOnce(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) *graph.Node {
		return TokenLosses(ctx, cfg, in, tg, Options{})
	}, tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out)
}

// relDiff is max|a-b| / max(max|b|, tiny).
func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(float64(a[i]-b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	return num / math.Max(den, 1e-12)
}

// execN compiles and runs a graph function with several outputs once.
func execN(t testing.TB, fn any, args ...any) ([]*tensors.Tensor, error) {
	t.Helper()
	e, err := graph.NewExecAny(backend(t), fn)
	if err != nil {
		return nil, err
	}
	defer e.Finalize()
	return e.Exec(args...)
}
