package model

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

func TestParamCounts(t *testing.T) {
	base, err := Preset("baseline")
	if err != nil {
		t.Fatal(err)
	}
	// The reference train_gpt.py baseline: 524,288 embedding + 9 x 1,837,064
	// per block + 4 x 512 skip weights.
	if got := base.NumParams(); got != 17_059_912 {
		t.Errorf("baseline has %d parameters, the reference 17,059,912", got)
	}
	tiny, _ := Preset("tiny")
	d, kv, h := 128, 64, 256
	perBlock := d*d + 2*kv*d + d*d + 4 + 2*h*d + 2*d + 2*d
	if want := 1024*d + 4*perBlock + 2*d; tiny.NumParams() != want {
		t.Errorf("tiny has %d parameters, want %d", tiny.NumParams(), want)
	}
	// The graph creates exactly the listed variables.
	ctx := mlctx.New()
	_, err = mlctx.ExecOnce(backend(t), ctx, func(ctx *mlctx.Context, in *graph.Node) *graph.Node {
		return TokenLosses(ctx, tiny, in, in, Options{})
	}, tensors.FromFlatDataAndDimensions([]int32{1, 2, 3, 4}, 1, 4))
	if err != nil {
		t.Fatal(err)
	}
	n, count := 0, 0
	for v := range ctx.IterVariables() {
		n += v.Shape().Size()
		count++
	}
	if n != tiny.NumParams() || count != len(tiny.Params()) {
		t.Errorf("graph made %d variables with %d values; config lists %d with %d", count, n, len(tiny.Params()), tiny.NumParams())
	}
}

func TestParamNamesAndClasses(t *testing.T) {
	cfg, _ := Preset("baseline")
	want := map[string]Class{
		"tok_emb": Embedding, "skip_weights": Control, "block_0/attn/c_q": Attention, "block_8/mlp/proj": MLP,
		"block_3/attn/q_gain": Control, "block_3/resid_mix": Control, "block_5/attn/c_k": Attention,
	}
	for name, class := range want {
		if p, ok := cfg.Param(name); !ok || p.Class != class {
			t.Errorf("%s: class %v, %v; want %v", name, p.Class, ok, class)
		}
	}
	for _, p := range cfg.Params() {
		if p.Class.IsMatrix() && len(p.Shape) != 2 {
			t.Errorf("matrix %s has shape %v", p.Name, p.Shape)
		}
		if strings.HasSuffix(p.Name, "c_k") && (p.Shape[0] != 256 || p.Shape[1] != 512) {
			t.Errorf("c_k must be [kv_dim, dim] = [256, 512] ([out, in]), got %v", p.Shape)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, p := range Presets() {
		cfg, err := Preset(p)
		if err != nil || cfg.Validate() != nil {
			t.Errorf("preset %s: %v %v", p, err, cfg.Validate())
		}
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
	bad := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.NumHeads = 3 }, "must divide model_dim"},
		{func(c *Config) { c.NumKVHeads = 3 }, "must divide num_heads"},
		{func(c *Config) { c.ModelDim, c.NumHeads, c.NumKVHeads = 12, 4, 4 }, "even for RoPE"},
		{func(c *Config) { c.VocabSize = 70000 }, "uint16"},
		{func(c *Config) { c.ComputeDType = "float16" }, "compute_dtype"},
		{func(c *Config) { c.QAT = &QATConfig{Bits: 9} }, "qat bits"},
	}
	for _, b := range bad {
		cfg, _ := Preset("tiny")
		b.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want error containing %q, got %v", b.want, err)
		}
	}
}

