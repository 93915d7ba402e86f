package model

import (
	"math"
	"weak"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Why this file exists: the materialised attention (attention.go) builds the
// score matrix [B*Hkv, G*T, T] in float32 and autodiff keeps its softmax for
// the backward pass: per layer 4·B·H·T² bytes (the record at 48 rows of 2,048
// tokens per GPU: 6.4 GB per virtual layer, 17 of them), where PyTorch's
// flash attention keeps O(B·H·T). The chunked attention computes the same
// function in blocks of query rows and writes its own backward pass:
//
//   - forward: for each block of queries [s, e) the scores against keys
//     [0, e) only (every later key is masked for every query of the block, so
//     those blocks of the score matrix are skipped, not computed and masked),
//     their softmax, and the product with v; nothing of size T² outlives its
//     block;
//   - backward (flash attention's recomputation): per block the scores and
//     probabilities P are computed again from q and k, and with dY the output
//     gradient and Y the forward output,
//
//     D  = rowsum(dY ⊙ Y)             (= rowsum(P ⊙ dP), the softmax term)
//     dP = dY vᵀ,  dS = P ⊙ (dP − D)
//     dq = dS k / sqrt(hd),  dk += dSᵀ q / sqrt(hd),  dv += Pᵀ dY
//
// Because a block holds whole rows of keys, each block's softmax is exact
// (no online rescaling is needed) and the result equals the materialised
// one up to float rounding. Precision follows the materialised path: the
// products run in the compute dtype (bfloat16 on GPUs) with float32
// results, the softmax in float32.
//
// How the backward pass is attached: gomlx v0.26.0 has no multi-input
// custom gradient, so the block outputs Y are computed under StopGradient
// and concatenated with q, k and v along the row axis into one node,
// recorded in a side table (as matmuls are, matmul.go); Y is sliced back
// out, and the registered gradient of Concatenate gives that node's inputs
// the recomputed dq, dk, dv. XLA folds slice(concatenate(...)) back to Y, so
// the forward pass pays nothing for the trick; the pure-Go backend copies
// the concatenation once.

// DefaultAttentionChunk is the number of query positions per block of the
// chunked attention when Config.AttentionChunk is 0.
const DefaultAttentionChunk = 256

// chunkedFacts is what the backward pass of a recorded chunked attention
// needs besides its node's inputs. The segment ids are held weakly, so the
// table never keeps a graph alive (see nodeTable).
type chunkedFacts struct {
	attnShape
	segments weak.Pointer[graph.Node] // int32 [B, T], or the zero pointer
}

// attnShape is the geometry and precision of one attention call.
type attnShape struct {
	b, hkv, grp, t, hd int
	chunk              int
	dtype              dtypes.DType // matmul precision
}

var chunkedNodes nodeTable[chunkedFacts]

func init() {
	overrideVJP(graph.NodeTypeConcatenate, &chunkedNodes, func(node, v *graph.Node, facts chunkedFacts) []*graph.Node {
		return chunkedAttentionGradient(node, v, facts)
	})
}

// chunkSize returns the configured query block size.
func (c Config) chunkSize() int {
	if c.AttentionChunk > 0 {
		return c.AttentionChunk
	}
	return DefaultAttentionChunk
}

// chunkedAttention returns softmax(q kᵀ/sqrt(hd) + mask) v like
// materializedAttention, in query blocks, with the recomputing backward pass
// described at the top of this file. q3 [B*Hkv, G*T, hd], k3, v3
// [B*Hkv, T, hd], all float32.
func (f *forward) chunkedAttention(q3, k3, v3 *Node) *Node {
	s := attnShape{
		b: f.b, hkv: f.cfg.NumKVHeads, grp: f.cfg.NumHeads / f.cfg.NumKVHeads, t: f.t, hd: f.cfg.HeadDim(),
		chunk: min(f.cfg.chunkSize(), f.t), dtype: f.dtype,
	}
	seg := f.opts.Segments
	y := graph.StopGradient(s.forward(q3, k3, v3, seg))
	joined := graph.Concatenate([]*Node{y, q3, k3, v3}, 1)
	facts := chunkedFacts{attnShape: s}
	if seg != nil {
		facts.segments = weak.Make(seg)
	}
	chunkedNodes.store(joined, facts)
	return sliceAxis(joined, 1, 0, s.grp*s.t)
}

// blocks returns the query ranges [start, end) of the blocks.
func (s attnShape) blocks() [][2]int {
	var out [][2]int
	for start := 0; start < s.t; start += s.chunk {
		out = append(out, [2]int{start, min(start+s.chunk, s.t)})
	}
	return out
}

// attnBlock is one query block's operands: its queries qc [B*Hkv, G*C, hd],
// the keys and values it may see, kc and vc [B*Hkv, end, hd], and its
// probabilities p [B*Hkv, G*C, end] (float32).
type attnBlock struct{ qc, kc, vc, p *Node }

// block computes the probabilities of queries [start, end) of q4
// [B*Hkv, G, T, hd] against keys [0, end).
func (s attnShape) block(q4, k3, v3, seg *Node, start, end int) attnBlock {
	c := end - start
	bh := s.b * s.hkv
	qc := graph.Reshape(graph.SliceAxis(q4, 2, graph.AxisRange(start, end)), bh, s.grp*c, s.hd)
	kc := graph.SliceAxis(k3, 1, graph.AxisRange(0, end))
	vc := graph.SliceAxis(v3, 1, graph.AxisRange(0, end))
	scores := s.f32(s.matmul(s.cast(qc), s.cast(kc), true)) // [B*Hkv, G*C, end]
	scores = graph.MulScalar(scores, 1/math.Sqrt(float64(s.hd)))
	scores = graph.Add(graph.Reshape(scores, s.b, s.hkv, s.grp, c, end), blockMask(q4.Graph(), s.b, start, end, seg))
	p := graph.Softmax(graph.Reshape(scores, bh, s.grp*c, end), -1)
	return attnBlock{qc: qc, kc: kc, vc: vc, p: p}
}

// forward returns the attention output [B*Hkv, G*T, hd] block by block.
func (s attnShape) forward(q3, k3, v3, seg *Node) *Node {
	bh := s.b * s.hkv
	q4 := graph.Reshape(q3, bh, s.grp, s.t, s.hd)
	var ys []*Node
	for _, r := range s.blocks() {
		blk := s.block(q4, k3, v3, seg, r[0], r[1])
		y := s.f32(s.matmul(s.cast(blk.p), s.cast(blk.vc), false)) // [B*Hkv, G*C, hd]
		ys = append(ys, graph.Reshape(y, bh, s.grp, r[1]-r[0], s.hd))
	}
	return graph.Reshape(concatOrOne(ys, 2), bh, s.grp*s.t, s.hd)
}

// chunkedAttentionGradient returns the adjoints of the recorded node's
// inputs (y, q, k, v) from the adjoint v of the joined node, of which only
// the first G*T rows (y's) are used by the model.
func chunkedAttentionGradient(node, v *graph.Node, facts chunkedFacts) []*graph.Node {
	s := facts.attnShape
	in := node.Inputs()
	y3, q3, k3, v3 := in[0], in[1], in[2], in[3]
	var seg *Node
	if facts.segments != (weak.Pointer[graph.Node]{}) {
		seg = facts.segments.Value()
	}
	bh := s.b * s.hkv
	rows := s.grp * s.t
	dy4 := graph.Reshape(graph.SliceAxis(v, 1, graph.AxisRange(0, rows)), bh, s.grp, s.t, s.hd)
	y4 := graph.Reshape(y3, bh, s.grp, s.t, s.hd)
	q4 := graph.Reshape(q3, bh, s.grp, s.t, s.hd)
	scale := 1 / math.Sqrt(float64(s.hd))
	var dqs []*Node
	var dk, dv *Node
	for _, r := range s.blocks() {
		start, end := r[0], r[1]
		c := end - start
		blk := s.block(q4, k3, v3, seg, start, end)
		dyc := graph.Reshape(graph.SliceAxis(dy4, 2, graph.AxisRange(start, end)), bh, s.grp*c, s.hd)
		yc := graph.Reshape(graph.SliceAxis(y4, 2, graph.AxisRange(start, end)), bh, s.grp*c, s.hd)
		d := graph.ReduceAndKeep(graph.Mul(dyc, yc), graph.ReduceSum, -1)                 // [B*Hkv, G*C, 1]
		dp := s.f32(s.matmul(s.cast(dyc), s.cast(blk.vc), true))                          // [B*Hkv, G*C, end]
		ds := graph.Mul(blk.p, graph.Sub(dp, d))                                          // [B*Hkv, G*C, end]
		dqc := graph.MulScalar(s.f32(s.matmul(s.cast(ds), s.cast(blk.kc), false)), scale) // [B*Hkv, G*C, hd]
		dkc := graph.MulScalar(s.f32(s.matmulTN(s.cast(ds), s.cast(blk.qc))), scale)      // [B*Hkv, end, hd]
		dvc := s.f32(s.matmulTN(s.cast(blk.p), s.cast(dyc)))                              // [B*Hkv, end, hd]
		dqs = append(dqs, graph.Reshape(dqc, bh, s.grp, c, s.hd))
		dk = addOrSet(dk, padAxis(dkc, 1, 0, s.t-end))
		dv = addOrSet(dv, padAxis(dvc, 1, 0, s.t-end))
	}
	dq := graph.Reshape(concatOrOne(dqs, 2), bh, rows, s.hd)
	return []*graph.Node{nil, dq, dk, dv}
}

// blockMask is the additive mask [B or 1, 1, 1, C, end] of query positions
// [start, end) against key positions [0, end): 0 where key ≤ query (and,
// with segment ids, both in the same segment), −inf elsewhere. It is built
// from iotas, so no T×T constant enters the program.
func blockMask(g *graph.Graph, b, start, end int, seg *Node) *Node {
	c := end - start
	pos := shapes.Make(dtypes.Int32, c, end)
	query := graph.AddScalar(graph.Iota(g, pos, 0), float64(start))
	key := graph.Iota(g, pos, 1)
	ok := graph.Reshape(graph.LessOrEqual(key, query), 1, 1, 1, c, end)
	if seg != nil {
		sq := graph.Reshape(graph.SliceAxis(seg, 1, graph.AxisRange(start, end)), b, 1, 1, c, 1)
		sk := graph.Reshape(graph.SliceAxis(seg, 1, graph.AxisRange(0, end)), b, 1, 1, 1, end)
		ok = graph.LogicalAnd(ok, graph.Equal(sq, sk))
	}
	return graph.Where(ok, graph.Scalar(g, dtypes.Float32, 0), graph.Scalar(g, dtypes.Float32, math.Inf(-1)))
}

// matmul is a·bᵀ (nt) or a·b over the last two axes with batch axis 0; the
// products of this file are never differentiated, so they are plain
// DotGenerals.
func (s attnShape) matmul(a, b *Node, nt bool) *Node {
	if nt {
		return graph.DotGeneral(a, []int{2}, []int{0}, b, []int{2}, []int{0})
	}
	return graph.DotGeneral(a, []int{2}, []int{0}, b, []int{1}, []int{0})
}

// matmulTN is aᵀ·b over the last two axes with batch axis 0.
func (s attnShape) matmulTN(a, b *Node) *Node {
	return graph.DotGeneral(a, []int{1}, []int{0}, b, []int{1}, []int{0})
}

func (s attnShape) cast(x *Node) *Node {
	if x.DType() == s.dtype {
		return x
	}
	return graph.ConvertDType(x, s.dtype)
}

func (s attnShape) f32(x *Node) *Node {
	if x.DType() == dtypes.Float32 {
		return x
	}
	return graph.ConvertDType(x, dtypes.Float32)
}

func concatOrOne(xs []*Node, axis int) *Node {
	if len(xs) == 1 {
		return xs[0]
	}
	return graph.Concatenate(xs, axis)
}

func addOrSet(acc, x *Node) *Node {
	if acc == nil {
		return x
	}
	return graph.Add(acc, x)
}
