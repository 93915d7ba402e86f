package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// toyNetwork is a tiny bigram language model standing in for the GPT in the
// trainer's own tests: every parameter class and both optimizers appear,
// without the cost (or the dependency) of the real model.
//
//	h      = onehot(x) @ emb * gain        [B, T, D]
//	logits = (h @ mix) @ emb^T             [B, T, V]
//	loss   = logsumexp(logits) - logits[target]
//
// emb is Adam with the embedding rate, mix is Muon, gain is Adam with the
// scalar rate.
func toyNetwork(vocab, dim int, opt OptimizerConfig) network {
	params := []paramSpec{
		{"tok_emb", []int{vocab, dim}, paramRule{kind: adamUpdate, lr: opt.EmbedLR, wd: opt.EmbedWeightDecay}},
		{"block_0/mix", []int{dim, dim}, paramRule{kind: muonUpdate, lr: opt.MatrixLR, wd: opt.MuonWeightDecay}},
		{"block_0/gain", []int{dim}, paramRule{kind: adamUpdate, lr: opt.ScalarLR, wd: opt.ScalarWeightDecay}},
	}
	n := network{vocab: vocab, params: params}
	get := func(ctx *mlctx.Context, name string) *mlctx.Variable {
		scope, base := mlctx.SplitScope(mlctx.RootScope + name)
		return ctx.GetVariableByScopeAndName(scope, base)
	}
	n.lossFn = func(ctx *mlctx.Context, inputs, targets *Node) *Node {
		g := inputs.Graph()
		emb := get(ctx, "tok_emb").ValueGraph(g)
		mix := get(ctx, "block_0/mix").ValueGraph(g)
		gain := get(ctx, "block_0/gain").ValueGraph(g)
		x := OneHot(inputs, vocab, dtypes.Float32)
		h := Mul(DotGeneral(x, []int{2}, nil, emb, []int{0}, nil), Reshape(gain, 1, 1, dim))
		h = DotGeneral(h, []int{2}, nil, mix, []int{0}, nil)
		logits := DotGeneral(h, []int{2}, nil, emb, []int{1}, nil)
		m := StopGradient(ReduceMax(logits, -1))
		lse := Add(Log(ReduceSum(Exp(Sub(logits, ExpandAxes(m, -1))), -1)), m)
		picked := ReduceSum(Mul(logits, OneHot(targets, vocab, dtypes.Float32)), -1)
		return Sub(lse, picked)
	}
	n.init = func(_ backends.Backend, ctx *mlctx.Context, seed int64) error {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		for _, p := range params {
			size := 1
			for _, d := range p.shape {
				size *= d
			}
			data := make([]float32, size)
			for i := range data {
				if p.name == "block_0/gain" {
					data[i] = 1
				} else {
					data[i] = float32(rng.NormFloat64() * 0.3)
				}
			}
			scope, base := mlctx.SplitScope(mlctx.RootScope + p.name)
			ctx.InAbsPath(scope).VariableWithValue(base, tensors.FromFlatDataAndDimensions(data, p.shape...))
		}
		return nil
	}
	n.weights = func(ctx *mlctx.Context) (model.Weights, error) {
		var w model.Weights
		for _, p := range params {
			w = append(w, tensorFromVariable(p.name, get(ctx, p.name)))
		}
		return w, nil
	}
	n.load = func(ctx *mlctx.Context, w model.Weights) error {
		if len(w) != len(params) {
			return fmt.Errorf("toy: %d tensors, want %d", len(w), len(params))
		}
		for i, p := range params {
			v := get(ctx, p.name)
			if v == nil {
				scope, base := mlctx.SplitScope(mlctx.RootScope + p.name)
				v = ctx.InAbsPath(scope).Checked(false).VariableWithShape(base, shapes.Make(dtypes.Float32, p.shape...))
			}
			if err := setVariable(v, w[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return n
}

// toyStream is a deterministic token stream with learnable structure: each
// token mostly follows from the one before it.
func toyStream(n, vocab int, seed uint64) []uint16 {
	rng := rand.New(rand.NewPCG(seed, 11))
	s := make([]uint16, n)
	for i := 1; i < n; i++ {
		if rng.IntN(8) == 0 {
			s[i] = uint16(rng.IntN(vocab))
		} else {
			s[i] = uint16((int(s[i-1])*3 + 1) % vocab)
		}
	}
	return s
}

// batchAt cuts rows consecutive sequences of seqLen from s at offset.
func batchAt(s []uint16, offset, rows, seqLen int) Batch {
	b := Batch{Rows: rows, SeqLen: seqLen, Inputs: make([]int32, rows*seqLen), Targets: make([]int32, rows*seqLen)}
	for i := range rows * seqLen {
		b.Inputs[i] = int32(s[offset+i])
		b.Targets[i] = int32(s[offset+i+1])
	}
	return b
}
