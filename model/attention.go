package model

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// attention is physical layer i's causal grouped-query self-attention:
// c_q [D, D], c_k and c_v [KV, D] (uniform or orthogonal, MatrixInit),
// proj [D, D] (zero), q_gain [H] (QKGainInit), and with the sparse gate
// gate [H, GateWindow] (zero). The matrices are class Attention.
type attention struct {
	c Config
	i int
}

func (m attention) params() []ParamSpec {
	c, s := m.c, BlockScope(m.i)+"/attn/"
	d, kv := c.ModelDim, c.KVDim()
	in := c.inputMatrixInit()
	ps := []ParamSpec{
		{s + "c_q", []int{d, d}, Attention, in},
		{s + "c_k", []int{kv, d}, Attention, in},
		{s + "c_v", []int{kv, d}, Attention, in},
		{s + "proj", []int{d, d}, Attention, Zeros()},
		{s + "q_gain", []int{c.NumHeads}, Control, Const(c.QKGainInit)},
	}
	if c.AttnGate == "sparse" {
		ps = append(ps, ParamSpec{s + "gate", []int{c.NumHeads, c.GateWindow}, Control, Zeros()})
	}
	return ps
}

// inputMatrixInit is the initialiser of the blocks' input matrices.
func (c Config) inputMatrixInit() Init {
	if c.MatrixInit == "orthogonal" {
		return Orthogonal(1)
	}
	return UniformFanIn()
}

// attention returns physical layer i's attention output [B*T, D] for its
// normalised input n [B*T, D] at virtual position slot (the reference's
// CausalSelfAttention.forward):
//
//	q, k, v = n c_qᵀ, n c_kᵀ, n c_vᵀ (+ value embedding, + adapters)
//	q, k = rope(rmsnorm(q)), rope(rmsnorm(k)) per head; q = q_gain ⊙ q
//	y = softmax(q kᵀ / sqrt(head_dim) + mask) v
//	y -= (y·v̂) v̂              XSA layers: v̂ the token's own unit value
//	y *= σ(s · gate_h · n[0:W]) sparse gate, per head
//	out = y projᵀ (+ adapter O on n)
//
// The G = heads/kv_heads query heads that share a KV head are folded into
// the rows of one batched matmul ([B*Hkv, G*T, hd] x [B*Hkv, T, hd]ᵀ), so
// keys and values are never repeated.
func (f *forward) attention(i, slot int, n *Node) *Node {
	cfg := f.cfg
	b, t, hd := f.b, f.t, cfg.HeadDim()
	hkv, grp := cfg.NumKVHeads, cfg.NumHeads/cfg.NumKVHeads
	s := BlockScope(i) + "/attn/"
	q := f.addAdapted(f.linearNamed(n, s+"c_q"), AdaptQ, slot, n)
	k := f.addAdapted(f.linearNamed(n, s+"c_k"), AdaptK, slot, n)
	v := f.linearNamed(n, s+"c_v")
	if ve := f.valueEmbedding(i); ve != nil {
		v = graph.Add(v, ve)
	}
	v = f.addAdapted(v, AdaptV, slot, n)
	q = graph.TransposeAllAxes(graph.Reshape(q, b, t, hkv, grp, hd), 0, 2, 3, 1, 4) // [B, Hkv, G, T, hd]
	k = graph.TransposeAllAxes(graph.Reshape(k, b, t, hkv, hd), 0, 2, 1, 3)         // [B, Hkv, T, hd]
	v = graph.TransposeAllAxes(graph.Reshape(v, b, t, hkv, hd), 0, 2, 1, 3)
	q, k = f.rope(rmsNorm(q)), f.rope(rmsNorm(k))
	q = graph.Mul(q, graph.Reshape(f.param(s+"q_gain"), 1, hkv, grp, 1, 1))

	q3 := graph.Reshape(q, b*hkv, grp*t, hd)
	k3 := graph.Reshape(k, b*hkv, t, hd)
	v3 := graph.Reshape(v, b*hkv, t, hd)
	y := f.attend(q3, k3, v3) // [B*Hkv, G*T, hd]
	if cfg.IsXSA(i) {
		y = exclusiveSelfAttention(y, v3, grp)
	}
	y = graph.TransposeAllAxes(graph.Reshape(y, b, hkv, grp, t, hd), 0, 3, 1, 2, 4) // [B, T, Hkv, G, hd]
	if cfg.AttnGate == "sparse" {
		gate := f.linearNamed(sliceAxis(n, 1, 0, cfg.GateWindow), s+"gate") // [B*T, H]
		gate = graph.Sigmoid(graph.MulScalar(gate, cfg.AttnGateScale))
		y = graph.Mul(graph.Reshape(y, b*t, cfg.NumHeads, hd), graph.Reshape(gate, b*t, cfg.NumHeads, 1))
	}
	out := f.linearNamed(graph.Reshape(y, b*t, cfg.ModelDim), s+"proj")
	return f.addAdapted(out, AdaptO, slot, n)
}

