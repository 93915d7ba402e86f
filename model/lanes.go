package model

import "github.com/gomlx/gomlx/pkg/core/graph"

// lanes are the parallel two-lane residuals of the decoder's last blocks
// (PR #1204/#1529, §2.8): parallel_post_lambdas [L, 2, 2] (ones; [i, source
// attn/mlp, destination lane]) and parallel_resid_lambdas [L, 2] (1.1),
// class Control, one row per physical layer as the record declares them.
type lanes struct{ c Config }

func (m lanes) params() []ParamSpec {
	l := m.c.NumLayers
	return []ParamSpec{
		{"parallel_post_lambdas", []int{l, 2, 2}, Control, Const(1)},
		{"parallel_resid_lambdas", []int{l, 2}, Control, Const(1.1)},
	}
}

// laneState holds the two residual lanes: lane 0 feeds attention (and
// receives the skips), lane 1 feeds the MLP.
type laneState struct{ attn, mlp *Node }

// parallelBlock runs physical block i at virtual position slot on the two
// lanes (the record's _parallel_block):
//
//	A = attn_scale ⊙ attn(s_i · rmsnorm(mix0 ⊙ lane0 + mix1 ⊙ x0))
//	M = mlp_scale ⊙ mlp(s_i · rmsnorm(lane1))
//	lane0 = r_i0 · lane0 + P_i[0,0] · A + P_i[1,0] · M
//	lane1 = r_i1 · lane1 + P_i[0,1] · A + P_i[1,1] · M
func (f *forward) parallelBlock(i, slot int, ln *laneState, x0 *Node) {
	p := func(name string) *Node { return channels(f.param(BlockScope(i) + "/" + name)) }
	a := graph.Mul(p("attn_scale"), f.attention(i, slot, f.normalised(i, f.mixInput(i, ln.attn, x0))))
	m := graph.Mul(p("mlp_scale"), f.mlp(i, slot, f.normalised(i, ln.mlp)))
	post := row(f.param("parallel_post_lambdas"), i) // [2, 2]
	resid := row(f.param("parallel_resid_lambdas"), i)
	at := func(v *Node, k ...int) *Node {
		for _, j := range k {
			v = row(v, j)
		}
		return v // scalar
	}
	ln.attn = graph.Add(graph.Add(graph.Mul(at(resid, 0), ln.attn), graph.Mul(at(post, 0, 0), a)), graph.Mul(at(post, 1, 0), m))
	ln.mlp = graph.Add(graph.Add(graph.Mul(at(resid, 1), ln.mlp), graph.Mul(at(post, 0, 1), a)), graph.Mul(at(post, 1, 1), m))
}

// finalLane combines the lanes into the final hidden state:
// ½(lane0 + lane1) ("mean"), lane0 ("attn") or lane1 ("mlp").
func (f *forward) finalLane(ln *laneState) *Node {
	switch f.cfg.ParallelFinalLane {
	case "attn":
		return ln.attn
	case "mlp":
		return ln.mlp
	}
	return graph.MulScalar(graph.Add(ln.attn, ln.mlp), 0.5)
}
