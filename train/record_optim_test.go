package train

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// recordOptimGolden is testdata/optim_golden.json.gz, written by
// gen_optim_golden.py from the record's own train_gpt.py.
type recordOptimGolden struct {
	Config map[string]float64 `json:"config"`
	FP32   struct {
		Initial map[string]string   `json:"initial"`
		Grads   []map[string]string `json:"grads"`
		Steps   []recordOptimStep   `json:"steps"`
	} `json:"fp32"`
	BF16 struct {
		Steps []recordOptimStep `json:"steps"`
	} `json:"bf16"`
	Schedule []struct {
		Step      int     `json:"step"`
		ElapsedMs float64 `json:"elapsed_ms"`
		Frac      float64 `json:"frac"`
		LRMul     float64 `json:"lr_mul"`
	} `json:"schedule"`
}

type recordOptimStep struct {
	LRScale  float64           `json:"lr_scale"`
	Momentum float64           `json:"momentum"`
	Params   map[string]string `json:"params"`
	EMA      map[string]string `json:"ema"`
}

func loadRecordOptimGolden(t *testing.T) *recordOptimGolden {
	t.Helper()
	f, err := os.Open("testdata/optim_golden.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var g recordOptimGolden
	if err := json.NewDecoder(zr).Decode(&g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func decodeF32(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad golden tensor: %v", err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// recordMicroConfig is the model the generator builds with the record's
// GPT(h), as a golf config.
func recordMicroConfig(c map[string]float64) model.Config {
	m, _ := model.Preset("tiny-record")
	m.Name = "record-micro"
	m.VocabSize, m.NumLayers, m.ModelDim = int(c["vocab_size"]), int(c["num_layers"]), int(c["model_dim"])
	m.NumHeads, m.NumKVHeads = int(c["num_heads"]), int(c["num_kv_heads"])
	m.MLPHidden = int(c["mlp_mult"] * c["model_dim"])
	m.SeqLen = 8
	m.XSALastN, m.RopeDims, m.GateWindow = int(c["xsa_last_n"]), int(c["rope_dims"]), int(c["gate_window"])
	m.NumLoops, m.LoopStart, m.LoopEnd = int(c["num_loops"]), int(c["loop_start"]), int(c["loop_end"])
	m.ParallelStartLayer = int(c["parallel_start_layer"])
	return m
}

// recordOptimizer is the record's optimizer configuration (§7c) as golf's.
func recordOptimizer(c map[string]float64, nsDType dtypes.DType) OptimizerConfig {
	o := DefaultOptimizer()
	o.MatrixLR, o.EmbedLR, o.ScalarLR = c["matrix_lr"], c["tied_embed_lr"], c["scalar_lr"]
	o.MuonMomentum, o.MomentumWarmupStart, o.MomentumWarmupSteps = c["muon_momentum"], c["muon_momentum_warmup_start"], int(c["muon_momentum_warmup_steps"])
	o.NewtonSchulzSteps, o.NewtonSchulzCoeffs, o.MuonRowNormalize = int(c["muon_backend_steps"]), "polar-express", true
	o.NewtonSchulzDType = nsDType
	o.Beta1, o.Beta2, o.AdamEps = c["beta1"], c["beta2"], c["adam_eps"]
	o.MuonWeightDecay, o.EmbedWeightDecay, o.ScalarWeightDecay = c["muon_wd"], c["embed_wd"], c["adam_wd"]
	o.GradClipNorm = c["grad_clip_norm"]
	return o
}

// TestRecordOptimizerStepsMatchPyTorch runs two optimizer steps of the
// record's groups (Polar-Express Muon with MuonEq-R and weight decay on the
// matrices, AdamW on the embedding and the scalars, global-norm clipping at
// 0.3, the momentum warm-up) and the EMA update on the record's micro model,
// from the same weights and gradients as the record's own step_fn, and
// compares every parameter and EMA value.
func TestRecordOptimizerStepsMatchPyTorch(t *testing.T) {
	g := loadRecordOptimGolden(t)
	cfg := recordMicroConfig(g.Config)
	specs := cfg.Params()
	var names []string
	for _, p := range specs {
		names = append(names, p.Name)
	}
	golden := slices.Sorted(func(yield func(string) bool) {
		for k := range g.FP32.Initial {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(slices.Sorted(slices.Values(names)), golden) {
		t.Fatalf("the record's micro model has parameters %v,\ngolf's registry %v", golden, slices.Sorted(slices.Values(names)))
	}
	for _, tc := range []struct {
		name  string
		dtype dtypes.DType
		steps []recordOptimStep
		tol   float64
		frob  bool // compare by Frobenius norms instead of the largest element
	}{
		// float32 throughout (the generator makes Tensor.bfloat16 the
		// identity): equal up to float32 rounding of the orthogonalisation.
		{"fp32", dtypes.Float32, g.FP32.Steps, 2e-5, false},
		// the record's real bf16 Muon (bf16 momentum buffer and eager bf16
		// Newton-Schulz on the CPU, each op rounded; on a GPU torch.compile
		// fuses them): ||got - want|| / ||want - before|| over each matrix
		// within twice the record's own bf16-vs-fp32 distance (bf16 noise
		// is ~10 % of a Muon update; two rounding orders differ by ~√2 of it).
		{"bf16", dtypes.BFloat16, g.BF16.Steps, 2 * recordBF16Noise(t, g), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := recordOptimizer(g.Config, tc.dtype)
			ctx := context.New()
			var vars, emas []*context.Variable
			var rules []paramRule
			var trainable []bool
			for _, p := range specs {
				scope, base := context.SplitScope(context.RootScope + p.Name)
				v := ctx.InAbsPath(scope).Checked(false).VariableWithShape(base, shapes.Make(dtypes.Float32, p.Shape...))
				if err := v.SetValue(tensors.FromFlatDataAndDimensions(decodeF32(t, g.FP32.Initial[p.Name]), p.Shape...)); err != nil {
					t.Fatal(err)
				}
				ema := ctx.InAbsPath(subScope("/ema", scope)).Checked(false).VariableWithShape(base, shapes.Make(dtypes.Float32, p.Shape...)).SetTrainable(false)
				if err := ema.SetValue(tensors.FromFlatDataAndDimensions(decodeF32(t, g.FP32.Initial[p.Name]), p.Shape...)); err != nil {
					t.Fatal(err)
				}
				emas = append(emas, ema)
				group, err := GroupOf(p.Class)
				if err != nil {
					t.Fatal(err)
				}
				r, ok := group.rule(opt)
				vars, rules, trainable = append(vars, v), append(rules, r), append(trainable, ok)
			}
			decay := g.Config["ema_decay"]
			exec, err := context.NewExec(goBackend(t), ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
				hp := hyperNodes{lrScale: in[0], momentum: in[1], adamStep: in[2]}
				var grads []*Node
				var idx []int
				for i := range vars {
					if trainable[i] {
						grads = append(grads, in[3+len(grads)])
						idx = append(idx, i)
					}
				}
				grads = clipGlobalNorm(grads, opt.GradClipNorm)
				for k, i := range idx {
					opt.applyUpdate(ctx, vars[i], grads[k], rules[i], hp)
				}
				var outs []*Node
				for i, v := range vars {
					p := v.ValueGraph(in[0].Graph())
					e := emaUpdate(emas[i].ValueGraph(in[0].Graph()), p, decay)
					emas[i].SetValueGraph(e)
					outs = append(outs, p, e)
				}
				return outs
			})
			if err != nil {
				t.Fatal(err)
			}
			for step, want := range tc.steps {
				args := []any{float32(want.LRScale), float32(opt.Momentum().At(step)), float32(step + 1)}
				if math.Abs(opt.Momentum().At(step)-want.Momentum) > 1e-12 {
					t.Errorf("step %d: momentum %v, the record's %v", step, opt.Momentum().At(step), want.Momentum)
				}
				for i, p := range specs {
					if trainable[i] {
						args = append(args, tensors.FromFlatDataAndDimensions(decodeF32(t, g.FP32.Grads[step][p.Name]), p.Shape...))
					}
				}
				out, err := exec.Exec(args...)
				if err != nil {
					t.Fatal(err)
				}
				before := map[string][]float32{}
				for i, p := range specs {
					before[p.Name] = decodeF32(t, g.FP32.Initial[p.Name])
					if step > 0 {
						before[p.Name] = decodeF32(t, tc.steps[step-1].Params[p.Name])
					}
					gotP := tensors.MustCopyFlatData[float32](out[2*i])
					gotE := tensors.MustCopyFlatData[float32](out[2*i+1])
					wantP := decodeF32(t, want.Params[p.Name])
					// Relative to the size of the step taken, so a wrong
					// update rule cannot hide under large weights.
					d := relChange(gotP, wantP, before[p.Name])
					if tc.frob {
						d = relFrobChange(gotP, wantP, before[p.Name])
					}
					if d > tc.tol {
						t.Errorf("step %d: %s (%v) differs from the record by %.3g of its update", step+1, p.Name, p.Class, d)
					}
					if d := maxAbsDiff(gotE, decodeF32(t, want.EMA[p.Name])); d > 1e-5*(1+20*tc.tol) {
						t.Errorf("step %d: EMA of %s differs from the record by %.3g", step+1, p.Name, d)
					}
				}
				// Continue from the record's weights, so one step's rounding
				// does not compound into the next.
				for i, p := range specs {
					if err := vars[i].SetValue(tensors.FromFlatDataAndDimensions(decodeF32(t, want.Params[p.Name]), p.Shape...)); err != nil {
						t.Fatal(err)
					}
					if err := emas[i].SetValue(tensors.FromFlatDataAndDimensions(decodeF32(t, want.EMA[p.Name]), p.Shape...)); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// recordBF16Noise is the largest ||bf16 - fp32|| / ||fp32 - initial|| of
// the record's own first step over the matrices.
func recordBF16Noise(t *testing.T, g *recordOptimGolden) float64 {
	var worst float64
	for name := range g.FP32.Initial {
		b, f := decodeF32(t, g.FP32.Initial[name]), decodeF32(t, g.FP32.Steps[0].Params[name])
		worst = math.Max(worst, relFrobChange(decodeF32(t, g.BF16.Steps[0].Params[name]), f, b))
	}
	if worst == 0 || worst > 0.3 {
		t.Fatalf("the record's bf16 step differs from its fp32 step by %v: not bf16 noise", worst)
	}
	return worst
}

// relChange is max|got-want| / max|want-before|: the error as a share of
// the change the reference made.
func relChange(got, want, before []float32) float64 {
	var num, den float64
	for i := range got {
		num = math.Max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = math.Max(den, math.Abs(float64(want[i])-float64(before[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// relFrobChange is ||got-want|| / ||want-before||.
func relFrobChange(got, want, before []float32) float64 {
	var num, den float64
	for i := range got {
		d, c := float64(got[i])-float64(want[i]), float64(want[i])-float64(before[i])
		num += d * d
		den += c * c
	}
	return math.Sqrt(num / math.Max(den, 1e-300))
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestRecordScheduleMatchesPyTorch: the record's training_frac and lr_mul
// (warm-down over the last 85 % of the 599.5 s budget, floor 0.1) at a few
// points, against golf's Schedule.
func TestRecordScheduleMatchesPyTorch(t *testing.T) {
	g := loadRecordOptimGolden(t)
	budget := time.Duration((g.Config["max_wallclock_seconds"] - g.Config["gptq_reserve_seconds"]) * float64(time.Second))
	s := Schedule{Iterations: 20000, MaxTime: budget, WarmdownFrac: g.Config["warmdown_frac"], MinLR: g.Config["min_lr"]}
	for _, p := range g.Schedule {
		elapsed := time.Duration(p.ElapsedMs * float64(time.Millisecond))
		if got := s.Frac(p.Step, elapsed); math.Abs(got-p.Frac) > 1e-12 {
			t.Errorf("step %d at %v: frac %v, the record's %v", p.Step, elapsed, got, p.Frac)
		}
		if got := s.LRScale(p.Step, elapsed); math.Abs(got-p.LRMul) > 1e-12 {
			t.Errorf("step %d at %v: lr_mul %v, the record's %v", p.Step, elapsed, got, p.LRMul)
		}
	}
}
