package model

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Why this file exists: gomlx v0.26.0 builds the gradient of Slice with
// Pad, which its pure-Go backend does not implement, so a model that slices
// a differentiated tensor (partial RoPE, the gates' leading channels, the
// SmearGate's shift by one token) could not train on the CPU. The gradient
// of a contiguous slice is the adjoint with zeros concatenated on either
// side, and Concatenate runs everywhere. Slices made by sliceAxis are
// recorded (as matmuls are, see matmul.go) and get that gradient.

// sliceRange is a recorded slice: x[..., start:end, ...] along axis of a
// tensor whose size there is dim.
type sliceRange struct{ axis, start, end, dim int }

var sliceNodes nodeTable[sliceRange]

func init() {
	overrideVJP(graph.NodeTypeSlice, &sliceNodes, func(node, v *graph.Node, r sliceRange) []*graph.Node {
		return []*graph.Node{padAxis(v, r.axis, r.start, r.dim-r.end)}
	})
}

// sliceAxis returns x[..., start:end, ...] along axis (unit stride), with a
// gradient every backend can run.
func sliceAxis(x *graph.Node, axis, start, end int) *graph.Node {
	axis = graph.AdjustAxisToOperandRank(x, axis)
	dim := x.Shape().Dimensions[axis]
	if start == 0 && end == dim {
		return x
	}
	y := graph.SliceAxis(x, axis, graph.AxisRange(start, end))
	sliceNodes.store(y, sliceRange{axis, start, end, dim})
	return y
}

// padAxis concatenates before zeros in front of x and after zeros behind it
// along axis.
func padAxis(x *graph.Node, axis, before, after int) *graph.Node {
	parts := make([]*graph.Node, 0, 3)
	zeros := func(n int) *graph.Node {
		dims := append([]int(nil), x.Shape().Dimensions...)
		dims[axis] = n
		return graph.Zeros(x.Graph(), shapes.Make(x.DType(), dims...))
	}
	if before > 0 {
		parts = append(parts, zeros(before))
	}
	parts = append(parts, x)
	if after > 0 {
		parts = append(parts, zeros(after))
	}
	if len(parts) == 1 {
		return x
	}
	return graph.Concatenate(parts, axis)
}
