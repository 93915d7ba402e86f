package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// OptimizerConfig holds the hyperparameters of the baseline's three
// optimizers: Muon for the 2-D block matrices, Adam for the tied embedding and
// Adam for the control parameters (gains, scales, mixes, skip weights). The
// zero value is not useful; start from DefaultOptimizer.
type OptimizerConfig struct {
	MatrixLR float64 `json:"matrix_lr"` // Muon learning rate (MATRIX_LR, 0.04)
	EmbedLR  float64 `json:"embed_lr"`  // Adam learning rate of the tied embedding (TIED_EMBED_LR, 0.05)
	ScalarLR float64 `json:"scalar_lr"` // Adam learning rate of the control parameters (SCALAR_LR, 0.04)
	HeadLR   float64 `json:"head_lr"`   // Adam learning rate of an untied output head (HEAD_LR, 0.008)
	// UntiedEmbedLR is the token embedding's Adam learning rate when the
	// model has an untied head (EMBED_LR, 0.6): the baseline's
	// token_lr = tied_embed_lr if tie_embeddings else embed_lr. The record
	// never unties its head.
	UntiedEmbedLR float64 `json:"untied_embed_lr"`

	// Muon momentum, warmed up linearly from MomentumWarmupStart over
	// MomentumWarmupSteps optimizer steps (0.95, 0.85, 500).
	MuonMomentum        float64 `json:"muon_momentum"`
	MomentumWarmupStart float64 `json:"muon_momentum_warmup_start"`
	MomentumWarmupSteps int     `json:"muon_momentum_warmup_steps"`
	// NewtonSchulzSteps is the number of orthogonalisation iterations (5).
	NewtonSchulzSteps int `json:"muon_backend_steps"`
	// NewtonSchulzCoeffs picks the iteration's polynomial: "" or "quintic"
	// (the baseline's (3.4445, -4.7750, 2.0315) at every step) or
	// "polar-express" (a different (a, b, c) per step, PR #1344, the record;
	// see PolarExpressCoeffs).
	NewtonSchulzCoeffs string `json:"muon_ns_coeffs,omitempty"`
	// MuonRowNormalize divides each row of Muon's Nesterov update by its L2
	// norm (at least 1e-7) before orthogonalising (MuonEq-R, PR #1285; the
	// record).
	MuonRowNormalize bool `json:"muon_row_normalize,omitempty"`
	// NewtonSchulzDType is the dtype the iterations run in: BFloat16 like the
	// reference, or Float32. The zero value (InvalidDType, "auto", the
	// default) is settled by the backend when a trainer is made
	// (ResolveNewtonSchulz): Float32 on the pure-Go backend, whose bf16
	// matmuls are about 3x slower than its f32 ones (a baseline step 1.6x
	// slower), BFloat16 on accelerators, as the reference.
	NewtonSchulzDType dtypes.DType `json:"muon_dtype,omitempty"`

	// StorageDType is the precision of the reference's bfloat16 storage
	// points on accelerators (train_gpt.py casts the model to bf16 and
	// restores only the other parameters to fp32, and Muon's updates_flat
	// is bf16):
	//   - the tied embedding's weights, its Adam moments and its gradient
	//     are held in this dtype (torch's fused Adam on a bf16 parameter:
	//     moments in the parameter's dtype, arithmetic in float32, every
	//     stored value rounded);
	//   - Muon's scaled update is rounded to it before it is applied to the
	//     float32 matrix.
	// BFloat16 rounds there as the reference does on a GPU; Float32 keeps
	// every value float32. The zero value (InvalidDType, "auto") follows the
	// model's compute dtype: BFloat16 when the matmuls run in bfloat16 (the
	// accelerator default), Float32 otherwise (the CPU).
	StorageDType dtypes.DType `json:"storage_dtype,omitempty"`

	Beta1   float64 `json:"beta1"`    // Adam first-moment decay (0.9)
	Beta2   float64 `json:"beta2"`    // Adam second-moment decay (0.95)
	AdamEps float64 `json:"adam_eps"` // Adam denominator epsilon (1e-8)

	// Decoupled weight decay per optimizer: before its update a parameter is
	// multiplied by (1 - lr*decay), lr being the scheduled learning rate.
	// 0 (the baseline) disables it.
	MuonWeightDecay   float64 `json:"muon_weight_decay"`
	EmbedWeightDecay  float64 `json:"embed_weight_decay"`
	ScalarWeightDecay float64 `json:"scalar_weight_decay"`

	// GradClipNorm, when > 0, rescales all gradients together so that their
	// global L2 norm is at most this value (torch's clip_grad_norm_:
	// g *= min(1, max / (norm + 1e-6))).
	GradClipNorm float64 `json:"grad_clip_norm"`
	// ClipLocalGradients clips each data-parallel rank's own gradient before
	// the ranks' gradients are averaged, as the record does (clip_grad_norm_
	// before Optimizers.step's all-reduce, record-stack.md §3.1); false
	// clips the averaged gradient, as the baseline's DDP does. With one rank
	// both are the same.
	ClipLocalGradients bool `json:"clip_local_gradients,omitempty"`
}

