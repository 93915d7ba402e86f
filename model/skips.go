package model

import "github.com/gomlx/gomlx/pkg/core/graph"

// skips are the U-Net's skip connections: skip_weights [NumSkips, D]
// (ones) and, with SkipGates, skip_gates [NumSkips, D] (zeros), class
// Control. NumSkips is sized for the looped layer order.
type skips struct{ c Config }

func (m skips) params() []ParamSpec {
	c := m.c
	n := c.NumSkips()
	if n == 0 {
		return nil
	}
	ps := []ParamSpec{{"skip_weights", []int{n, c.ModelDim}, Control, Const(1)}}
	if c.SkipGates {
		ps = append(ps, ParamSpec{"skip_gates", []int{n, c.ModelDim}, Control, Zeros()})
	}
	return ps
}

// skip adds the j-th decoder position's skip connection to x [B*T, D]:
//
//	x + w_j ⊙ skip                                (the baseline)
//	σ(g_j) ⊙ x + (1 − σ(g_j)) ⊙ (w_j ⊙ skip)       (SkipGates: lerp(w_j ⊙ skip, x, σ(g_j)))
func (f *forward) skip(j int, x, skipped *Node) *Node {
	scaled := graph.Mul(channels(row(f.param("skip_weights"), j)), skipped)
	if !f.cfg.SkipGates {
		return graph.Add(x, scaled)
	}
	g := channels(graph.Sigmoid(row(f.param("skip_gates"), j)))
	return graph.Add(scaled, graph.Mul(g, graph.Sub(x, scaled)))
}