// attend returns softmax(q kᵀ / sqrt(hd) + mask) v, float32 [B*Hkv, G*T, hd],
// for q [B*Hkv, G*T, hd] (the G query heads of a KV head folded into the
// rows) and k, v [B*Hkv, T, hd], computed as Config.AttentionImpl says.
func (f *forward) attend(q3, k3, v3 *Node) *Node {
	if f.cfg.AttentionImpl == "chunked" {
		return f.chunkedAttention(q3, k3, v3)
	}
	return f.materializedAttention(q3, k3, v3)
}

// materializedAttention is the reference formulation: the whole score
// matrix [B*Hkv, G*T, T] in float32, its softmax, and the product with v,
// all differentiated by autodiff (which keeps the probabilities for the
// backward pass).
func (f *forward) materializedAttention(q3, k3, v3 *Node) *Node {
	b, t, hd := f.b, f.t, f.cfg.HeadDim()
	hkv, grp := f.cfg.NumKVHeads, f.cfg.NumHeads/f.cfg.NumKVHeads
	scores := f.toFloat32(MatMulNT(f.cast(q3), f.cast(k3))) // [B*Hkv, G*T, T]
	scores = graph.MulScalar(scores, 1/math.Sqrt(float64(hd)))
	scores = graph.Reshape(graph.Add(graph.Reshape(scores, b, hkv, grp, t, t), f.attentionMask()), b*hkv, grp*t, t)
	probs := graph.Softmax(scores, -1)
	return f.toFloat32(MatMulNN(f.cast(probs), f.cast(v3))) // [B*Hkv, G*T, hd]
}

// exclusiveSelfAttention removes from each head's output y [B*Hkv, G*T, hd]
// its component along the token's own value v [B*Hkv, T, hd] (XSA, PR
// #265; the record's _xsa_efficient):
//
//	v̂ = v / max(‖v‖, 1e-12);  y ← y − (y·v̂) v̂
func exclusiveSelfAttention(y, v *Node, grp int) *Node {
	dims := v.Shape().Dimensions
	bh, t, hd := dims[0], dims[1], dims[2]
	norm := graph.Sqrt(graph.ReduceAndKeep(graph.Mul(v, v), graph.ReduceSum, -1))
	vn := graph.Reshape(graph.Div(v, graph.MaxScalar(norm, 1e-12)), bh, 1, t, hd)
	y4 := graph.Reshape(y, bh, grp, t, hd)
	dot := graph.ReduceAndKeep(graph.Mul(y4, vn), graph.ReduceSum, -1)
	return graph.Reshape(graph.Sub(y4, graph.Mul(dot, vn)), bh, grp*t, hd)
}

// rope applies rotary position embeddings to the first RotaryDims of x
// [..., T, hd], position = the T axis (the row position), in the
// reference's half-split form: with x1, x2 the two halves of the rotated
// dimensions,
//
//	out = [x1 cos + x2 sin, x2 cos − x1 sin, x_pass]
func (f *forward) rope(x *Node) *Node {
	dims := x.Shape().Dimensions
	rank := len(dims)
	hd, rd := dims[rank-1], f.cfg.RotaryDims()
	half := rd / 2
	cos, sin := f.ropeTables()
	cos = graph.Reshape(cos, unitDims(rank, f.t, half)...)
	sin = graph.Reshape(sin, unitDims(rank, f.t, half)...)
	x1, x2 := sliceAxis(x, -1, 0, half), sliceAxis(x, -1, half, rd)
	parts := []*Node{
		graph.Add(graph.Mul(x1, cos), graph.Mul(x2, sin)),
		graph.Sub(graph.Mul(x2, cos), graph.Mul(x1, sin)),
	}
	if rd < hd {
		parts = append(parts, sliceAxis(x, -1, rd, hd))
	}
	return graph.Concatenate(parts, -1)
}

