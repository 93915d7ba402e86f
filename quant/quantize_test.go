package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant/synthetic"
)

// relativeRMSE is sqrt(sum (a-b)^2 / sum a^2) over all tensors.
func relativeRMSE(a, b model.Weights) float64 {
	var num, den float64
	for i := range a {
		for j, v := range a[i].Data {
			d := float64(v) - float64(b[i].Data[j])
			num += d * d
			den += float64(v) * float64(v)
		}
	}
	return math.Sqrt(num / math.Max(den, 1e-300))
}

func randomMatrix(seed uint64, rows, cols int, studentT bool) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	w := make([]float32, rows*cols)
	synthetic.FillMatrix(w, rows, cols, rng)
	if !studentT {
		for i := range w {
			w[i] = float32(0.05 * rng.NormFloat64())
		}
	}
	return w
}

// Inside the clip, round to nearest is off by at most half a step; outside
// it, by the distance to the clip plus half a step.
func TestRoundToNearestErrorBound(t *testing.T) {
	w := randomMatrix(1, 64, 256, true)
	for _, bits := range []int{2, 4, 5, 6, 8} {
		for _, clip := range []Clip{{ClipMaxAbs, 0}, {ClipStd, 3}, {ClipPercentile, 0.99}, {ClipMSE, 32}} {
			r := intRule(bits, clip)
			sym := make([]int8, 256)
			for row := range 64 {
				x := w[row*256 : (row+1)*256]
				s := quantizeRow(x, sym, r, FormatFP16)
				c := RowClip(x, clip, bits, FormatFP16)
				qmax := float64(r.QMax())
				for i, v := range x {
					if math.Abs(float64(sym[i])) > qmax {
						t.Fatalf("int%d %v: symbol %d beyond ±%v", bits, clip, sym[i], qmax)
					}
					err := math.Abs(float64(v) - float64(sym[i])*float64(s))
					bound := float64(s)/2 + 1e-6*math.Abs(float64(v))
					// The stored fp16 scale may represent slightly less than the clip.
					reach := math.Min(float64(c), qmax*float64(s))
					if d := math.Abs(float64(v)) - reach; d > 0 {
						bound += d
					}
					if err > bound {
						t.Fatalf("int%d %v row %d: |%v - %d*%v| = %v > %v", bits, clip, row, v, sym[i], s, err, bound)
					}
				}
			}
		}
	}
}

func rowSquaredError(x []float32, r Rule) float64 {
	sym := make([]int8, len(x))
	s := quantizeRow(x, sym, r, FormatFP16)
	var e float64
	for i, v := range x {
		d := float64(v) - float64(sym[i])*float64(s)
		e += d * d
	}
	return e
}

// The MSE clip search includes max|w|, so it is never worse than it, and on
// heavy-tailed rows it is much better at low bit widths.
func TestMSEClipNeverWorseThanMaxAbs(t *testing.T) {
	w := randomMatrix(2, 96, 512, true)
	var gain float64
	for _, bits := range []int{3, 4, 6} {
		for row := range 96 {
			x := w[row*512 : (row+1)*512]
			mse := rowSquaredError(x, intRule(bits, Clip{ClipMSE, 64}))
			mx := rowSquaredError(x, intRule(bits, Clip{ClipMaxAbs, 0}))
			if mse > mx*(1+1e-12) {
				t.Fatalf("int%d row %d: MSE clip error %v above max-abs %v", bits, row, mse, mx)
			}
			if bits == 4 {
				gain += mx / mse
			}
		}
	}
	if gain/96 < 1.2 {
		t.Fatalf("int4: MSE clip improves the error by only %.3fx on average", gain/96)
	}
}

// Hand-computed std clip: values 1..4 have mean 2.5 and sample std
// sqrt(5/3) = 1.2909944; k = 2 gives clip 2.5819889.
func TestStdClipByHand(t *testing.T) {
	c := RowClip([]float32{1, 2, 3, 4}, Clip{ClipStd, 2}, 6, FormatFP16)
	if math.Abs(float64(c)-2*math.Sqrt(5.0/3)) > 1e-6 {
		t.Fatalf("std clip = %v, want %v", c, 2*math.Sqrt(5.0/3))
	}
	// int6: scale = 2.5819889/31 = 0.0832900 -> fp16 0.08331298828125;
	// symbols round(min(v, clip)/scale): 1/s = 12.003 -> 12, 2/s = 24.006 -> 24,
	// 2.5819889/s = 30.99 -> 31, 31.
	sym := make([]int8, 4)
	s := quantizeRow([]float32{1, 2, 3, 4}, sym, intRule(6, Clip{ClipStd, 2}), FormatFP16)
	if s != 0.08331298828125 {
		t.Fatalf("scale %v, want 0.08331298828125", s)
	}
	want := []int8{12, 24, 31, 31}
	for i := range want {
		if sym[i] != want[i] {
			t.Fatalf("symbols %v, want %v", sym, want)
		}
	}
}

