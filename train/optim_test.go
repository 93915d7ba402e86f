package train

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/compute"
)

var (
	backendOnce sync.Once
	testBackend backends.Backend
	backendErr  error
)

// goBackend opens the pure-Go backend once for all tests of the package.
func goBackend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() { testBackend, _, backendErr = compute.Open("go") })
	if backendErr != nil {
		t.Fatalf("open backend: %v", backendErr)
	}
	return testBackend
}

// matrix is a dense row-major float64 matrix for host-side reference maths.
type matrix struct {
	r, c int
	v    []float64
}

func newMatrix(r, c int) matrix { return matrix{r, c, make([]float64, r*c)} }

func (m matrix) at(i, j int) float64 { return m.v[i*m.c+j] }

func (m matrix) t() matrix {
	o := newMatrix(m.c, m.r)
	for i := range m.r {
		for j := range m.c {
			o.v[j*o.c+i] = m.at(i, j)
		}
	}
	return o
}

func mul(a, b matrix) matrix {
	o := newMatrix(a.r, b.c)
	for i := range a.r {
		for k := range a.c {
			x := a.at(i, k)
			for j := range b.c {
				o.v[i*o.c+j] += x * b.at(k, j)
			}
		}
	}
	return o
}

// axpby returns alpha*x + beta*y element-wise.
func axpby(alpha float64, x matrix, beta float64, y matrix) matrix {
	o := newMatrix(x.r, x.c)
	for i := range o.v {
		o.v[i] = alpha*x.v[i] + beta*y.v[i]
	}
	return o
}

// hostNewtonSchulz is the reference's zeropower_via_newtonschulz5 in float64.
func hostNewtonSchulz(g matrix, steps int) matrix {
	norm := 0.0
	for _, x := range g.v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	x := axpby(1/(norm+1e-7), g, 0, g)
	transposed := g.r > g.c
	if transposed {
		x = x.t()
	}
	for range steps {
		a := mul(x, x.t())
		b := axpby(QuinticCoeffs[1], a, QuinticCoeffs[2], mul(a, a))
		x = axpby(QuinticCoeffs[0], x, 1, mul(b, x))
	}
	if transposed {
		x = x.t()
	}
	return x
}

func randomMatrix(rng *rand.Rand, r, c int, std float64) matrix {
	m := newMatrix(r, c)
	for i := range m.v {
		m.v[i] = rng.NormFloat64() * std
	}
	return m
}

func toF64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

func toF32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

// stepper runs optimizer updates of a single parameter "w" in a fresh
// context: each call feeds one gradient and the step's hyperparameters.
type stepper struct {
	t    *testing.T
	ctx  *context.Context
	exec *context.Exec
}

func newStepper(t *testing.T, cfg OptimizerConfig, rule paramRule, init matrix) *stepper {
	t.Helper()
	ctx := context.New()
	ctx.VariableWithValue("w", tensors.FromFlatDataAndDimensions(toF32(init.v), init.r, init.c))
	exec, err := context.NewExec(goBackend(t), ctx, func(ctx *context.Context, grad, lrScale, mom, step *Node) *Node {
		v := ctx.GetVariableByScopeAndName(context.RootScope, "w")
		cfg.applyUpdate(ctx, v, grad, rule, hyperNodes{lrScale: lrScale, momentum: mom, adamStep: step})
		return ReduceAllSum(grad)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &stepper{t: t, ctx: ctx, exec: exec}
}

func (s *stepper) step(grad matrix, lrScale, mom float64, adamStep int) []float32 {
	s.t.Helper()
	_, err := s.exec.Exec(tensors.FromFlatDataAndDimensions(toF32(grad.v), grad.r, grad.c),
		float32(lrScale), float32(mom), float32(adamStep))
	if err != nil {
		s.t.Fatal(err)
	}
	v := s.ctx.GetVariableByScopeAndName(context.RootScope, "w")
	return tensors.MustCopyFlatData[float32](v.MustValue())
}

// assertRelFrobenius checks ||got-want||_F <= tol * ||want||_F.
func assertRelFrobenius(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	var d, n float64
	for i := range got {
		x := float64(got[i]) - want[i]
		d += x * x
		n += want[i] * want[i]
	}
	if r := math.Sqrt(d / n); !(r <= tol) {
		t.Fatalf("%s: relative Frobenius error %.4f > %.4f", what, r, tol)
	}
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %.8g, want %.8g (|diff| %.3g > %.3g)", what, i, got[i], want[i], d, tol)
		}
	}
}

