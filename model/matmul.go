package model

import (
	"sync/atomic"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Why this file exists: gomlx v0.26.0 builds the gradient of a DotGeneral
// (and of Dot, MatMul, Einsum) as a broadcast multiply followed by a
// reduction, which materialises an [M, K, N] tensor: a 4096x512x2048 MLP
// gradient asks for 32 GB, a small GPT step takes a minute on the CPU, and
// on GPUs weight gradients miss the tensor cores. The gradients of a matmul
// are themselves matmuls, so we build them that way.
//
// How: every matmul of the model is created by MatMulNT or MatMulNN below,
// which record the node's layout in a side table, and the registered
// gradient of DotGeneral nodes (graph.VJPRegistration, an exported map meant
// to be replaceable) is wrapped once, at package initialisation (before any
// goroutine can be building gradients): nodes found in the table get
// matmul-built gradients, every other DotGeneral keeps gomlx's own, so the
// process-wide change alters no one else's graphs. The table holds weak
// references and drops an entry when its node is collected, so it never
// keeps a finished graph alive. The alternative, custom-gradient identities
// around a stop-gradient product, adds a reduction over both operands to
// every forward pass and depends on the order in which gomlx visits nodes
// backwards to hand the output's gradient to the operands; the table adds
// nothing to the graph.

// matmulLayout is how a recorded DotGeneral node multiplies its operands.
type matmulLayout int

const (
	layoutNT matmulLayout = iota + 1 // a[..., M, K] · b[..., N, K]ᵀ
	layoutNN                         // a[..., M, K] · b[..., K, N]
)

var (
	matmulNodes     nodeTable[matmulLayout]
	builtinGradient atomic.Bool
)

func init() {
	overrideVJP(graph.NodeTypeDotGeneral, &matmulNodes, func(node, v *graph.Node, layout matmulLayout) []*graph.Node {
		return matmulGradient(node, v, layout)
	})
}

// UseBuiltinMatmulGradient makes matmuls built from now on, by any goroutine
// of the process, use gomlx's own DotGeneral gradient (on) or the
// matmul-built one (off, the default). It exists to compare the two — same
// values, very different cost — in tests and benchmarks; models should leave
// it off.
func UseBuiltinMatmulGradient(on bool) { builtinGradient.Store(on) }

// record marks y as a matmul of the given layout, unless the built-in
// gradient was asked for.
func record(y *graph.Node, layout matmulLayout) {
	if builtinGradient.Load() {
		return
	}
	matmulNodes.store(y, layout)
}

// batchAxes returns [0, 1, ..., rank-3]: every axis but the last two.
func batchAxes(rank int) []int {
	axes := make([]int, rank-2)
	for i := range axes {
		axes[i] = i
	}
	return axes
}

// MatMulNT returns a·bᵀ over the last two axes, with leading batch axes that
// must match: a [..., M, K], b [..., N, K] -> [..., M, N]. With b a weight
// [out, in] and a activations [tokens, in] this is PyTorch's F.linear. Its
// gradients are matmuls: da = g·b, db = gᵀ·a.
func MatMulNT(a, b *graph.Node) *graph.Node {
	r := a.Rank()
	y := graph.DotGeneral(a, []int{r - 1}, batchAxes(r), b, []int{r - 1}, batchAxes(r))
	record(y, layoutNT)
	return y
}

// MatMulNN returns a·b over the last two axes, with matching leading batch
// axes: a [..., M, K], b [..., K, N] -> [..., M, N]. Its gradients are
// matmuls: da = g·bᵀ, db = aᵀ·g.
func MatMulNN(a, b *graph.Node) *graph.Node {
	r := a.Rank()
	y := graph.DotGeneral(a, []int{r - 1}, batchAxes(r), b, []int{r - 2}, batchAxes(r))
	record(y, layoutNN)
	return y
}

// matmulGradient returns the adjoints of a recorded matmul's two inputs
// given the adjoint g of its output [..., M, N]. The products built here are
// not recorded: nothing differentiates a gradient twice in this project.
func matmulGradient(node, g *graph.Node, layout matmulLayout) []*graph.Node {
	a, b := node.Inputs()[0], node.Inputs()[1]
	r := a.Rank()
	batch := batchAxes(r)
	m, n := r-2, r-1 // the output's row and column axes (same for g)
	var da, db *graph.Node
	switch layout {
	case layoutNT: // y = a bᵀ: da = g b, db = gᵀ a
		da = graph.DotGeneral(g, []int{n}, batch, b, []int{r - 2}, batch)
		db = graph.DotGeneral(g, []int{m}, batch, a, []int{r - 2}, batch)
	case layoutNN: // y = a b: da = g bᵀ, db = aᵀ g
		da = graph.DotGeneral(g, []int{n}, batch, b, []int{r - 1}, batch)
		db = graph.DotGeneral(a, []int{r - 2}, batch, g, []int{m}, batch)
	}
	return []*graph.Node{da, db}
}
