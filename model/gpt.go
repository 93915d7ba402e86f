package model

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Node is a node of a GoMLX computation graph.
type Node = graph.Node

// TokenLosses returns the next-token cross-entropy, in nats, of every
// position: inputs and targets are int32 [B, T]; the result is float32
// [B, T]. Callers reduce it per row and then in float64, because the pure-Go
// backend's reductions accumulate in the input dtype one element at a time
// and a float32 mean over millions of values is off by percents.
//
//	loss[b,t] = logsumexp(z[b,t,:]) - z[b,t,targets[b,t]],  z = Logits(inputs)
//
// Building the graph creates the model's variables in ctx when they do not
// exist yet, initialised as InitWeights does with ctx's
// mlctx.ParamInitialSeed.
func TokenLosses(ctx *mlctx.Context, cfg Config, inputs, targets *Node) *Node {
	b, t := inputs.Shape().Dimensions[0], inputs.Shape().Dimensions[1]
	z := flatLogits(ctx, cfg, inputs) // [B*T, V]
	m := graph.StopGradient(graph.ReduceAndKeep(z, graph.ReduceMax, -1))
	lse := graph.Add(graph.Log(graph.ReduceSum(graph.Exp(graph.Sub(z, m)), -1)), graph.Reshape(m, b*t))
	onehot := graph.OneHot(graph.Reshape(targets, b*t), cfg.VocabSize, dtypes.Float32)
	zTarget := graph.ReduceSum(graph.Mul(z, onehot), -1)
	return graph.Reshape(graph.Sub(lse, zTarget), b, t)
}

// Logits returns the soft-capped next-token logits, float32 [B, T, V], for
// int32 inputs [B, T].
func Logits(ctx *mlctx.Context, cfg Config, inputs *Node) *Node {
	b, t := inputs.Shape().Dimensions[0], inputs.Shape().Dimensions[1]
	return graph.Reshape(flatLogits(ctx, cfg, inputs), b, t, cfg.VocabSize)
}

// flatLogits is the whole forward pass; it returns [B*T, V] float32.
//
// The reference's GPT.forward, line by line:
//
//	x = rmsnorm(tok_emb[inputs]);  x0 = x
//	for the first L/2 blocks:  x = block(x, x0); push x
//	for the other blocks:      x = x + skip_weights[i] * pop(); x = block(x, x0)
//	z = cap * tanh(rmsnorm(x) · tok_embᵀ / cap)
func flatLogits(ctx *mlctx.Context, cfg Config, inputs *Node) *Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := newForward(ctx, cfg, inputs)
	x := f.hidden()
	z := f.linear(x, f.param("tok_emb"))
	c := cfg.LogitSoftcap
	return graph.MulScalar(graph.Tanh(graph.DivScalar(z, c)), c)
}

// forward holds what the pieces of one forward pass share.
type forward struct {
	ctx      *mlctx.Context
	cfg      Config
	g        *graph.Graph
	inputs   *Node
	b, t     int
	seed     int64
	dtype    dtypes.DType // matmul precision
	specs    map[string]ParamSpec
	cos, sin *Node            // RoPE tables [T, headDim/2]
	mask     *Node            // additive causal mask [G*T, T]
	grams    map[string]*Node // InputGrams: weight name -> Gram of its input
	gramOf   map[*Node]*Node  // InputGrams: input activations -> their Gram
}

func newForward(ctx *mlctx.Context, cfg Config, inputs *Node) *forward {
	dims := inputs.Shape().Dimensions
	if len(dims) != 2 {
		panic(fmt.Errorf("model: inputs must be [batch, seq], got %s", inputs.Shape()))
	}
	f := &forward{
		ctx: ctx, cfg: cfg, g: inputs.Graph(), inputs: inputs, b: dims[0], t: dims[1],
		seed:  mlctx.GetParamOr(ctx, mlctx.ParamInitialSeed, int64(0)),
		dtype: dtypes.Float32,
		specs: map[string]ParamSpec{},
	}
	if cfg.ComputeDType == "bfloat16" {
		f.dtype = dtypes.BFloat16
	}
	for _, p := range cfg.Params() {
		f.specs[p.Name] = p
	}
	return f
}

// param returns the value of the named parameter, creating the variable
// (with its deterministic host initialisation) if needed.
func (f *forward) param(name string) *Node {
	spec, ok := f.specs[name]
	if !ok {
		panic(fmt.Errorf("model: no parameter %q in this config", name))
	}
	scope, base := mlctx.SplitScope(mlctx.RootScope + name)
	cfg, seed := f.cfg, f.seed
	v := f.ctx.InAbsPath(scope).Checked(false).
		WithInitializer(func(g *graph.Graph, shape shapes.Shape) *Node {
			data := initParam(cfg, spec, seed)
			return graph.Const(g, tensors.FromFlatDataAndDimensions(data, spec.Shape...))
		}).
		VariableWithShape(base, shapes.Make(dtypes.Float32, spec.Shape...))
	w := v.ValueGraph(f.g)
	if spec.Class == Matrix && f.cfg.QAT != nil {
		w = fakeQuant(f.ctx, f.g, f.cfg.QAT, w)
	}
	return w
}