func TestZeroRowAndOddInputs(t *testing.T) {
	sym := make([]int8, 4)
	for _, c := range []Clip{{ClipMaxAbs, 0}, {ClipStd, 5}, {ClipMSE, 8}, {ClipPercentile, 0.5}} {
		s := quantizeRow([]float32{0, 0, 0, 0}, sym, intRule(6, c), FormatFP16)
		if s != 1 || sym[0] != 0 || sym[3] != 0 {
			t.Fatalf("%v: zero row gives scale %v symbols %v", c, s, sym)
		}
	}
	// A tiny row: the fp16 scale must stay positive.
	s := quantizeRow([]float32{1e-12, -1e-12, 0, 5e-13}, sym, intRule(8, Clip{ClipMaxAbs, 0}), FormatFP16)
	if !(s > 0) {
		t.Fatalf("tiny row scale %v", s)
	}
	w := model.Weights{{Name: "x", Shape: []int{2, 2}, Class: model.MLP, Data: []float32{1, float32(math.NaN()), 0, 0}}}
	s4, _ := SchemeByName("int4-mse")
	s4.KeepMaxElements = 0
	if _, err := Quantize(context.Background(), w, s4, Options{}); err == nil {
		t.Fatal("NaN weight accepted")
	}
	bad := model.Weights{{Name: "x", Shape: []int{2, 3}, Class: model.MLP, Data: []float32{1}}}
	if _, err := Quantize(context.Background(), bad, s4, Options{}); err == nil {
		t.Fatal("shape mismatch accepted")
	}
}

func TestSchemesRouteTensors(t *testing.T) {
	w, err := synthetic.Weights("baseline", 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := w.NumParams(); n != 17_059_912 {
		t.Fatalf("baseline synthetic has %d parameters, want 17,059,912", n)
	}
	s, _ := SchemeByName("int5mlp-int6")
	want := map[string]string{
		"tok_emb":              "int8/mse64",
		"block_0/attn/c_q":     "int6/mse64",
		"block_0/mlp/fc":       "int5/mse64",
		"block_0/attn_scale":   "fp32",
		"block_0/attn/q_gain":  "fp32",
		"skip_weights":         "fp32",
		"block_8/mlp/proj":     "int5/mse64",
		"block_8/attn/c_v":     "int6/mse64",
		"block_8/resid_mix":    "fp32",
		"some/small_bias_vec_": "fp16",
	}
	for name, rule := range want {
		shape := []int{512, 512}
		if name == "some/small_bias_vec_" {
			shape = []int{512}
		}
		class := model.Table
		if tt, ok := w.Get(name); ok {
			shape, class = tt.Shape, tt.Class
		}
		if got := s.RuleFor(shape, class).String(); got != rule {
			t.Errorf("%s %v: rule %s, want %s", name, shape, got, rule)
		}
	}
	ref := Reference()
	if got := ref.RuleFor([]int{256, 512}, model.Attention).String(); got != "int8/pct99.99984" {
		t.Errorf("reference c_k rule %s", got)
	}
	if got := ref.RuleFor([]int{128, 128}, model.Attention).String(); got != "fp16" {
		t.Errorf("reference small matrix rule %s", got)
	}
	for _, s := range Schemes() {
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// Fewer bits never shrink the error: int4 < int5 < int6 < int8 in accuracy.
func TestMoreBitsLessError(t *testing.T) {
	w, _ := synthetic.Weights("tiny", 3)
	prev := math.Inf(1)
	for _, name := range []string{"int4-mse", "int5-mse", "int6-mse", "int8-mse"} {
		s, _ := SchemeByName(name)
		q, err := Quantize(context.Background(), w, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		e := relativeRMSE(w, q.Dequantize())
		if e >= prev {
			t.Fatalf("%s: relative error %v not below the narrower scheme's %v", name, e, prev)
		}
		prev = e
	}
	if prev > 0.01 {
		t.Fatalf("int8-mse relative error %v, want < 1%%", prev)
	}
}
