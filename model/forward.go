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

// Options change how one graph runs the model, without changing its
// parameters. The zero value is the full model over causal rows.
type Options struct {
	// Unlooped runs a depth-recurrent config (Config.NumLoops > 0) without
	// its loops, as the record trains before its switch-on fraction.
	Unlooped bool
	// Segments, int32 [B, T] like the inputs, makes attention
	// document-isolated: a query attends only to earlier keys with the same
	// segment id (the record's varlen attention, §3.5/§5.3). nil: causal
	// attention over the whole row.
	//
	// gomlx has no variable-length attention kernel, so this adds a
	// [B, 1, T, T] mask to the scores: the cost is the dense attention's
	// (every masked score is still computed), where FlashAttention's varlen
	// kernel skips the blocks across documents; on a GPU with rows of many
	// short documents that is the price of isolation.
	Segments *Node
	// Adapter adds test-time-training corrections (LoRA) inside the
	// forward pass; nil: none.
	Adapter Adapter
}

// AdapterTarget names a place in the forward pass an Adapter can correct.
type AdapterTarget int

// Adapter targets, as the record's TTT LoRA places them (§6.3).
const (
	AdaptQ    AdapterTarget = iota + 1 // query projection: input the attention input n, width ModelDim
	AdaptK                             // key projection: input n, width KVDim
	AdaptV                             // value projection: input n, width KVDim
	AdaptO                             // attention output (before attn_scale): input n, width ModelDim
	AdaptMLP                           // MLP output (before mlp_scale): input the MLP input, width ModelDim
	AdaptHead                          // logits before the softcap: input the final hidden state, width VocabSize
)

// String returns "q", "k", "v", "o", "mlp" or "head".
func (t AdapterTarget) String() string {
	switch t {
	case AdaptQ:
		return "q"
	case AdaptK:
		return "k"
	case AdaptV:
		return "v"
	case AdaptO:
		return "o"
	case AdaptMLP:
		return "mlp"
	case AdaptHead:
		return "head"
	}
	return fmt.Sprintf("target(%d)", int(t))
}

// Adapter adds a correction to one target's output: Delta gets the
// target's input x [B, T, in] at virtual layer slot (0..NumVirtualLayers-1;
// -1 for AdaptHead) and returns a [B, T, out] term to add, or nil for none.
// Test-time training's per-document LoRA implements it.
type Adapter interface {
	Delta(target AdapterTarget, slot int, x *Node, out int) *Node
}

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
func TokenLosses(ctx *mlctx.Context, cfg Config, inputs, targets *Node, opts Options) *Node {
	b, t := inputs.Shape().Dimensions[0], inputs.Shape().Dimensions[1]
	z := flatLogits(ctx, cfg, inputs, opts) // [B*T, V]
	return graph.Reshape(crossEntropy(z, graph.Reshape(targets, b*t), cfg.VocabSize), b, t)
}

// crossEntropy returns logsumexp(z) - z[target] per row of z [N, V].
func crossEntropy(z, targets *Node, vocab int) *Node {
	n := z.Shape().Dimensions[0]
	m := graph.StopGradient(graph.ReduceAndKeep(z, graph.ReduceMax, -1))
	lse := graph.Add(graph.Log(graph.ReduceSum(graph.Exp(graph.Sub(z, m)), -1)), graph.Reshape(m, n))
	onehot := graph.OneHot(targets, vocab, dtypes.Float32)
	return graph.Sub(lse, graph.ReduceSum(graph.Mul(z, onehot), -1))
}

// Logits returns the soft-capped next-token logits, float32 [B, T, V], for
// int32 inputs [B, T].
func Logits(ctx *mlctx.Context, cfg Config, inputs *Node, opts Options) *Node {
	b, t := inputs.Shape().Dimensions[0], inputs.Shape().Dimensions[1]
	return graph.Reshape(flatLogits(ctx, cfg, inputs, opts), b, t, cfg.VocabSize)
}

// flatLogits is the whole forward pass; it returns [B*T, V] float32.
func flatLogits(ctx *mlctx.Context, cfg Config, inputs *Node, opts Options) *Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	f := newForward(ctx, cfg, inputs, opts)
	return f.logits(f.hidden())
}

// forward holds what the pieces of one forward pass share.
type forward struct {
	ctx      *mlctx.Context
	cfg      Config
	opts     Options
	g        *graph.Graph
	inputs   *Node
	b, t     int
	seed     int64
	dtype    dtypes.DType // matmul precision
	specs    map[string]ParamSpec
	cos, sin *Node            // RoPE tables [T, rotary/2]
	mask     *Node            // additive attention mask [B or 1, 1, 1, T, T]
	ve       *Node            // shared value embedding term [B*T, KV]
	grams    map[string]*Node // InputGrams: weight name -> Gram of its input
	gramOf   map[*Node]*Node  // InputGrams: input activations -> their Gram
}