func TestInitWeightsDeterministic(t *testing.T) {
	cfg := microConfig()
	a, _ := InitWeights(cfg, 5)
	b, _ := InitWeights(cfg, 5)
	c, _ := InitWeights(cfg, 6)
	emb := func(w Weights) []float32 { t, _ := w.Get("tok_emb"); return t.Data }
	if relDiff(emb(a), emb(b)) != 0 || relDiff(emb(a), emb(c)) == 0 {
		t.Error("same seed must give the same weights, another seed others")
	}
	// Reference initial values.
	for _, tt := range a {
		switch {
		case strings.HasSuffix(tt.Name, "/proj"):
			for _, v := range tt.Data {
				if v != 0 {
					t.Fatalf("%s must be zero-initialised", tt.Name)
				}
			}
		case strings.HasSuffix(tt.Name, "q_gain"):
			if tt.Data[0] != 1.5 {
				t.Errorf("q_gain init %v", tt.Data[0])
			}
		case strings.HasSuffix(tt.Name, "resid_mix"):
			if tt.Data[0] != 1 || tt.Data[cfg.ModelDim] != 0 {
				t.Errorf("resid_mix init %v", tt.Data)
			}
		case strings.HasSuffix(tt.Name, "/c_q"):
			bound := float32(1 / math.Sqrt(float64(cfg.ModelDim)))
			for _, v := range tt.Data {
				if v < -bound || v > bound {
					t.Fatalf("c_q value %v outside ±1/sqrt(in)", v)
				}
			}
		}
	}
	// The graph's variables start from the same host initialisation.
	ctx := mlctx.New()
	ctx.SetParam(mlctx.ParamInitialSeed, int64(5))
	_, err := mlctx.ExecOnce(backend(t), ctx, func(ctx *mlctx.Context, in *graph.Node) *graph.Node {
		return TokenLosses(ctx, cfg, in, in, Options{})
	}, tensors.FromFlatDataAndDimensions([]int32{1, 2}, 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	got, err := WeightsFromContext(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if relDiff(got[i].Data, a[i].Data) != 0 {
			t.Errorf("%s in the context differs from InitWeights", a[i].Name)
		}
	}
}

func TestLoadWeightsRoundTripAndErrors(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 1)
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	back, err := WeightsFromContext(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w {
		if back[i].Name != w[i].Name || relDiff(back[i].Data, w[i].Data) != 0 {
			t.Fatalf("%s did not round-trip", w[i].Name)
		}
	}
	swapped := append(Weights{}, w...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	if err := CheckWeights(cfg, swapped); err != nil {
		t.Errorf("CheckWeights must accept any order: %v", err)
	}
	if err := CheckOrderedWeights(cfg, swapped); err == nil || !strings.Contains(err.Error(), `tensor 0 is "skip_weights"`) {
		t.Errorf("CheckOrderedWeights on swapped tensors: %v", err)
	}
	missing := append(Weights{}, w[1:]...)
	if err := LoadWeights(mlctx.New(), cfg, missing); err == nil || !strings.Contains(err.Error(), `missing tensor "tok_emb"`) {
		t.Errorf("missing tensor: %v", err)
	}
	wrong := append(Weights{}, w...)
	wrong[0] = Tensor{Name: "tok_emb", Shape: []int{40, 8}, Data: make([]float32, 320)}
	if err := LoadWeights(mlctx.New(), cfg, wrong); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong shape: %v", err)
	}
}

// TestMatMulGradientsMatchBuiltin checks the matmul-built gradients against
// gomlx's own autodiff on every layout the model uses.
func TestMatMulGradientsMatchBuiltin(t *testing.T) {
	cases := []struct {
		name   string
		a, b   []int
		mm     func(a, b *graph.Node) *graph.Node
		outDim []int
	}{
		{"linear NT", []int{6, 5}, []int{4, 5}, MatMulNT, []int{6, 4}},
		{"batched NT (scores)", []int{3, 6, 5}, []int{3, 4, 5}, MatMulNT, []int{3, 6, 4}},
		{"batched NN (probs·V)", []int{3, 6, 4}, []int{3, 4, 5}, MatMulNN, []int{3, 6, 5}},
	}
	rng := rand.New(rand.NewPCG(3, 3))
	randT := func(dims []int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	for _, c := range cases {
		ta, tb, tr := randT(c.a), randT(c.b), randT(c.outDim)
		grads := func(builtin bool) [][]float64 {
			UseBuiltinMatmulGradient(builtin)
			defer UseBuiltinMatmulGradient(false)
			out, err := execN(t, func(a, b, r *graph.Node) []*graph.Node {
				loss := graph.ReduceAllSum(graph.Mul(c.mm(a, b), r))
				return graph.Gradient(loss, a, b)
			}, ta, tb, tr)
			if err != nil {
				t.Fatal(err)
			}
			return [][]float64{tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])}
		}
		ours, ref := grads(false), grads(true)
		for i := range ours {
			for j := range ours[i] {
				if math.Abs(ours[i][j]-ref[i][j]) > 1e-12*math.Max(1, math.Abs(ref[i][j])) {
					t.Fatalf("%s: gradient %d differs at %d: %g vs builtin %g", c.name, i, j, ours[i][j], ref[i][j])
				}
			}
		}
	}
}

// TestModelGradients compares the whole model's gradients with gomlx's
// built-in autodiff and, for a few parameters, with central finite
// differences of the loss.
func TestModelGradients(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 2)
	const b, seq = 2, 8
	in, tg := randomTokens(b*seq, cfg.VocabSize, 1), randomTokens(b*seq, cfg.VocabSize, 2)
	loss, ours := lossAndGrads(t, cfg, w, in, tg, b, seq)
	UseBuiltinMatmulGradient(true)
	_, ref := lossAndGrads(t, cfg, w, in, tg, b, seq)
	UseBuiltinMatmulGradient(false)
	for i, p := range cfg.Params() {
		if d := relDiff(ours[i], ref[i]); d > 1e-4 {
			t.Errorf("%s: gradient differs from gomlx's built-in by %.2g (relative)", p.Name, d)
		}
	}
	// Finite differences on one element of parameters of each kind.
	for i, p := range cfg.Params() {
		if p.Name != "tok_emb" && p.Name != "skip_weights" && !strings.HasPrefix(p.Name, "block_1/") {
			continue
		}
		j := (7 * i) % p.NumElements()
		const eps = 1e-2
		shifted := func(delta float32) float64 {
			w2 := append(Weights{}, w...)
			d := append([]float32{}, w[i].Data...)
			d[j] += delta
			w2[i] = Tensor{Name: p.Name, Shape: p.Shape, Data: d}
			l, _ := lossAndGrads(t, cfg, w2, in, tg, b, seq)
			return l
		}
		fd := (shifted(eps) - shifted(-eps)) / (2 * eps)
		g := float64(ours[i][j])
		if math.Abs(fd-g) > 0.03*math.Abs(g)+2e-4 {
			t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", p.Name, j, g, fd)
		}
	}
	if math.IsNaN(loss) {
		t.Fatal("NaN loss")
	}
}