// DefaultOptimizer returns the challenge baseline's optimizer settings.
func DefaultOptimizer() OptimizerConfig {
	return OptimizerConfig{
		MatrixLR: 0.04, EmbedLR: 0.05, ScalarLR: 0.04, HeadLR: 0.008, UntiedEmbedLR: 0.6,
		MuonMomentum: 0.95, MomentumWarmupStart: 0.85, MomentumWarmupSteps: 500,
		NewtonSchulzSteps: 5,
		Beta1:             0.9, Beta2: 0.95, AdamEps: 1e-8,
	}
}

// Momentum returns the Muon momentum schedule of this configuration.
func (c OptimizerConfig) Momentum() MomentumWarmup {
	return MomentumWarmup{Start: c.MomentumWarmupStart, Final: c.MuonMomentum, Steps: c.MomentumWarmupSteps}
}

// Validate reports settings the update rules cannot use.
func (c OptimizerConfig) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"matrix lr", c.MatrixLR}, {"embedding lr", c.EmbedLR}, {"scalar lr", c.ScalarLR}, {"head lr", c.HeadLR},
		{"untied embedding lr", c.UntiedEmbedLR},
		{"muon weight decay", c.MuonWeightDecay}, {"embedding weight decay", c.EmbedWeightDecay},
		{"scalar weight decay", c.ScalarWeightDecay}, {"grad clip norm", c.GradClipNorm}, {"adam eps", c.AdamEps}} {
		if p.v < 0 || math.IsNaN(p.v) || math.IsInf(p.v, 0) {
			return fmt.Errorf("optimizer: %s must be a finite value >= 0, got %v", p.name, p.v)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"beta1", c.Beta1}, {"beta2", c.Beta2}, {"muon momentum", c.MuonMomentum}, {"momentum warm-up start", c.MomentumWarmupStart}} {
		if p.v < 0 || p.v >= 1 || math.IsNaN(p.v) {
			return fmt.Errorf("optimizer: %s must be in [0, 1), got %v", p.name, p.v)
		}
	}
	if c.NewtonSchulzSteps < 1 {
		return fmt.Errorf("optimizer: Newton-Schulz steps must be >= 1, got %d", c.NewtonSchulzSteps)
	}
	switch c.NewtonSchulzDType {
	case dtypes.InvalidDType, dtypes.BFloat16, dtypes.Float32:
	default:
		return fmt.Errorf("optimizer: Newton-Schulz dtype must be auto, bfloat16 or float32, got %s", c.NewtonSchulzDType)
	}
	switch c.StorageDType {
	case dtypes.InvalidDType, dtypes.BFloat16, dtypes.Float32:
	default:
		return fmt.Errorf("optimizer: storage dtype must be auto, bfloat16 or float32, got %s", c.StorageDType)
	}
	if _, err := newtonSchulzCoeffs(c.NewtonSchulzCoeffs, c.NewtonSchulzSteps); err != nil {
		return fmt.Errorf("optimizer: %w", err)
	}
	return nil
}

