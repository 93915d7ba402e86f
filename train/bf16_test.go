package train

import (
	stdcontext "context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// roundBF16 (in the graph) equals RoundBF16, the bit-level rounding of
// torch's .bfloat16(), on random values of every
// magnitude, on exact ties (half-way between two bfloat16 values, both
// parities) and on the edges: zeros, powers of two, the largest values.
func TestRoundBF16MatchesBitRounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var xs []float32
	for range 20000 {
		xs = append(xs, float32(rng.NormFloat64()*math.Exp(rng.NormFloat64()*8)))
	}
	for range 2000 { // ties: 9 significant bits, the last one set
		m := uint32(256 + 2*rng.IntN(128) + 1)
		e := rng.IntN(60) - 30
		v := float32(math.Ldexp(float64(m), e))
		xs = append(xs, v, -v)
	}
	for e := -20; e <= 20; e++ {
		p := float32(math.Ldexp(1, e))
		xs = append(xs, p, -p, math.Nextafter32(p, 0), math.Nextafter32(p, 2*p), p*(1+1.0/256), p*(1+3.0/256))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1, -1, 65504, 3e38)
	out, err := context.ExecOnce(goBackend(t), nil, func(_ *context.Context, x *Node) *Node { return roundBF16(x) }, xs)
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](out)
	bad := 0
	for i, x := range xs {
		if math.Abs(float64(x)) >= 0x1p100 {
			continue // passed through unchanged by design
		}
		if want := hostRoundBF16(x); got[i] != want {
			if bad++; bad < 10 {
				t.Errorf("roundBF16(%g = %08x) = %g (%08x), want %g (%08x)", x, math.Float32bits(x), got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d values rounded wrongly", bad, len(xs))
	}
}

// bf16Steps is testdata/bf16_steps.json (gen_bf16_steps.py).
type bf16Steps struct {
	Adam struct {
		Shape []int     `json:"shape"`
		W0    []float32 `json:"w0"`
		K     []float32 `json:"k"`
		Steps []struct {
			LRScale float64 `json:"lr_scale"`
			Micro   []struct {
				X, Y []int32
			} `json:"micro"`
			Grad  []float32 `json:"grad"`
			W     []float32 `json:"w"`
			AdamM []float32 `json:"adam_m"`
			AdamV []float32 `json:"adam_v"`
		} `json:"steps"`
	} `json:"adam"`
	Muon []struct {
		Shape []int     `json:"shape"`
		P0    []float32 `json:"p0"`
		Steps []struct {
			LRScale  float64   `json:"lr_scale"`
			Momentum float64   `json:"momentum"`
			Grad     []float32 `json:"grad"`
			P        []float32 `json:"p"`
		} `json:"steps"`
	} `json:"muon"`
}

func readBF16Steps(t *testing.T) *bf16Steps {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "bf16_steps.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s bf16Steps
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// linearNetwork has one parameter, the embedding W [vocab, dim], and the
// per-token loss sum_j W[x, j] * K[y, j]: its gradient rows are K's rows
// scaled by 1/tokens, known exactly, so rounding is all that can differ.
func linearNetwork(vocab, dim int, k []float32, rule paramRule) network {
	n := network{vocab: vocab, params: []paramSpec{{"tok_emb", []int{vocab, dim}, rule}}}
	get := func(ctx *context.Context) *context.Variable {
		return ctx.GetVariableByScopeAndName(context.RootScope, "tok_emb")
	}
	n.lossFn = func(ctx *context.Context, inputs, targets *Node) *Node {
		g := inputs.Graph()
		w := get(ctx).ValueGraph(g)
		kc := Const(g, tensors.FromFlatDataAndDimensions(k, vocab, dim))
		h := DotGeneral(OneHot(inputs, vocab, dtypes.Float32), []int{2}, nil, w, []int{0}, nil)
		kt := DotGeneral(OneHot(targets, vocab, dtypes.Float32), []int{2}, nil, kc, []int{0}, nil)
		return ReduceSum(Mul(h, kt), -1)
	}
	n.init = func(_ backends.Backend, ctx *context.Context, _ int64) error {
		ctx.VariableWithValue("tok_emb", tensors.FromShape(shapes.Make(dtypes.Float32, vocab, dim)))
		return nil
	}
	n.weights = func(ctx *context.Context) (model.Weights, error) {
		return model.Weights{tensorFromVariable("tok_emb", get(ctx))}, nil
	}
	n.load = func(ctx *context.Context, w model.Weights) error { return setVariable(get(ctx), w[0]) }
	return n
}

// countDiff counts the values of got that differ from want by more than
// tol, and the largest difference.
func countDiff(got, want []float32, tol float64) (n int, worst float64) {
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		worst = max(worst, d)
		if d > tol {
			n++
		}
	}
	return n, worst
}

// The reference's bfloat16 storage points against PyTorch in bf16 (see
// gen_bf16_steps.py): the tied embedding's gradient accumulated in bf16
// over micro-batches, its Adam moments and weights stored in bf16 with
// fp32 arithmetic (the fused kernel), and Muon's update rounded to bf16
// before it is applied to the fp32 matrix. With StorageDType float32 the
// same steps must differ from PyTorch's, so the test sees the rounding.
func TestBF16StorageMatchesTorch(t *testing.T) {
	ref := readBF16Steps(t)
	ctx := stdcontext.Background()
	t.Run("adam", func(t *testing.T) {
		a := ref.Adam
		vocab, dim := a.Shape[0], a.Shape[1]
		for _, bf16 := range []bool{true, false} {
			opt := DefaultOptimizer()
			rule := paramRule{kind: adamUpdate, lr: opt.EmbedLR, bf16Weights: bf16}
			tr, err := newTrainer(goBackend(t), linearNetwork(vocab, dim, a.K, rule), opt, TrainerOptions{AccumSteps: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.SetWeights(model.Weights{{Name: "tok_emb", Shape: []int{vocab, dim}, Data: a.W0}}); err != nil {
				t.Fatal(err)
			}
			for s, st := range a.Steps {
				var micro []Batch
				for _, m := range st.Micro {
					micro = append(micro, Batch{Inputs: m.X, Targets: m.Y, Rows: 1, SeqLen: len(m.X)})
				}
				if _, err := tr.Step(ctx, micro, st.LRScale, 0); err != nil {
					t.Fatal(err)
				}
				w, err := tr.Weights()
				if err != nil {
					t.Fatal(err)
				}
				os, err := tr.OptimizerState()
				if err != nil {
					t.Fatal(err)
				}
				nw, dw := countDiff(w[0].Data, st.W, 0)
				nm, dm := countDiff(os[0].Data, st.AdamM, 0)
				nv, dv := countDiff(os[1].Data, st.AdamV, 0)
				if bf16 {
					// The same values, bit for bit: every rounding point is
					// where PyTorch has it.
					if nw+nm+nv > 0 {
						t.Errorf("bf16 step %d: %d weights (max diff %.3g), %d first and %d second moments (%.3g, %.3g) differ from torch", s+1, nw, dw, nm, nv, dm, dv)
					}
				} else if nw < len(st.W)/4 {
					t.Errorf("fp32 step %d: only %d of %d weights differ from torch's bf16 ones: the test does not see the rounding", s+1, nw, len(st.W))
				}
			}
			tr.Close()
		}
	})
	t.Run("muon", func(t *testing.T) {
		for _, c := range ref.Muon {
			rows, cols := c.Shape[0], c.Shape[1]
			for _, bf16 := range []bool{true, false} {
				opt := DefaultOptimizer()
				opt.NewtonSchulzDType = dtypes.Float32
				p0 := matrix{rows, cols, toF64(c.P0)}
				s := newStepper(t, opt, paramRule{kind: muonUpdate, lr: opt.MatrixLR, bf16Update: bf16}, p0)
				for i, st := range c.Steps {
					got := s.step(matrix{rows, cols, toF64(st.Grad)}, st.LRScale, st.Momentum, i+1)
					// float32 Newton-Schulz differs from torch's in the last
					// bits; a bf16 rounding it tips over moves a weight by
					// lr*ulp (~1e-4 here), while fp32 rounding stays ~1e-8.
					n, worst := countDiff(got, st.P, 2e-7)
					if bf16 && n > len(got)/50 {
						t.Errorf("%dx%d bf16 step %d: %d of %d weights differ from torch (max %.3g)", rows, cols, i+1, n, len(got), worst)
					}
					if !bf16 && n < len(got)/4 {
						t.Errorf("%dx%d fp32 step %d: only %d of %d weights differ from torch's bf16-rounded update", rows, cols, i+1, n, len(got))
					}
				}
			}
		}
	})
}
