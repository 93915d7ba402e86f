package model

import "github.com/gomlx/gomlx/pkg/core/graph"

// block is physical transformer block i: its attention and MLP, and its own
// attn_scale, mlp_scale [D] (ones) and resid_mix [2, D] (rows 1 and 0),
// class Control.
type block struct {
	c Config
	i int
}

func (m block) params() []ParamSpec {
	c, s := m.c, BlockScope(m.i)+"/"
	d := c.ModelDim
	ps := append(attention{c, m.i}.params(), mlp{c, m.i}.params()...)
	return append(ps,
		ParamSpec{s + "attn_scale", []int{d}, Control, Const(1)},
		ParamSpec{s + "mlp_scale", []int{d}, Control, Const(1)},
		ParamSpec{s + "resid_mix", []int{2, d}, Control, Rows(1, 0)},
	)
}

// mixInput is the block's residual input, resid_mix[0] ⊙ x + resid_mix[1] ⊙ x0.
func (f *forward) mixInput(i int, x, x0 *Node) *Node {
	mix := f.param(BlockScope(i) + "/resid_mix")
	return graph.Add(graph.Mul(channels(row(mix, 0)), x), graph.Mul(channels(row(mix, 1)), x0))
}

// normalised is rmsnorm(x) times the layer's LN scale 1/sqrt(i+1) (when
// Config.LNScale), the input of its attention and MLP.
func (f *forward) normalised(i int, x *Node) *Node {
	n := rmsNorm(x)
	if s := f.cfg.LNScaleFactor(i); s != 1 {
		n = graph.MulScalar(n, s)
	}
	return n
}

// block is one sequential transformer block at virtual position slot (the
// reference's Block.forward):
//
//	x = resid_mix[0] ⊙ x + resid_mix[1] ⊙ x0
//	x = x + attn_scale ⊙ attn(s_i · rmsnorm(x))
//	x = x + mlp_scale ⊙ mlp(s_i · rmsnorm(x))
func (f *forward) block(i, slot int, x, x0 *Node) *Node {
	p := func(name string) *Node { return channels(f.param(BlockScope(i) + "/" + name)) }
	x = f.mixInput(i, x, x0)
	x = graph.Add(x, graph.Mul(p("attn_scale"), f.attention(i, slot, f.normalised(i, x))))
	return graph.Add(x, graph.Mul(p("mlp_scale"), f.mlp(i, slot, f.normalised(i, x))))
}