// ResolveNewtonSchulz returns c with NewtonSchulzDType settled for the
// backend: an explicit dtype is kept; auto is Float32 on the pure-Go
// backend (pureGo) and BFloat16, the reference's, elsewhere.
func (c OptimizerConfig) ResolveNewtonSchulz(pureGo bool) OptimizerConfig {
	if c.NewtonSchulzDType == dtypes.InvalidDType {
		c.NewtonSchulzDType = dtypes.BFloat16
		if pureGo {
			c.NewtonSchulzDType = dtypes.Float32
		}
	}
	return c
}

// ResolveStorage returns c with StorageDType settled for a model whose
// matmuls run in computeDType ("bfloat16", "float32" or "" for float32):
// an explicit StorageDType is kept, auto follows the compute dtype.
func (c OptimizerConfig) ResolveStorage(computeDType string) OptimizerConfig {
	if c.StorageDType == dtypes.InvalidDType {
		c.StorageDType = dtypes.Float32
		if computeDType == "bfloat16" {
			c.StorageDType = dtypes.BFloat16
		}
	}
	return c
}

// updateKind says which optimizer updates a parameter.
type updateKind int

const (
	muonUpdate updateKind = iota // Muon: orthogonalised momentum, 2-D matrices only
	adamUpdate                   // Adam with bias correction
)

// paramRule is how one trainable parameter is updated.
type paramRule struct {
	kind updateKind
	lr   float64 // base learning rate, multiplied by the schedule's scale
	wd   float64 // decoupled weight decay
	// bf16Weights (Adam): the gradient, the moments and the weights are
	// held in bfloat16, the arithmetic in float32 (the reference's tied
	// embedding on a GPU).
	bf16Weights bool
	// bf16Update (Muon): the scaled update is rounded to bfloat16 before it
	// is applied (the reference's updates_flat).
	bf16Update bool
}