// Adam's first two steps, worked by hand. Step 1 moves every weight by
// exactly lr*sign(g) (the bias corrections cancel the (1-beta) factors).
func TestAdamTwoStepsByHand(t *testing.T) {
	cfg := DefaultOptimizer()
	p0 := matrix{1, 3, []float64{1, -2, 0.5}}
	g1 := matrix{1, 3, []float64{0.5, 0.1, -0.02}}
	g2 := matrix{1, 3, []float64{-0.5, 0.3, -0.02}}
	s := newStepper(t, cfg, paramRule{kind: adamUpdate, lr: 0.05}, p0)

	// Step 1 at half the learning rate: lr = 0.025, p -= 0.025*sign(g).
	got := s.step(g1, 0.5, 0, 1)
	assertClose(t, "step 1", got, []float64{0.975, -2.025, 0.525}, 2e-7)

	// Step 2 at full rate, t = 2:
	//   m = 0.9*0.1*g1 + 0.1*g2, v = 0.95*0.05*g1^2 + 0.05*g2^2,
	//   bc1 = 1-0.9^2 = 0.19, bc2 = 1-0.95^2 = 0.0975.
	// For the first weight: m = 0.045-0.05 = -0.005, v = 0.011875+0.0125 =
	// 0.024375, sqrt(v/bc2) = sqrt(0.25) = 0.5, so
	// p = 0.975 - (0.05/0.19) * (-0.005/0.5) = 0.975 + 0.05*0.01/0.19.
	// Third weight: g constant, m/bc1 = g, v/bc2 = g^2, so p -= 0.05*sign(g).
	m2 := 0.9*0.1*0.1 + 0.1*0.3
	v2 := 0.95*0.05*0.01 + 0.05*0.09
	want := []float64{
		0.975 + 0.05*0.01/0.19,
		-2.025 - (0.05/0.19)*m2/(math.Sqrt(v2)/math.Sqrt(0.0975)+1e-8),
		0.525 + 0.05,
	}
	got = s.step(g2, 1, 0, 2)
	assertClose(t, "step 2", got, want, 3e-7)
}

// Decoupled weight decay shrinks the weight by (1 - lr*wd) before the step.
func TestAdamWeightDecay(t *testing.T) {
	cfg := DefaultOptimizer()
	p0 := matrix{1, 2, []float64{2, -4}}
	g := matrix{1, 2, []float64{1, -1}}
	s := newStepper(t, cfg, paramRule{kind: adamUpdate, lr: 0.1, wd: 0.5}, p0)
	// lr = 0.1: p = p*(1-0.05) - 0.1*sign(g).
	got := s.step(g, 1, 0, 1)
	assertClose(t, "decayed", got, []float64{2*0.95 - 0.1, -4*0.95 + 0.1}, 1e-6)
}

// For g = k*I the iteration stays diagonal and each singular value follows
// the scalar quintic s <- a s + b s^3 + c s^5 from s0 = 1/sqrt(n).
func TestNewtonSchulzIdentityByHand(t *testing.T) {
	const n = 3
	s := 1 / math.Sqrt(n)
	for range 5 {
		s = QuinticCoeffs[0]*s + QuinticCoeffs[1]*s*s*s + QuinticCoeffs[2]*s*s*s*s*s
	}
	g := newMatrix(n, n)
	for i := range n {
		g.v[i*n+i] = 7
	}
	got := runNewtonSchulz(t, g, dtypes.Float32)
	want := make([]float64, n*n)
	for i := range n {
		want[i*n+i] = s
	}
	assertClose(t, "NS(7I)", got, want, 1e-5)
}

func runNewtonSchulz(t *testing.T, g matrix, dtype dtypes.DType) []float32 {
	t.Helper()
	out, err := context.ExecOnce(goBackend(t), nil, func(_ *context.Context, x *Node) *Node {
		return NewtonSchulz(x, 5, dtype)
	}, tensors.FromFlatDataAndDimensions(toF32(g.v), g.r, g.c))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](out)
}

// NewtonSchulz on random wide and tall matrices against the float64 host
// version: tight in float32, within bf16's ~3 significant digits in bf16.
func TestNewtonSchulzMatchesHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dims := range [][2]int{{8, 16}, {16, 8}, {12, 12}} {
		g := randomMatrix(rng, dims[0], dims[1], 0.3)
		want := hostNewtonSchulz(g, 5)
		assertClose(t, "f32", runNewtonSchulz(t, g, dtypes.Float32), want.v, 2e-5)
		// bf16 keeps 8 significant bits; the quintic amplifies rounding in the
		// directions of small singular values (by up to a^5 ~ 500), so even a
		// host simulation that rounds at the same points differs from float64
		// by ~3% (Frobenius): the reference's own bf16 noise.
		assertRelFrobenius(t, "bf16", runNewtonSchulz(t, g, dtypes.BFloat16), want.v, 0.05)
	}
}