func newForward(ctx *mlctx.Context, cfg Config, inputs *Node, opts Options) *forward {
	dims := inputs.Shape().Dimensions
	if len(dims) != 2 {
		panic(fmt.Errorf("model: inputs must be [batch, seq], got %s", inputs.Shape()))
	}
	if s := opts.Segments; s != nil && !s.Shape().Equal(inputs.Shape()) {
		panic(fmt.Errorf("model: segments %s must have the inputs' shape %s", s.Shape(), inputs.Shape()))
	}
	f := &forward{
		ctx: ctx, cfg: cfg, opts: opts, g: inputs.Graph(), inputs: inputs, b: dims[0], t: dims[1],
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
	seed := f.seed
	v := f.ctx.InAbsPath(scope).Checked(false).
		WithInitializer(func(g *graph.Graph, shape shapes.Shape) *Node {
			data, err := spec.Init.fill(spec.Shape, paramRNG(seed, spec.Name))
			if err != nil {
				panic(fmt.Errorf("model: initialise %s: %w", spec.Name, err))
			}
			return graph.Const(g, tensors.FromFlatDataAndDimensions(data, spec.Shape...))
		}).
		VariableWithShape(base, shapes.Make(dtypes.Float32, spec.Shape...))
	w := v.ValueGraph(f.g)
	if spec.Class.IsMatrix() && f.cfg.QAT != nil {
		w = fakeQuant(f.ctx, f.g, f.cfg.QAT.For(spec.Class), w)
	}
	return w
}

// hidden runs the embedding and the blocks and returns the final normalised
// residual stream, [B*T, D]:
//
//	x0 = x = rmsnorm(smear(embed(tokens)))
//	for each encoder position: x = block(x, x0); push x
//	for each decoder position j: x = skip_j(x, pop()) (while skips remain);
//	    x = block(x, x0), or the two-lane parallel block from
//	    ParallelStartLayer on
//	h = rmsnorm(x)   (rmsnorm(mean of the lanes) with parallel blocks)
func (f *forward) hidden() *Node {
	cfg := f.cfg
	x := f.embed()
	if cfg.SmearGate {
		x = f.smear(x)
	}
	x = rmsNorm(x)
	x0 := x
	var skipped []*Node
	enc, dec := cfg.LayerOrder(!f.opts.Unlooped)
	nSkips := cfg.NumSkips()
	slot := 0
	for _, i := range enc {
		x = f.block(i, slot, x, x0)
		skipped = append(skipped, x)
		slot++
	}
	pop := func() *Node {
		s := skipped[len(skipped)-1]
		skipped = skipped[:len(skipped)-1]
		return s
	}
	var ln *laneState
	for j, i := range dec {
		if cfg.IsParallel(i) {
			if ln == nil {
				ln = &laneState{x, x}
			}
			if j < nSkips && len(skipped) > 0 {
				ln.attn = f.skip(j, ln.attn, pop())
			}
			f.parallelBlock(i, slot, ln, x0)
		} else {
			if j < nSkips && len(skipped) > 0 {
				x = f.skip(j, x, pop())
			}
			x = f.block(i, slot, x, x0)
		}
		slot++
	}
	if ln != nil {
		x = f.finalLane(ln)
	}
	return rmsNorm(x)
}

// adapt returns the adapter's correction of target at slot for input x
// [B*T, in] as [B*T, out], or nil.
func (f *forward) adapt(target AdapterTarget, slot int, x *Node, out int) *Node {
	if f.opts.Adapter == nil {
		return nil
	}
	in := x.Shape().Dimensions[1]
	d := f.opts.Adapter.Delta(target, slot, graph.Reshape(x, f.b, f.t, in), out)
	if d == nil {
		return nil
	}
	return graph.Reshape(graph.ConvertDType(d, dtypes.Float32), f.b*f.t, out)
}

// addAdapted returns y plus the adapter's correction of target, if any.
func (f *forward) addAdapted(y *Node, target AdapterTarget, slot int, x *Node) *Node {
	if d := f.adapt(target, slot, x, y.Shape().Dimensions[1]); d != nil {
		return graph.Add(y, d)
	}
	return y
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

// row returns row i of a parameter [rows, ...] without its first axis.
func row(v *Node, i int) *Node {
	dims := v.Shape().Dimensions
	return graph.Reshape(sliceAxis(v, 0, i, i+1), dims[1:]...)
}

// scalar returns a [1] parameter as a scalar node.
func (f *forward) scalar(name string) *Node { return graph.Reshape(f.param(name)) }

// channels reshapes a [D] vector to [1, D] so that it scales the rows of a
// [N, D] activation.
func channels(v *Node) *Node { return graph.Reshape(v, 1, v.Shape().Size()) }

func sqrtf(x float64) float64 { return math.Sqrt(x) }