// hostRoundBF16 rounds x to the nearest bfloat16 (ties to even, NaN kept) and
// returns it as a float32: torch's x.bfloat16().float().
func hostRoundBF16(x float32) float32 {
	if x != x {
		return x
	}
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// roundBF16 rounds float32 values to the nearest bfloat16 (ties to even)
// and returns them as float32: what storing them in bfloat16 keeps.
//
// It is float32 arithmetic, not a dtype conversion, because a conversion
// is not the same rounding everywhere: gomlx's pure-Go backend truncates
// float32 to bfloat16, and XLA on GPUs may drop a float32 -> bfloat16 ->
// float32 pair altogether (excess precision). With a = |x|:
//
//	h = c - (c - a), c = a*(2^23 + 1)    a rounded to 1 significant bit (Veltkamp)
//	p = h/2 if h > a else h              2^floor(log2 a)
//	r = (a + 1.5*2^16*p) - 1.5*2^16*p    a rounded to a multiple of p/128
//
// r is a rounded to 8 significant bits by float32 addition's own round to
// nearest even; the result is sign(x)*r. Zeros, non-finite values, values
// above 2^100 and float32 subnormals pass through unchanged.
func roundBF16(x *Node) *Node {
	a := Abs(x)
	c := MulScalar(a, 1<<23+1)
	h := Sub(c, Sub(c, a))
	p := Where(GreaterThan(h, a), MulScalar(h, 0.5), h)
	big := MulScalar(p, 1.5*(1<<16))
	r := Sub(Add(a, big), big)
	ok := And(GreaterOrEqual(a, Scalar(x.Graph(), x.DType(), 0x1p-126)), LessThan(a, Scalar(x.Graph(), x.DType(), 0x1p100)))
	return Where(ok, Mul(Sign(x), r), x)
}

// QuinticCoeffs are the baseline Muon's Newton-Schulz coefficients, used at
// every step: each iteration maps the singular values s of X to
// a*s + b*s^3 + c*s^5, pushing them towards 1 without needing an SVD.
var QuinticCoeffs = [3]float64{3.4445, -4.7750, 2.0315}

// PolarExpressCoeffs are the record's per-step Newton-Schulz coefficients
// (Polar Express, PR #1344, adopted by #1787; record-stack.md §3.2): step i
// uses row i, each once.
var PolarExpressCoeffs = [][3]float64{
	{8.156554524902461, -22.48329292557795, 15.878769915207462},
	{4.042929935166739, -2.808917465908714, 0.5000178451051316},
	{3.8916678022926607, -2.772484153217685, 0.5060648178503393},
	{3.285753657755655, -2.3681294933425376, 0.46449024233003106},
	{2.3465413258596377, -1.7097828382687081, 0.42323551169305323},
}

// newtonSchulzCoeffs returns the (a, b, c) of each of steps iterations for
// a coefficient set name. Polar Express defines five steps; like the
// record, more steps than that reuse the whole list once (steps beyond it
// are not run).
func newtonSchulzCoeffs(name string, steps int) ([][3]float64, error) {
	switch name {
	case "", "quintic":
		out := make([][3]float64, steps)
		for i := range out {
			out[i] = QuinticCoeffs
		}
		return out, nil
	case "polar-express":
		return PolarExpressCoeffs[:min(steps, len(PolarExpressCoeffs))], nil
	}
	return nil, fmt.Errorf("unknown Newton-Schulz coefficients %q (want quintic or polar-express)", name)
}

// NewtonSchulz returns an approximately orthogonal matrix with the singular
// vectors of the 2-D matrix g (the "zeroth power" U V^T of g = U S V^T),
// computed as Muon does with the quintic coefficients (NewtonSchulzWith).
func NewtonSchulz(g *Node, steps int, dtype dtypes.DType) *Node {
	coeffs, _ := newtonSchulzCoeffs("quintic", steps)
	return NewtonSchulzWith(g, coeffs, dtype)
}

// NewtonSchulzWith is NewtonSchulz with one (a, b, c) per iteration, as the
// reference's zeropower_via_newtonschulz5:
//
//	X = dtype(g)                      (rounded first, as the reference's G.bfloat16())
//	transpose X when rows > cols      (so X X^T is the smaller Gram matrix)
//	X = X / (||X||_F + 1e-7)          (norm accumulated in float32, rounded to dtype)
//	for each (a, b, c):  A = X X^T;  B = b A + c A A;  X = a X + B X
//
// The result has g's shape and dtype. The iteration does not converge
// exactly: singular values end in roughly [0.7, 1.2], which is what Muon
// wants.
func NewtonSchulzWith(g *Node, coeffs [][3]float64, dtype dtypes.DType) *Node {
	if g.Rank() != 2 {
		panic(fmt.Sprintf("NewtonSchulz needs a 2-D matrix, got shape %s", g.Shape()))
	}
	outDType := g.DType()
	f32 := func(n *Node) *Node { return ConvertDType(n, dtypes.Float32) }
	x := ConvertDType(g, dtype)
	// Two-stage sum of squares: row sums first, so the pure-Go backend (which
	// accumulates in the input dtype element by element) stays accurate.
	xf := f32(x)
	norm := ConvertDType(Sqrt(ReduceAllSum(ReduceSum(Square(xf), 1))), dtype)
	denom := f32(ConvertDType(AddScalar(f32(norm), 1e-7), dtype))
	x = ConvertDType(Div(xf, denom), dtype)
	transposed := g.Shape().Dimensions[0] > g.Shape().Dimensions[1]
	if transposed {
		x = Transpose(x, 0, 1)
	}
	// Matmul results come out in dtype (accumulated in float32 by the
	// backends); the element-wise combinations run in float32 and are rounded
	// to dtype once, as torch.compile's fused kernels do for the reference.
	for _, c := range coeffs {
		a := DotGeneral(x, []int{1}, nil, x, []int{1}, nil) // X X^T
		b := ConvertDType(Add(MulScalar(f32(a), c[1]), MulScalar(f32(Dot(a, a)), c[2])), dtype)
		x = ConvertDType(Add(MulScalar(f32(x), c[0]), f32(Dot(b, x))), dtype)
	}
	if transposed {
		x = Transpose(x, 0, 1)
	}
	return ConvertDType(x, outDType)
}

// rowNormalize divides each row of u by max(||row||_2, 1e-7), the norm
// accumulated in float32 (MuonEq-R).
func rowNormalize(u *Node) *Node {
	uf := ConvertDType(u, dtypes.Float32)
	n := MaxScalar(Sqrt(ReduceAndKeep(Square(uf), ReduceSum, -1)), 1e-7)
	return ConvertDType(Div(uf, n), u.DType())
}

// hyperNodes are the per-step scalars the optimizers read: fed as graph
// inputs so that changing them never recompiles the step.
type hyperNodes struct {
	lrScale  *Node // schedule multiplier of every base learning rate
	momentum *Node // Muon momentum for this step
	adamStep *Node // 1-based Adam step count t, for the bias corrections
}

// optimizerScope is the absolute context scope that holds optimizer state,
// apart from the model's parameters.
const optimizerScope = "/optimizer"

// stateVar returns (creating it zero-initialised if needed) the optimizer
// state variable kind ("muon", "adam_m", "adam_v") for parameter v.
func stateVar(ctx *context.Context, kind string, v *context.Variable) *context.Variable {
	sctx := ctx.InAbsPath(subScope(optimizerScope+"/"+kind, v.Scope())).Checked(false).WithInitializer(initializers.Zero)
	return sctx.VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
}

// subScope nests the absolute scope path under base: ("/optimizer/muon",
// "/block_0/attn") -> "/optimizer/muon/block_0/attn"; the root maps to base.
func subScope(base, path string) string {
	path = strings.Trim(path, context.ScopeSeparator)
	if path == "" {
		return base
	}
	return base + context.ScopeSeparator + path
}

// paramName is a variable's scoped name without the leading separator:
// "block_3/attn/c_q".
func paramName(v *context.Variable) string {
	n := v.ScopeAndName()
	if len(n) > 0 && n[0] == context.ScopeSeparator[0] {
		n = n[1:]
	}
	return n
}

// clipGlobalNorm rescales grads so their joint L2 norm is at most maxNorm:
// g *= min(1, maxNorm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
func clipGlobalNorm(grads []*Node, maxNorm float64) []*Node {
	if maxNorm <= 0 || len(grads) == 0 {
		return grads
	}
	var total *Node
	for _, gr := range grads {
		sq := Square(ConvertDType(gr, dtypes.Float32))
		var s *Node
		if sq.Rank() >= 2 {
			s = ReduceAllSum(ReduceSum(sq, sq.Rank()-1))
		} else {
			s = ReduceAllSum(sq)
		}
		if total == nil {
			total = s
		} else {
			total = Add(total, s)
		}
	}
	norm := Sqrt(total)
	coef := MinScalar(Div(Scalar(norm.Graph(), dtypes.Float32, maxNorm), AddScalar(norm, 1e-6)), 1.0)
	out := make([]*Node, len(grads))
	for i, gr := range grads {
		out[i] = Mul(gr, ConvertDType(coef, gr.DType()))
	}
	return out
}

// applyUpdate builds the update of one parameter v with gradient grad under
// rule r and writes the new value (and optimizer state) back to the context.
//
// Muon (Nesterov, as the reference):
//
//	buf = momentum*buf + g
//	u   = g + momentum*buf;  u = u / max(||u_row||, 1e-7) per row (MuonRowNormalize)
//	u   = NewtonSchulz(u) * sqrt(max(1, rows/cols))
//	p   = p*(1 - lr*wd) - lr*u
//
// (with r.bf16Update, u is rounded to bfloat16 before the last line).
//
// Adam (torch.optim.Adam's arithmetic, decoupled weight decay as AdamW):
//
//	m = b1*m + (1-b1)*g;   v = b2*v + (1-b2)*g^2
//	p = p*(1 - lr*wd) - (lr / (1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//
// where lr is the base rate times the schedule's scale. With
// r.bf16Weights, g arrives rounded to bfloat16, the new m, v and p are
// computed in float32 from it and the stored (bfloat16) m, v and p, and are
// stored rounded to bfloat16: the update of p uses the unrounded m and v,
// as torch's fused Adam kernel does on a bf16 parameter.
func (c OptimizerConfig) applyUpdate(ctx *context.Context, v *context.Variable, grad *Node, r paramRule, hp hyperNodes) {
	g := grad.Graph()
	p := v.ValueGraph(g)
	dtype := p.DType()
	lr := MulScalar(ConvertDType(hp.lrScale, dtype), r.lr)
	decayed := p
	if r.wd > 0 {
		decayed = Mul(p, OneMinus(MulScalar(lr, r.wd)))
	}
	switch r.kind {
	case muonUpdate:
		bufVar := stateVar(ctx, "muon", v)
		mom := ConvertDType(hp.momentum, dtype)
		buf := Add(Mul(mom, bufVar.ValueGraph(g)), grad)
		bufVar.SetValueGraph(buf)
		u := Add(grad, Mul(mom, buf))
		if c.MuonRowNormalize {
			u = rowNormalize(u)
		}
		coeffs, err := newtonSchulzCoeffs(c.NewtonSchulzCoeffs, c.NewtonSchulzSteps)
		if err != nil {
			panic(err) // Validate rejected this config already
		}
		u = NewtonSchulzWith(u, coeffs, c.NewtonSchulzDType)
		dims := v.Shape().Dimensions
		if scale := math.Sqrt(max(1, float64(dims[0])/float64(dims[1]))); scale != 1 {
			u = MulScalar(u, scale)
		}
		if r.bf16Update {
			u = roundBF16(u)
		}
		v.SetValueGraph(Sub(decayed, Mul(lr, u)))
	case adamUpdate:
		mVar, vVar := stateVar(ctx, "adam_m", v), stateVar(ctx, "adam_v", v)
		store := func(n *Node) *Node { return n }
		if r.bf16Weights {
			grad, store = roundBF16(grad), roundBF16
		}
		t := ConvertDType(hp.adamStep, dtype)
		b1 := Scalar(g, dtype, c.Beta1)
		b2 := Scalar(g, dtype, c.Beta2)
		m := Add(MulScalar(mVar.ValueGraph(g), c.Beta1), MulScalar(grad, 1-c.Beta1))
		sq := Add(MulScalar(vVar.ValueGraph(g), c.Beta2), MulScalar(Square(grad), 1-c.Beta2))
		mVar.SetValueGraph(store(m))
		vVar.SetValueGraph(store(sq))
		bc1 := OneMinus(Pow(b1, t))
		bc2 := OneMinus(Pow(b2, t))
		denom := AddScalar(Div(Sqrt(sq), Sqrt(bc2)), c.AdamEps)
		stepSize := Div(lr, bc1)
		v.SetValueGraph(store(Sub(decayed, Mul(stepSize, Div(m, denom)))))
	default:
		panic(fmt.Sprintf("train: unknown update kind %d for %q", r.kind, paramName(v)))
	}
}

// emaUpdate returns the exponential moving average after one more step,
// as the record updates its EMA after every optimizer step (§3.4):
//
//	ema = decay*ema + (1-decay)*p
func emaUpdate(ema, p *Node, decay float64) *Node {
	return Add(MulScalar(ema, decay), MulScalar(ConvertDType(p, ema.DType()), 1-decay))
}