// Two Muon steps (Nesterov momentum, orthogonalisation, rows/cols scale)
// against the reference's update computed in float64 on the host.
func TestMuonTwoStepsMatchHost(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dims := range [][2]int{{6, 10}, {10, 6}} {
		for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16} {
			cfg := DefaultOptimizer()
			cfg.NewtonSchulzDType = dtype
			const lr, wd = 0.04, 0.1
			p := randomMatrix(rng, dims[0], dims[1], 0.1)
			g1 := randomMatrix(rng, dims[0], dims[1], 1)
			g2 := randomMatrix(rng, dims[0], dims[1], 1)
			s := newStepper(t, cfg, paramRule{kind: muonUpdate, lr: lr, wd: wd}, p)
			scale := math.Sqrt(max(1, float64(dims[0])/float64(dims[1])))

			buf := newMatrix(dims[0], dims[1])
			for i, step := range []struct {
				g        matrix
				lrScale  float64
				momentum float64
			}{{g1, 1, 0.85}, {g2, 0.5, 0.9}} {
				buf = axpby(step.momentum, buf, 1, step.g)
				u := hostNewtonSchulz(axpby(1, step.g, step.momentum, buf), 5)
				l := lr * step.lrScale
				decayed := axpby(1-l*wd, p, 0, p)
				p = axpby(1, decayed, -l*scale, u)
				got := s.step(step.g, step.lrScale, step.momentum, i+1)
				if dtype == dtypes.Float32 {
					assertClose(t, "f32", got, p.v, 1e-6)
					continue
				}
				// bf16: compare the step itself, (decayed - got) / (lr*scale) vs u,
				// within bf16's orthogonalisation noise (see above).
				du := make([]float32, len(got))
				for j := range got {
					du[j] = float32((decayed.v[j] - float64(got[j])) / (l * scale))
				}
				assertRelFrobenius(t, "bf16 update", du, u.v, 0.05)
				copy(p.v, toF64(got)) // continue from the graph's weights
			}
		}
	}
}

// Global-norm clipping: gradients with joint norm 5 clipped to 1 are scaled
// by 1/(5+1e-6); gradients already within the bound are unchanged.
func TestClipGlobalNorm(t *testing.T) {
	for _, tc := range []struct {
		max, scale float64
	}{{1, 1 / (5 + 1e-6)}, {10, 1}} {
		out, err := context.ExecOnceN(goBackend(t), nil, func(_ *context.Context, a, b *Node) []*Node {
			return clipGlobalNorm([]*Node{a, b}, tc.max)
		}, []float32{3}, [][]float32{{0, 4}})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "a", tensors.MustCopyFlatData[float32](out[0]), []float64{3 * tc.scale}, 1e-6)
		assertClose(t, "b", tensors.MustCopyFlatData[float32](out[1]), []float64{0, 4 * tc.scale}, 1e-6)
	}
}

// The token embedding trains at the baseline's token_lr: TIED_EMBED_LR with
// a tied head, EMBED_LR beside an untied one (whose head is at HEAD_LR).
func TestEmbeddingLearningRateFollowsTying(t *testing.T) {
	cfg, s, err := PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	opt := s.Optimizer
	opt.EmbedLR, opt.UntiedEmbedLR, opt.HeadLR = 0.05, 0.6, 0.008
	for _, untied := range []bool{false, true} {
		c := cfg
		c.UntiedHead = untied
		net, err := modelNetwork(c, opt)
		if err != nil {
			t.Fatal(err)
		}
		lr := map[string]float64{}
		for _, p := range net.params {
			lr[p.name] = p.rule.lr
		}
		wantEmb, wantHead := 0.05, 0.0
		if untied {
			wantEmb, wantHead = 0.6, 0.008
		}
		if lr["tok_emb"] != wantEmb {
			t.Errorf("untied=%v: tok_emb lr %v, want %v", untied, lr["tok_emb"], wantEmb)
		}
		if got, ok := lr["lm_head"]; ok != untied || got != wantHead {
			t.Errorf("untied=%v: lm_head lr %v (present %v), want %v", untied, got, ok, wantHead)
		}
	}
}
