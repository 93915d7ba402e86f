package synthetic

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
)

// roundRows quantizes a drawn matrix with quant's own round-to-nearest
// SD-clip rule (clip at k sample standard deviations, divisor clip/qmax
// stored in fp16) and returns its symbols and per-row divisors.
func roundRows(t *testing.T, w []float32, rows, cols, bits int, k float64) ([]int8, []float32) {
	t.Helper()
	rule := quant.Rule{Format: quant.FormatInt, Bits: bits, Clip: quant.Clip{Method: quant.ClipStd, Value: k}}
	s := quant.Scheme{Name: "sd", Small: quant.Rule{Format: quant.FormatFP16}, Control: quant.Rule{Format: quant.FormatFP32},
		Matrix: rule, Embedding: rule, Other: rule}
	m := model.Weights{{Name: "m", Shape: []int{rows, cols}, Class: model.MLP, Data: w}}
	q, err := quant.Quantize(context.Background(), m, s, quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q.Tensors[0].Symbols, q.Tensors[0].Scales
}

// selfInformation is -log2 P(symbol) of one drawn symbol under its source.
func selfInformation(studentT bool, qmax int, u float64, k int) float64 {
	var cdf func(float64) float64 = distuv.UnitNormal.CDF
	if studentT {
		cdf = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: studentNu}.CDF
	}
	lo, hi := (float64(k)-0.5)/u, (float64(k)+0.5)/u
	if k == qmax {
		hi = math.Inf(1)
	}
	if k == -qmax {
		lo = math.Inf(-1)
	}
	return -math.Log2(cdf(hi) - cdf(lo))
}

// The entropy SymbolEntropy computes from the distribution is the mean
// self-information of symbols actually drawn, rounded and clamped (within
// the sampling error), for int6 and int8 at the clips the schemes use.
func TestSymbolEntropyMatchesDrawnSymbols(t *testing.T) {
	for _, tc := range []struct {
		bits int
		k    float64
	}{{6, 12.85}, {8, 20}, {6, 3}, {3, 2}} {
		const rows, cols = 240, 1500
		qmax := 1<<(tc.bits-1) - 1
		w := make([]float32, rows*cols)
		src := FillMatrix(w, rows, cols, rand.New(rand.NewPCG(7, uint64(qmax))))
		sym, div := roundRows(t, w, rows, cols, tc.bits, tc.k)
		h, err := src.SymbolEntropy(div, qmax)
		if err != nil {
			t.Fatal(err)
		}
		var sum, sq float64
		for r := range rows {
			for c := range cols {
				u := src.RowGain[r] * src.ColGain[c] / float64(div[r])
				x := selfInformation(src.StudentT(r), qmax, u, int(sym[r*cols+c]))
				sum += x
				sq += x * x
			}
		}
		n := float64(rows * cols)
		mean := sum / n
		se := math.Sqrt((sq/n - mean*mean) / n)
		if d := h/n - mean; math.Abs(d) > 4*se+1e-5 {
			t.Errorf("qmax %d, clip %g std: entropy %.5f bits/symbol, drawn symbols' self-information %.5f ± %.5f", qmax, tc.k, h/n, mean, se)
		}
		// A real coder of the same symbols stays above the floor (it does
		// not know the gains), and the floor is not loose: the context
		// mixer, which learns the column gains, comes within 3 %.
		if qmax == 31 && tc.k > 10 {
			buf := make([]byte, len(sym))
			for i, v := range sym {
				buf[i] = byte(v)
			}
			enc, err := codec.CM{}.Compress(buf, codec.Hint{RowLen: cols, Bits: 6})
			if err != nil {
				t.Fatal(err)
			}
			got := float64(8 * len(enc))
			if got < h || got > 1.03*h {
				t.Errorf("cm: %.0f bits for symbols of entropy %.0f bits (ratio %.4f), want within [1, 1.03]", got, h, got/h)
			}
			t.Logf("cm %.4f x the source entropy", got/h)
		}
	}
}

// The tabulated curve agrees with the direct sum, and the sum has the
// values of its limits.
func TestEntropyCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, student := range []bool{false, true} {
		for _, qmax := range []int{1, 7, 31, 63, 127} {
			c := entropyCurve(student, qmax)
			for range 200 {
				u := math.Exp2(-12 + 20*rng.Float64())
				if d := math.Abs(c.at(u) - binEntropy(student, qmax, u)); d > 2.5e-5 {
					t.Errorf("student %v, qmax %d, u %g: table is %g bits off", student, qmax, u, d)
				}
			}
		}
	}
	// Fine bins: the differential entropy log2(u·√(2πe)) of the scaled normal.
	if h, want := binEntropy(false, 127, 8), math.Log2(8*math.Sqrt(2*math.Pi*math.E)); math.Abs(h-want) > 1e-3 {
		t.Errorf("normal, u = 8: %.5f bits, want %.5f", h, want)
	}
	// Wide bins: everything rounds to zero.
	if h := binEntropy(true, 31, 1e-3); h > 1e-9 {
		t.Errorf("u = 1e-3: %g bits, want 0", h)
	}
	// Clamped at ±1 with a tiny zero bin: one bit, the sign.
	if h := binEntropy(false, 1, 1e4); math.Abs(h-1) > 1e-3 {
		t.Errorf("qmax 1, u = 1e4: %.5f bits, want 1", h)
	}
}

func TestSymbolEntropyErrors(t *testing.T) {
	src := &Source{RowGain: []float64{1, 1}, ColGain: []float64{1}}
	for name, f := range map[string]func() (float64, error){
		"divisor count": func() (float64, error) { return src.SymbolEntropy([]float32{1}, 31) },
		"qmax 0":        func() (float64, error) { return src.SymbolEntropy([]float32{1, 1}, 0) },
		"zero divisor":  func() (float64, error) { return src.SymbolEntropy([]float32{1, 0}, 31) },
		"nan divisor":   func() (float64, error) { return src.SymbolEntropy([]float32{float32(math.NaN()), 1}, 31) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// NewDraw returns Weights' values and a source for every drawn matrix.
func TestNewDrawSources(t *testing.T) {
	d, err := NewDraw("tiny", 3)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Weights("tiny", 3)
	if err != nil {
		t.Fatal(err)
	}
	matrices := 0
	for i, x := range d.Weights {
		for j, v := range x.Data {
			if v != w[i].Data[j] {
				t.Fatalf("%s[%d]: NewDraw %v, Weights %v", x.Name, j, v, w[i].Data[j])
			}
		}
		src, ok := d.Sources[x.Name]
		if ok {
			matrices++
			if len(src.RowGain) != x.Shape[0] || len(src.ColGain) != x.Shape[1] {
				t.Errorf("%s: source of %dx%d for shape %v", x.Name, len(src.RowGain), len(src.ColGain), x.Shape)
			}
		}
	}
	if matrices == 0 || matrices != len(d.Sources) {
		t.Errorf("%d sources matched of %d", matrices, len(d.Sources))
	}
}