func TestLossAtInitIsLogVocab(t *testing.T) {
	cfg, _ := Preset("tiny")
	w, _ := InitWeights(cfg, 1)
	const b, seq = 2, 64
	l := tokenLosses(t, cfg, w, randomTokens(b*seq, cfg.VocabSize, 3), randomTokens(b*seq, cfg.VocabSize, 4), b, seq)
	var mean float64
	for _, v := range l {
		mean += float64(v)
	}
	mean /= float64(len(l))
	if math.Abs(mean-math.Log(float64(cfg.VocabSize))) > 0.02 {
		t.Errorf("loss at init %.4f, want ln(1024) = %.4f", mean, math.Log(1024))
	}
}

// TestCausal: a position's loss must not change when later tokens do.
func TestCausal(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 4)
	in, tg := randomTokens(8, cfg.VocabSize, 5), randomTokens(8, cfg.VocabSize, 6)
	before := tokenLosses(t, cfg, w, in, tg, 1, 8)
	in2 := append([]int32{}, in...)
	in2[5], in2[7] = (in2[5]+1)%40, (in2[7]+3)%40
	after := tokenLosses(t, cfg, w, in2, tg, 1, 8)
	for p := range 8 {
		same := before[p] == after[p]
		if p < 5 && !same {
			t.Errorf("position %d changed when a later token changed", p)
		}
		if p == 5 && same {
			t.Errorf("position 5 did not react to its own input")
		}
	}
}

