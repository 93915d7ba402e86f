// Package gemm provides DotGeneral (and the linear-layer product built on it)
// whose reverse-mode gradients are themselves DotGenerals.
//
// gomlx v0.26.0 differentiates DotGeneral and Dot by broadcasting one operand
// against the incoming gradient and reducing (dotGeneralVJP in
// pkg/core/graph/ops_helpers.go, dotVJP in rev_autodiff.go). For O = L·R with
// a contraction of size K that materialises an [M, K, N] tensor per gradient:
// quadratic memory, and on GPUs the weight gradients run on CUDA cores
// instead of tensor cores. The gradients of a contraction are contractions:
//
//	O[b, i, j] = Σ_k L[b, i, k] R[b, k, j]
//	dL[b, i, k] = Σ_j dO[b, i, j] R[b, k, j]
//	dR[b, k, j] = Σ_i dO[b, i, j] L[b, i, k]
//
// and this package builds them that way for any layout of batch, contracting
// and free ("cross") axes.
//
// # How the custom gradient is attached
//
// gomlx offers two public ways to change a gradient: replacing the node type's
// entry in graph.VJPRegistration, or graph.IdentityWithCustomGradient. The
// registry is process-global (it would change every DotGeneral of every
// package) and a DotGeneral node's axes are private, so a replacement would
// need a side table from node to axes that lives as long as the graphs. This
// package uses custom-gradient identities instead; all state is local to one
// call, so concurrent graph building is safe and nothing outlives the graph:
//
//	value = DotGeneral(StopGradient(L), StopGradient(R))   // the forward product
//	Lt    = IdentityWithCustomGradient(L, → dL from dO)     // taps that route
//	Rt    = IdentityWithCustomGradient(R, → dR from dO)     //   gradients to L, R
//	link  = 0 · (ΣLt + ΣRt)                                 // scalar, value 0
//	O     = IdentityWithCustomGradient(value + link, dO ↦ dO, remembering dO)
//
// gomlx's reverse pass visits nodes in decreasing creation order, so O's
// gradient function runs (and remembers dO) before those of Lt and Rt, which
// ignore the zero adjoint arriving through link and return the DotGenerals
// above instead. The link costs one sum over each operand in the forward pass
// (XLA folds it away); its one side effect is that a non-finite operand
// makes the whole product NaN instead of only the affected entries.
package gemm

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Node is a gomlx graph node.
type Node = graph.Node

// DotGeneral returns graph.DotGeneral(lhs, lhsContracting, lhsBatch, rhs,
// rhsContracting, rhsBatch) — output axes are the batch axes, then lhs's free
// axes, then rhs's free axes, each in operand order — with gradients built as
// DotGenerals (see the package comment). Negative axes count from the end.
// Like every graph-building function it panics on invalid arguments.
func DotGeneral(lhs *Node, lhsContracting, lhsBatch []int, rhs *Node, rhsContracting, rhsBatch []int) *Node {
	ax := newAxes(lhs.Rank(), lhsContracting, lhsBatch, rhs.Rank(), rhsContracting, rhsBatch)
	value := graph.DotGeneral(graph.StopGradient(lhs), ax.lc, ax.lb, graph.StopGradient(rhs), ax.rc, ax.rb)

	var adjoint *Node // dO, set by the output's gradient function
	need := func() *Node {
		if adjoint == nil {
			panic("gemm: operand gradient requested before the product's gradient was seen")
		}
		return adjoint
	}
	lhsTap := graph.IdentityWithCustomGradient(lhs, func(_, _ *Node) *Node { return ax.lhsGrad(need(), rhs) })
	rhsTap := graph.IdentityWithCustomGradient(rhs, func(_, _ *Node) *Node { return ax.rhsGrad(need(), lhs) })
	link := graph.MulScalar(graph.Add(graph.ReduceAllSum(lhsTap), graph.ReduceAllSum(rhsTap)), 0)
	return graph.IdentityWithCustomGradient(graph.Add(value, link), func(_, v *Node) *Node {
		adjoint = v
		return v
	})
}

// Linear returns x·wᵀ for x [..., in] and a weight w [out, in] stored like
// PyTorch's nn.Linear (rows are output channels): [..., out]. Its gradients
// are dx = dy·w and dw = Σ dyᵀ·x over all leading axes of x.
func Linear(x, w *Node) *Node {
	checkLinear(x, w)
	return DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}

