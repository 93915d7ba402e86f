package model

import "github.com/gomlx/gomlx/pkg/core/graph"

// mlp is physical layer i's MLP: fc [H, D] (uniform or orthogonal,
// MatrixInit) and proj [D, H] (zero), class MLP.
type mlp struct {
	c Config
	i int
}

func (m mlp) params() []ParamSpec {
	c, s := m.c, BlockScope(m.i)+"/mlp/"
	return []ParamSpec{
		{s + "fc", []int{c.MLPHidden, c.ModelDim}, MLP, c.inputMatrixInit()},
		{s + "proj", []int{c.ModelDim, c.MLPHidden}, MLP, Zeros()},
	}
}

// mlp returns proj(φ(fc(n))) (+ adapter MLP on n) for the normalised input
// n [B*T, D], with φ the configured activation:
//
//	relu2:        φ(u) = max(u, 0)²
//	leaky_relu2:  φ(u) = (max(u, 0) + slope·min(u, 0))²
func (f *forward) mlp(i, slot int, n *Node) *Node {
	s := BlockScope(i) + "/mlp/"
	h := f.linearNamed(n, s+"fc")
	zero := graph.ScalarZero(f.g, h.DType())
	if f.cfg.Activation == "leaky_relu2" {
		h = graph.Add(graph.Max(h, zero), graph.MulScalar(graph.Min(h, zero), f.cfg.LeakySlope))
	} else {
		h = graph.Max(h, zero)
	}
	out := f.linearNamed(graph.Mul(h, h), s+"proj")
	return f.addAdapted(out, AdaptMLP, slot, n)
}
