package model

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// QATEnabledVar is the name of the non-trainable scalar variable (0 or 1)
// that switches fake quantization on in a model built with Config.QAT. Set
// it with SetQATEnabled; it starts at 0.
const QATEnabledVar = "qat/enabled"

// SetQATEnabled switches quantization-aware training on or off for the
// next executions of graphs built from ctx with Config.QAT set (no
// recompilation). It creates the switch when the graph has not been built
// yet; for a model without Config.QAT it has no effect.
func SetQATEnabled(ctx *mlctx.Context, on bool) error {
	val := float32(0)
	if on {
		val = 1
	}
	v := variable(ctx, QATEnabledVar)
	if v == nil {
		scope, base := mlctx.SplitScope(mlctx.RootScope + QATEnabledVar)
		v = ctx.InAbsPath(scope).Checked(false).VariableWithShape(base, shapes.Make(dtypes.Float32)).SetTrainable(false)
	}
	return v.SetValue(tensorsScalar(val))
}

// fakeQuant returns w + enabled * stopgrad(fq(w) - w) for a [rows, cols]
// weight, with fq the per-row symmetric quantizer of QATConfig: the forward
// pass sees the quantized weight when enabled, the backward pass the
// identity (straight-through estimator).
func fakeQuant(ctx *mlctx.Context, g *graph.Graph, q *QATConfig, w *Node) *Node {
	scope, base := mlctx.SplitScope(mlctx.RootScope + QATEnabledVar)
	enabled := ctx.InAbsPath(scope).Checked(false).WithInitializer(initializers.Zero).
		VariableWithShape(base, shapes.Make(dtypes.Float32)).SetTrainable(false).ValueGraph(g)
	qmax := float64(int(1)<<(q.Bits-1) - 1)
	ws := graph.StopGradient(w)
	var clip *Node
	if q.ClipStd > 0 {
		cols := float64(w.Shape().Dimensions[1])
		mean := graph.ReduceAndKeep(ws, graph.ReduceMean, -1)
		dev := graph.Sub(ws, mean)
		variance := graph.DivScalar(graph.ReduceAndKeep(graph.Mul(dev, dev), graph.ReduceSum, -1), math.Max(cols-1, 1))
		clip = graph.MulScalar(graph.Sqrt(variance), q.ClipStd)
	} else {
		clip = graph.ReduceAndKeep(graph.Abs(ws), graph.ReduceMax, -1)
	}
	scale := graph.DivScalar(clip, qmax)
	zero := graph.ScalarZero(g, dtypes.Float32)
	scale = graph.Where(graph.GreaterThan(scale, zero), scale, graph.OnesLike(scale))
	lim := graph.Scalar(g, dtypes.Float32, qmax)
	qv := roundHalfEven(graph.Div(ws, scale))
	qv = graph.Min(graph.Max(qv, graph.Neg(lim)), lim)
	delta := graph.StopGradient(graph.Sub(graph.Mul(qv, scale), ws))
	return graph.Add(w, graph.Mul(enabled, delta))
}

// roundHalfEven rounds to the nearest integer, ties to even, as torch.round
// and the quant package do (graph.Round sends ties away from zero):
//
//	f = floor(x); d = x - f
//	r = f + [d > 1/2] + [d = 1/2 and f odd]
//
// exact in float32 for the small magnitudes quantization produces.
func roundHalfEven(x *Node) *Node {
	g := x.Graph()
	one := graph.OnesLike(x)
	zero := graph.ZerosLike(x)
	half := graph.Scalar(g, x.DType(), 0.5)
	f := graph.Floor(x)
	d := graph.Sub(x, f)
	odd := graph.Sub(f, graph.MulScalar(graph.Floor(graph.DivScalar(f, 2)), 2)) // 1 when f is odd
	up := graph.Where(graph.GreaterThan(d, half), one, zero)
	tie := graph.Where(graph.Equal(d, half), odd, zero)
	return graph.Add(f, graph.Add(up, tie))
}