// LinearBuiltinGradient is Linear with gomlx's own DotGeneral gradient, for
// comparisons and benchmarks.
func LinearBuiltinGradient(x, w *Node) *Node {
	checkLinear(x, w)
	return graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
}

func checkLinear(x, w *Node) {
	if w.Rank() != 2 || x.Rank() < 1 || x.Shape().Dim(-1) != w.Shape().Dim(1) {
		panic(fmt.Sprintf("gemm: Linear needs x [..., in] and w [out, in], got %s and %s", x.Shape(), w.Shape()))
	}
}

// axes holds a DotGeneral's normalised axes and derives its gradients.
type axes struct {
	lRank, rRank   int
	lc, lb, rc, rb []int
	lFree, rFree   []int // axes neither batch nor contracting, ascending
}

func newAxes(lRank int, lc, lb []int, rRank int, rc, rb []int) *axes {
	a := &axes{lRank: lRank, rRank: rRank,
		lc: normalise("lhs contracting", lc, lRank), lb: normalise("lhs batch", lb, lRank),
		rc: normalise("rhs contracting", rc, rRank), rb: normalise("rhs batch", rb, rRank)}
	if len(a.lc) != len(a.rc) || len(a.lb) != len(a.rb) {
		panic(fmt.Sprintf("gemm: DotGeneral axes do not pair up: lhs contracting %v batch %v, rhs contracting %v batch %v", lc, lb, rc, rb))
	}
	a.lFree = free(lRank, a.lc, a.lb)
	a.rFree = free(rRank, a.rc, a.rb)
	return a
}

func normalise(what string, axes []int, rank int) []int {
	out := make([]int, len(axes))
	for i, ax := range axes {
		if ax < 0 {
			ax += rank
		}
		if ax < 0 || ax >= rank {
			panic(fmt.Sprintf("gemm: %s axis %d out of range for rank %d", what, axes[i], rank))
		}
		if slices.Contains(out[:i], ax) {
			panic(fmt.Sprintf("gemm: %s axes %v repeat an axis", what, axes))
		}
		out[i] = ax
	}
	return out
}

func free(rank int, contracting, batch []int) []int {
	for _, ax := range batch {
		if slices.Contains(contracting, ax) {
			panic(fmt.Sprintf("gemm: axis %d is both batch and contracting", ax))
		}
	}
	var out []int
	for ax := range rank {
		if slices.Contains(contracting, ax) {
			continue
		}
		if slices.Contains(batch, ax) {
			continue
		}
		out = append(out, ax)
	}
	return out
}

// iota returns [from, from+1, ..., from+n-1].
func iota(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// lhsGrad returns dL = dO contracted with R over R's free axes. The product's
// axes are [batch | L's free | R's contracting axes in ascending R order];
// they are transposed back to L's layout.
func (a *axes) lhsGrad(dO, rhs *Node) *Node {
	nb, nlf, nrf := len(a.lb), len(a.lFree), len(a.rFree)
	g := graph.DotGeneral(dO, iota(nb+nlf, nrf), iota(0, nb), rhs, a.rFree, a.rb)
	return toLayout(g, a.lRank, a.lb, a.lFree, a.rc, a.lc)
}

// rhsGrad returns dR = dO contracted with L over L's free axes: axes
// [batch | R's free | L's contracting axes in ascending L order].
func (a *axes) rhsGrad(dO, lhs *Node) *Node {
	nb, nlf := len(a.lb), len(a.lFree)
	g := graph.DotGeneral(dO, iota(nb, nlf), iota(0, nb), lhs, a.lFree, a.lb)
	return toLayout(g, a.rRank, a.rb, a.rFree, a.lc, a.rc)
}

// toLayout transposes a gradient whose axes are [batch | free | contracting
// axes of the other operand, ascending] into its operand's layout. batch and
// free are the operand's own axes; otherC and ownC pair the other operand's
// contracting axes with the operand's.
func toLayout(g *Node, rank int, batch, free, otherC, ownC []int) *Node {
	pos := make([]int, rank) // pos[axis] = position of operand axis in g
	for i, ax := range batch {
		pos[ax] = i
	}
	for i, ax := range free {
		pos[ax] = len(batch) + i
	}
	sorted := slices.Clone(otherC)
	slices.Sort(sorted)
	for k, oc := range sorted {
		pos[ownC[slices.Index(otherC, oc)]] = len(batch) + len(free) + k
	}
	identity := true
	for i, p := range pos {
		identity = identity && i == p
	}
	if identity {
		return g
	}
	return graph.TransposeAllAxes(g, pos...)
}
