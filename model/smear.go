package model

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// smearGate is the record's SmearGate (PR #1667, §2.5): smear/gate [1,
// GateWindow] and smear/lambda [1], both zero-initialised (the identity at
// init), class Control.
type smearGate struct{ c Config }

func (m smearGate) params() []ParamSpec {
	return []ParamSpec{
		{"smear/gate", []int{1, m.c.GateWindow}, Control, Zeros()},
		{"smear/lambda", []int{1}, Control, Zeros()},
	}
}

// smear mixes each raw embedding e_t [B*T, D] with the previous one of its
// row:
//
//	e'_0 = e_0;  e'_t = e_t + λ · σ(w · e_t[0:GateWindow]) · e_{t-1} · n_t
//
// with n_t = 1, or with SmearBOSFix n_t = [token_t != BOS] so a document's
// first token is not smeared with the previous document's last.
func (f *forward) smear(e *Node) *Node {
	c := f.cfg
	d, w := c.ModelDim, c.GateWindow
	if f.t == 1 {
		return e
	}
	gate := graph.Sigmoid(f.linearNamed(sliceAxis(e, 1, 0, w), "smear/gate")) // [B*T, 1]
	gate = graph.Mul(gate, f.scalar("smear/lambda"))
	e3 := graph.Reshape(e, f.b, f.t, d)
	prev := padAxis(sliceAxis(e3, 1, 0, f.t-1), 1, 1, 0) // e_{t-1}, 0 for t = 0
	prev = graph.Reshape(prev, f.b*f.t, d)
	if c.SmearBOSFix {
		notBOS := graph.ConvertDType(graph.NotEqual(f.inputs, graph.Scalar(f.g, dtypes.Int32, c.bosID())), dtypes.Float32)
		gate = graph.Mul(gate, graph.Reshape(notBOS, f.b*f.t, 1))
	}
	return graph.Add(e, graph.Mul(gate, prev))
}
