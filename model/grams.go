package model

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

func tensorsScalar(v float32) *tensors.Tensor { return tensors.FromValue(v) }

// InputGrams runs the forward pass on inputs [B, T] and returns, for every
// Attention and MLP matrix, the Gram matrix XᵀX [in, in] of the activations
// X [B*T, in] that the weight multiplies, summed over the batch and over
// every pass of a looped layer; and for the output head (tok_emb when tied,
// else lm_head) the Gram of the final normalised hidden states. These are
// GPTQ's Hessians (up to a factor 2): accumulate them over calibration
// batches on the host, in float64. c_q, c_k and c_v read the same input, so
// they share one node per pass.
func InputGrams(ctx *mlctx.Context, cfg Config, inputs *Node, opts Options) map[string]*Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := newForward(ctx, cfg, inputs, opts)
	f.grams, f.gramOf = map[string]*Node{}, map[*Node]*Node{}
	f.logits(f.hidden())
	for _, p := range cfg.Params() {
		if _, ok := f.grams[p.Name]; ok && !p.Class.IsMatrix() && p.Name != cfg.headWeight() {
			delete(f.grams, p.Name)
		}
	}
	return f.grams
}

// recordGram adds the Gram matrix of x to the input statistics of the named
// weight, reusing the node of an earlier weight with the same input.
func (f *forward) recordGram(name string, x *Node) {
	g, ok := f.gramOf[x]
	if !ok {
		g = gram(x)
		f.gramOf[x] = g
	}
	if prev, ok := f.grams[name]; ok {
		g = graph.Add(prev, g)
	}
	f.grams[name] = g
}

// gram returns xᵀx for x [N, in], contracting the token axis.
func gram(x *Node) *Node {
	return graph.DotGeneral(x, []int{0}, nil, x, []int{0}, nil)
}