// hidden runs the embedding and the blocks and returns the final normalised
// residual stream, [B*T, D].
func (f *forward) hidden() *Node {
	cfg := f.cfg
	n, d := f.b*f.t, cfg.ModelDim
	emb := f.param("tok_emb")
	x := graph.Gather(emb, graph.Reshape(f.inputs, n, 1)) // [B*T, D]
	x = rmsNorm(x)
	x0 := x
	var skips []*Node
	enc := cfg.NumEncoderLayers()
	for i := range enc {
		x = f.block(i, x, x0)
		skips = append(skips, x)
	}
	for i := range cfg.NumLayers - enc {
		if len(skips) > 0 {
			w := row(f.param("skip_weights"), i, cfg.NumSkips())
			x = graph.Add(x, graph.Mul(graph.Reshape(w, 1, d), skips[len(skips)-1]))
			skips = skips[:len(skips)-1]
		}
		x = f.block(enc+i, x, x0)
	}
	return rmsNorm(x)
}

// block is one transformer block (the reference's Block.forward):
//
//	x = resid_mix[0] * x + resid_mix[1] * x0
//	x = x + attn_scale * attn(rmsnorm(x))
//	x = x + mlp_scale * mlp(rmsnorm(x))
func (f *forward) block(i int, x, x0 *Node) *Node {
	d := f.cfg.ModelDim
	p := func(name string) *Node { return f.param(BlockScope(i) + "/" + name) }
	mix := p("resid_mix")
	x = graph.Add(graph.Mul(graph.Reshape(row(mix, 0, 2), 1, d), x), graph.Mul(graph.Reshape(row(mix, 1, 2), 1, d), x0))
	x = graph.Add(x, graph.Mul(graph.Reshape(p("attn_scale"), 1, d), f.attention(i, rmsNorm(x))))
	x = graph.Add(x, graph.Mul(graph.Reshape(p("mlp_scale"), 1, d), f.mlp(i, rmsNorm(x))))
	return x
}

// mlp is proj(relu(fc(x))²).
func (f *forward) mlp(i int, x *Node) *Node {
	s := BlockScope(i) + "/mlp/"
	h := f.linearNamed(x, s+"fc")
	h = graph.Max(h, graph.ScalarZero(f.g, h.DType()))
	return f.linearNamed(graph.Mul(h, h), s+"proj")
}

// attention is causal grouped-query self-attention with RMS-normalised,
// rotary-embedded queries and keys and a learned per-head query gain
// (the reference's CausalSelfAttention.forward). x is [B*T, D].
//
// The G = heads/kv_heads query heads that share a KV head are folded into
// the rows of one batched matmul ([B*Hkv, G*T, hd] x [B*Hkv, T, hd]ᵀ), so
// keys and values are never repeated.
func (f *forward) attention(i int, x *Node) *Node {
	cfg := f.cfg
	b, t, hd := f.b, f.t, cfg.HeadDim()
	hkv, grp := cfg.NumKVHeads, cfg.NumHeads/cfg.NumKVHeads
	s := BlockScope(i) + "/attn/"
	q := graph.Reshape(f.linearNamed(x, s+"c_q"), b, t, hkv, grp, hd)
	q = graph.TransposeAllAxes(q, 0, 2, 3, 1, 4) // [B, Hkv, G, T, hd]
	k := graph.TransposeAllAxes(graph.Reshape(f.linearNamed(x, s+"c_k"), b, t, hkv, hd), 0, 2, 1, 3)
	v := graph.TransposeAllAxes(graph.Reshape(f.linearNamed(x, s+"c_v"), b, t, hkv, hd), 0, 2, 1, 3)
	q, k = f.rope(rmsNorm(q)), f.rope(rmsNorm(k))
	q = graph.Mul(q, graph.Reshape(f.param(s+"q_gain"), 1, hkv, grp, 1, 1))

	q3 := graph.Reshape(q, b*hkv, grp*t, hd)
	k3 := graph.Reshape(k, b*hkv, t, hd)
	v3 := graph.Reshape(v, b*hkv, t, hd)
	scores := f.toFloat32(MatMulNT(f.cast(q3), f.cast(k3))) // [B*Hkv, G*T, T]
	scores = graph.Add(graph.MulScalar(scores, 1/math.Sqrt(float64(hd))), graph.Reshape(f.causalMask(), 1, grp*t, t))
	probs := graph.Softmax(scores, -1)
	y := f.toFloat32(MatMulNN(f.cast(probs), f.cast(v3))) // [B*Hkv, G*T, hd]
	y = graph.TransposeAllAxes(graph.Reshape(y, b, hkv, grp, t, hd), 0, 3, 1, 2, 4)
	return f.linearNamed(graph.Reshape(y, b*t, cfg.ModelDim), s+"proj")
}