// TestRopeAndRMSNorm checks both against the reference formulas on the host.
func TestRopeAndRMSNorm(t *testing.T) {
	cfg := microConfig()
	const seq, hd = 5, 4
	x := make([]float32, 2*seq*hd)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*1.7) * 3)
	}
	out, err := execN(t, func(xn *graph.Node) []*graph.Node {
		f := &forward{cfg: cfg, g: xn.Graph(), t: seq}
		return []*graph.Node{f.rope(xn), rmsNorm(xn)}
	}, tensors.FromFlatDataAndDimensions(x, 2, seq, hd))
	if err != nil {
		t.Fatal(err)
	}
	rope, norm := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
	for h := range 2 {
		for p := range seq {
			v := x[(h*seq+p)*hd : (h*seq+p+1)*hd]
			var ms float64
			for _, e := range v {
				ms += float64(e) * float64(e)
			}
			ms /= hd
			for j := range hd / 2 {
				ang := float64(p) / math.Pow(10000, float64(2*j)/hd)
				c, s := math.Cos(ang), math.Sin(ang)
				x1, x2 := float64(v[j]), float64(v[j+hd/2])
				want1, want2 := x1*c+x2*s, -x1*s+x2*c
				got := rope[(h*seq+p)*hd:]
				if math.Abs(float64(got[j])-want1) > 1e-4 || math.Abs(float64(got[j+hd/2])-want2) > 1e-4 {
					t.Fatalf("rope pos %d pair %d: got %v,%v want %v,%v", p, j, got[j], got[j+hd/2], want1, want2)
				}
			}
			for j := range hd {
				want := float64(v[j]) / math.Sqrt(ms+rmsEps)
				if math.Abs(float64(norm[(h*seq+p)*hd+j])-want) > 1e-5 {
					t.Fatalf("rmsnorm: got %v want %v", norm[(h*seq+p)*hd+j], want)
				}
			}
		}
	}
}

// TestSGDReducesLoss: a few plain gradient steps on one batch lower its loss.
func TestSGDReducesLoss(t *testing.T) {
	cfg := microConfig()
	w, _ := InitWeights(cfg, 9)
	const b, seq = 2, 8
	in, tg := randomTokens(b*seq, cfg.VocabSize, 7), randomTokens(b*seq, cfg.VocabSize, 8)
	first, _ := lossAndGrads(t, cfg, w, in, tg, b, seq)
	loss := first
	for range 15 {
		var grads [][]float32
		loss, grads = lossAndGrads(t, cfg, w, in, tg, b, seq)
		for i := range w {
			d := append([]float32{}, w[i].Data...)
			for j := range d {
				d[j] -= 0.5 * grads[i][j]
			}
			w[i] = Tensor{Name: w[i].Name, Shape: w[i].Shape, Data: d}
		}
	}
	if !(loss < first-0.3) {
		t.Errorf("loss went from %.4f to %.4f after 15 SGD steps", first, loss)
	}
}

func TestBFloat16Compute(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 3)
	in, tg := randomTokens(8, cfg.VocabSize, 1), randomTokens(8, cfg.VocabSize, 2)
	f32 := tokenLosses(t, cfg, w, in, tg, 1, 8)
	cfg.ComputeDType = "bfloat16"
	bf := tokenLosses(t, cfg, w, in, tg, 1, 8)
	if d := relDiff(bf, f32); d > 0.05 || d == 0 {
		t.Errorf("bf16 losses differ from f32 by %.3g (want small but non-zero)", d)
	}
}