// ropeTables returns cos and sin of t · base^(−2j/rd), [T, rd/2], computed
// on the host in float32 like the reference's Rotary.
func (f *forward) ropeTables() (cos, sin *Node) {
	if f.cos != nil {
		return f.cos, f.sin
	}
	c, s := ropeTable(f.cfg.RopeBase, f.cfg.RotaryDims(), f.t)
	half := f.cfg.RotaryDims() / 2
	f.cos = graph.Const(f.g, tensors.FromFlatDataAndDimensions(c, f.t, half))
	f.sin = graph.Const(f.g, tensors.FromFlatDataAndDimensions(s, f.t, half))
	return f.cos, f.sin
}

// ropeTable returns cos and sin of the angles p · invFreq_j for positions p < t,
// row-major [t, rd/2], with the angle rounded to float32 as the reference's
// torch.outer(t, inv_freq) does.
func ropeTable(base float64, rd, t int) (cos, sin []float32) {
	inv := ropeInvFreq(base, rd)
	half := len(inv)
	cos = make([]float32, t*half)
	sin = make([]float32, t*half)
	for p := range t {
		for j, w := range inv {
			angle := float64(float32(p) * w)
			cos[p*half+j] = float32(math.Cos(angle))
			sin[p*half+j] = float32(math.Sin(angle))
		}
	}
	return cos, sin
}

// ropeInvFreq returns the rotary frequencies base^(−2j/rd), j < rd/2, rounded
// step by step in float32 as the reference's Rotary computes them,
//
//	inv_freq = 1.0 / base ** (torch.arange(0, rd, 2, dtype=float32) / rd)
//
// (exponent 2j/rd divided in float32, a float32 power, a float32 reciprocal).
// Rounding base^(−2j/rd) once from float64 instead differs in the last bit
// for about a third of the frequencies (3 of the record's 8, 10 of the
// baseline's 32), and a frequency's error grows with the position: 5e-4 in
// cos/sin at the record's 98,304-token packed rows.
//
// These are the float32 module's tables. The record's and the baseline's
// GPU runs cast the whole model with .bfloat16(), which rounds this buffer
// to bfloat16 as well (up to 0.37 % per frequency; the baseline also builds
// its positions in bfloat16), so the models as they ran rotate by slightly
// different angles (0.2 in cos at position 2047 for the record); golf does
// not reproduce that rounding.
func ropeInvFreq(base float64, rd int) []float32 {
	inv := make([]float32, rd/2)
	b := float64(float32(base))
	for j := range inv {
		e := float32(2*j) / float32(rd)
		inv[j] = 1 / float32(math.Pow(b, float64(e)))
	}
	return inv
}

// attentionMask returns the additive mask for scores [B, Hkv, G, T(query),
// T(key)]: 0 where the key may be seen, −inf elsewhere. Causal: key
// position ≤ query position; with Options.Segments also the same segment
// id, so attention never crosses a document boundary.
func (f *forward) attentionMask() *Node {
	if f.mask != nil {
		return f.mask
	}
	t := f.t
	m := make([]float32, t*t)
	for r := range t {
		for s := r + 1; s < t; s++ {
			m[r*t+s] = float32(math.Inf(-1))
		}
	}
	causal := graph.Const(f.g, tensors.FromFlatDataAndDimensions(m, 1, 1, 1, t, t))
	f.mask = causal
	if seg := f.opts.Segments; seg != nil {
		same := graph.Equal(graph.Reshape(seg, f.b, 1, 1, t, 1), graph.Reshape(seg, f.b, 1, 1, 1, t))
		zero := graph.Zeros(f.g, shapes.Make(dtypes.Float32, same.Shape().Dimensions...))
		blocked := graph.Add(zero, graph.Scalar(f.g, dtypes.Float32, math.Inf(-1)))
		f.mask = graph.Add(graph.Where(same, zero, blocked), causal)
	}
	return f.mask
}