// rope applies rotary position embeddings to x [..., T, hd], position =
// the T axis, in the reference's rotate-half form:
//
//	out = [x1*cos + x2*sin, x2*cos - x1*sin],  x1, x2 = halves of x
//
// The halves are taken with masks and reductions rather than slices: the
// gradient of Slice needs Pad, which the pure-Go backend lacks.
func (f *forward) rope(x *Node) *Node {
	dims := x.Shape().Dimensions
	rank := len(dims)
	hd := dims[rank-1]
	half := hd / 2
	cos, sin := f.ropeTables(hd)
	split := append(append([]int{}, dims[:rank-1]...), 2, half)
	xr := graph.Reshape(x, split...)
	// Binary ops need equal ranks: pad the small operands with unit axes.
	pick := func(i int) *Node {
		mask := []float32{0, 0}
		mask[i] = 1
		return graph.ReduceSum(graph.Mul(xr, graph.Reshape(graph.Const(f.g, mask), unitDims(rank+1, 2, 1)...)), rank-1)
	}
	cos = graph.Reshape(cos, unitDims(rank, f.t, half)...)
	sin = graph.Reshape(sin, unitDims(rank, f.t, half)...)
	x1, x2 := pick(0), pick(1)
	o1 := graph.Add(graph.Mul(x1, cos), graph.Mul(x2, sin))
	o2 := graph.Sub(graph.Mul(x2, cos), graph.Mul(x1, sin))
	return graph.Reshape(graph.Stack([]*Node{o1, o2}, rank-1), dims...)
}

// ropeTables returns cos and sin of t * base^(-2j/hd), [T, hd/2], computed
// on the host in float32 like the reference's Rotary.
func (f *forward) ropeTables(hd int) (cos, sin *Node) {
	if f.cos != nil {
		return f.cos, f.sin
	}
	half := hd / 2
	c := make([]float32, f.t*half)
	s := make([]float32, f.t*half)
	for j := range half {
		invFreq := float32(1 / math.Pow(f.cfg.RopeBase, float64(2*j)/float64(hd)))
		for p := range f.t {
			angle := float64(float32(p) * invFreq)
			c[p*half+j] = float32(math.Cos(angle))
			s[p*half+j] = float32(math.Sin(angle))
		}
	}
	f.cos = graph.Const(f.g, tensors.FromFlatDataAndDimensions(c, f.t, half))
	f.sin = graph.Const(f.g, tensors.FromFlatDataAndDimensions(s, f.t, half))
	return f.cos, f.sin
}

// causalMask returns the additive mask for scores [.., G*T, T]: row r is
// query position r mod T, which may attend to keys at positions <= its own.
func (f *forward) causalMask() *Node {
	if f.mask != nil {
		return f.mask
	}
	grp, t := f.cfg.NumHeads/f.cfg.NumKVHeads, f.t
	m := make([]float32, grp*t*t)
	for r := range grp * t {
		for s := range t {
			if s > r%t {
				m[r*t+s] = float32(math.Inf(-1))
			}
		}
	}
	f.mask = graph.Const(f.g, tensors.FromFlatDataAndDimensions(m, grp*t, t))
	return f.mask
}

// linearNamed applies the named [out, in] weight to x [N, in].
func (f *forward) linearNamed(x *Node, name string) *Node {
	w := f.param(name)
	if f.grams != nil {
		f.recordGram(name, x)
	}
	return f.linear(x, w)
}

// linear returns x · wᵀ for x [N, in] and w [out, in], in the compute dtype,
// as float32 (PyTorch's F.linear under autocast).
func (f *forward) linear(x, w *Node) *Node {
	return f.toFloat32(MatMulNT(f.cast(x), f.cast(w)))
}

func (f *forward) cast(x *Node) *Node {
	if x.DType() == f.dtype {
		return x
	}
	return graph.ConvertDType(x, f.dtype)
}

func (f *forward) toFloat32(x *Node) *Node {
	if x.DType() == dtypes.Float32 {
		return x
	}
	return graph.ConvertDType(x, dtypes.Float32)
}

// rmsEps is float32's machine epsilon, the eps F.rms_norm uses by default
// for float32 inputs.
const rmsEps = 1.1920928955078125e-07

// rmsNorm normalises the last axis to unit root-mean-square, without a
// learned weight: x / sqrt(mean(x²) + eps). (Sqrt and Div, since Rsqrt has
// no gradient in gomlx v0.26.0.)
func rmsNorm(x *Node) *Node {
	ms := graph.ReduceAndKeep(graph.Mul(x, x), graph.ReduceMean, -1)
	return graph.Div(x, graph.Sqrt(graph.AddScalar(ms, rmsEps)))
}

// unitDims returns a shape of the given rank ending in trailing, padded in
// front with unit axes (gomlx's binary ops broadcast only equal ranks).
func unitDims(rank int, trailing ...int) []int {
	dims := make([]int, rank-len(trailing), rank)
	for i := range dims {
		dims[i] = 1
	}
	return append(dims, trailing...)
}

// row returns row i of a [rows, D] parameter as [D], through a one-hot
// weighted sum (slicing would need Pad for its gradient).
func row(v *Node, i, rows int) *Node {
	onehot := make([]float32, rows)
	onehot[i] = 1
	return graph.ReduceSum(graph.Mul(v, graph.Reshape(graph.Const(v.Graph(), onehot), rows, 1)), 0)
}