// TestQAT: switched off it changes nothing; switched on the forward pass
// sees per-row quantized matrices and the gradient passes straight through.
func TestQAT(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 5)
	const b, seq = 1, 8
	in, tg := randomTokens(8, cfg.VocabSize, 3), randomTokens(8, cfg.VocabSize, 4)
	plain := tokenLosses(t, cfg, w, in, tg, b, seq)

	// Host reference: quantize each matrix row with max-abs clip at 4 bits.
	wq := append(Weights{}, w...)
	for i, p := range cfg.Params() {
		if !p.Class.IsMatrix() {
			continue
		}
		rows, cols := p.Shape[0], p.Shape[1]
		d := append([]float32{}, w[i].Data...)
		for r := range rows {
			var c float32
			for _, v := range d[r*cols : (r+1)*cols] {
				c = max(c, float32(math.Abs(float64(v))))
			}
			s := c / 7
			for j := r * cols; j < (r+1)*cols; j++ {
				q := float32(math.RoundToEven(float64(d[j] / s)))
				d[j] = min(max(q, -7), 7) * s
			}
		}
		wq[i] = Tensor{Name: p.Name, Shape: p.Shape, Data: d}
	}
	quantized := tokenLosses(t, cfg, wq, in, tg, b, seq)

	qcfg := cfg
	qcfg.QAT = &QATConfig{Bits: 4}
	ctx := mlctx.New()
	if err := LoadWeights(ctx, qcfg, w); err != nil {
		t.Fatal(err)
	}
	exec, err := mlctx.NewExec(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) *graph.Node {
		return TokenLosses(ctx, qcfg, in, tg, Options{})
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func() []float32 {
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq))
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	if d := relDiff(run(), plain); d > 1e-6 {
		t.Errorf("QAT switched off changed the losses by %.3g", d)
	}
	if err := SetQATEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(run(), quantized); d > 1e-4 {
		t.Errorf("QAT switched on differs from the host-quantized model by %.3g", d)
	}
	if d := relDiff(quantized, plain); d < 1e-3 {
		t.Errorf("4-bit quantization should change the losses (%.3g)", d)
	}
	// Switched on before the graph exists, it is on from the first run.
	early := mlctx.New()
	if err := LoadWeights(early, qcfg, w); err != nil {
		t.Fatal(err)
	}
	if err := SetQATEnabled(early, true); err != nil {
		t.Fatal(err)
	}
	got := tokenLossesCtx(t, early, qcfg, in, tg, b, seq)
	if d := relDiff(got, quantized); d > 1e-4 {
		t.Errorf("QAT switched on before building the graph differs from the host-quantized model by %.3g", d)
	}
}

// TestInputGrams: at initialisation block 0 sees x = rmsnorm(emb[token])
// (resid_mix = [1, 0], zero projections), so the Gram of c_q's input is
// computable on the host.
func TestInputGrams(t *testing.T) {
	cfg := microConfig()
	w, _ := InitWeights(cfg, 2)
	in := randomTokens(8, cfg.VocabSize, 9)
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	names := []string{"block_0/attn/c_q", "block_0/attn/c_k", "block_2/mlp/proj", "tok_emb"}
	out, err := mlctx.ExecOnceN(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in *graph.Node) []*graph.Node {
		g := InputGrams(ctx, cfg, in, Options{})
		var res []*graph.Node
		for _, n := range names {
			res = append(res, g[n])
		}
		return res
	}, tensors.FromFlatDataAndDimensions(in, 1, 8))
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := w.Get("tok_emb")
	d := cfg.ModelDim
	norm := func(v []float64) []float64 {
		var ms float64
		for _, e := range v {
			ms += e * e
		}
		ms /= float64(len(v))
		o := make([]float64, len(v))
		for i, e := range v {
			o[i] = e / math.Sqrt(ms+rmsEps)
		}
		return o
	}
	want := make([]float32, d*d)
	for _, tok := range in {
		x := make([]float64, d)
		for j := range d {
			x[j] = float64(emb.Data[int(tok)*d+j])
		}
		x = norm(norm(norm(x))) // embedding norm, block input (x0), attn_norm
		for i := range d {
			for j := range d {
				want[i*d+j] += float32(x[i] * x[j])
			}
		}
	}
	q := tensors.MustCopyFlatData[float32](out[0])
	if dd := relDiff(q, want); dd > 1e-4 {
		t.Errorf("c_q input Gram differs from the host computation by %.3g", dd)
	}
	if relDiff(tensors.MustCopyFlatData[float32](out[1]), q) != 0 {
		t.Error("c_k and c_q read the same input and must share the Gram")
	}
	if s := out[2].Shape(); !s.Equal(shapes.Make(dtypes.Float32, cfg.MLPHidden, cfg.MLPHidden)) {
		t.Errorf("mlp/proj Gram shape %s", s)
	}
	if s := out[3].Shape(); !s.Equal(shapes.Make(dtypes.Float32, d, d)) {
		t.Errorf("tok_emb Gram shape %s", s)
	}
}

