package model

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

func tensorsScalar(v float32) *tensors.Tensor { return tensors.FromValue(v) }

// InputGrams runs the forward pass on inputs [B, T] and returns, for every
// Matrix parameter, the Gram matrix XᵀX [in, in] of the activations X
// [B*T, in] that the weight multiplies, summed over the batch; and for
// "tok_emb", the Gram of the final normalised hidden states (the tied
// embedding is also the output head). These are GPTQ's Hessians (up to a
// factor 2): accumulate them over calibration batches on the host, in
// float64. c_q, c_k and c_v read the same input, so they share one node.
func InputGrams(ctx *mlctx.Context, cfg Config, inputs *Node) map[string]*Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := newForward(ctx, cfg, inputs)
	f.grams, f.gramOf = map[string]*Node{}, map[*Node]*Node{}
	x := f.hidden()
	f.grams["tok_emb"] = gram(x)
	return f.grams
}

// recordGram stores the Gram matrix of x as the input statistics of the
// named weight, reusing the node of an earlier weight with the same input.
func (f *forward) recordGram(name string, x *Node) {
	g, ok := f.gramOf[x]
	if !ok {
		g = gram(x)
		f.gramOf[x] = g
	}
	f.grams[name] = g
}

// gram returns xᵀx for x [N, in], contracting the token axis.
func gram(x *Node) *Node {
	return graph.DotGeneral(x, []int{0}, nil, x, []int{0}, nil)
}