// TestMatmulTableForgetsCollectedGraphs: the side table of recorded matmuls
// must not keep finished graphs alive.
func TestMatmulTableForgetsCollectedGraphs(t *testing.T) {
	count := func() int {
		n := 0
		matmulNodes.m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	for range 3 {
		cfg := microConfig()
		_ = tokenLosses(t, cfg, randomWeights(cfg, 1), randomTokens(8, 40, 1), randomTokens(8, 40, 2), 1, 8)
	}
	if count() == 0 {
		t.Fatal("building the model recorded no matmuls")
	}
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(); n > 0 {
		t.Errorf("%d matmul nodes still recorded after their graphs were collected", n)
	}
}

func TestRoundHalfEven(t *testing.T) {
	in := []float32{-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7, -126.5, 126.5}
	out, err := execN(t, func(x *graph.Node) []*graph.Node { return []*graph.Node{roundHalfEven(x)} },
		tensors.FromFlatDataAndDimensions(in, len(in)))
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out[0])
	for i, x := range in {
		if want := float32(math.RoundToEven(float64(x))); got[i] != want {
			t.Errorf("round(%v) = %v, want %v", x, got[i], want)
		}
	}
}

// TestQATByClass: a class's own rule (here the MLP at 3 bits, attention at
// the default 4) fake-quantizes that class's matrices.
func TestQATByClass(t *testing.T) {
	cfg := microConfig()
	w := randomWeights(cfg, 6)
	const b, seq = 1, 8
	in, tg := randomTokens(8, cfg.VocabSize, 5), randomTokens(8, cfg.VocabSize, 6)
	wq := append(Weights{}, w...)
	for i, p := range cfg.Params() {
		if !p.Class.IsMatrix() {
			continue
		}
		qmax := float32(7)
		if p.Class == MLP {
			qmax = 3
		}
		rows, cols := p.Shape[0], p.Shape[1]
		d := append([]float32{}, w[i].Data...)
		for r := range rows {
			var c float32
			for _, v := range d[r*cols : (r+1)*cols] {
				c = max(c, float32(math.Abs(float64(v))))
			}
			s := c / qmax
			for j := r * cols; j < (r+1)*cols; j++ {
				q := float32(math.RoundToEven(float64(d[j] / s)))
				d[j] = min(max(q, -qmax), qmax) * s
			}
		}
		wq[i] = Tensor{Name: p.Name, Shape: p.Shape, Data: d}
	}
	want := tokenLosses(t, cfg, wq, in, tg, b, seq)
	qcfg := cfg
	qcfg.QAT = &QATConfig{Bits: 4, ByClass: map[Class]QATRule{MLP: {Bits: 3}}}
	if err := qcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	if err := LoadWeights(ctx, qcfg, w); err != nil {
		t.Fatal(err)
	}
	if err := SetQATEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	if d := relDiff(tokenLossesCtx(t, ctx, qcfg, in, tg, b, seq), want); d > 1e-4 {
		t.Errorf("per-class QAT differs from the host-quantized model by %.3g", d)
	}
	bad := cfg
	bad.QAT = &QATConfig{Bits: 4, ByClass: map[Class]QATRule{Embedding: {Bits: 3}}}
	if bad.Validate() == nil {
		t.Error("a QAT rule for the embedding accepted")
	}
}
