package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant/synthetic"
)

// correlatedHessian returns H = X^T X for n samples of in correlated
// features (X = Z A with A a random mixing matrix plus the identity).
func correlatedHessian(seed uint64, in, n int) *Hessian {
	rng := rand.New(rand.NewPCG(seed, 9))
	mix := make([]float64, in*in)
	for i := range mix {
		mix[i] = rng.NormFloat64() * 0.3
	}
	for i := range in {
		mix[i*in+i] += 1
	}
	h := NewHessian(in)
	x := make([]float32, in)
	z := make([]float64, in)
	for range n {
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		for j := range in {
			var s float64
			for i := range in {
				s += z[i] * mix[i*in+j]
			}
			x[j] = float32(s)
		}
		if err := h.Add(x); err != nil {
			panic(err)
		}
	}
	return h
}

func quantizeMatrix(t *testing.T, w []float32, rows, cols int, r Rule, h *Hessian) []float32 {
	t.Helper()
	s := Scheme{Name: "t", Small: fp16Rule(), Control: fp32Rule(), Matrix: r, Embedding: r, Other: r, GPTQ: DefaultGPTQ()}
	opts := Options{Hessians: map[string]*Hessian{"m": h}}
	q, err := Quantize(context.Background(), model.Weights{{Name: "m", Shape: []int{rows, cols}, Class: model.MLP, Data: w}}, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q.Tensors[0].Dequantize().Data
}

// GPTQ minimises the Hessian-weighted error; with correlated inputs it must
// clearly beat round-to-nearest with the same scales.
func TestGPTQBeatsRoundToNearest(t *testing.T) {
	const rows, cols = 64, 96
	h := correlatedHessian(1, cols, 4*cols)
	w := randomMatrix(5, rows, cols, true)
	for _, bits := range []int{3, 4, 6} {
		rtn := intRule(bits, std(4))
		g := rtn
		g.GPTQ = true
		eRTN := WeightedError(w, quantizeMatrix(t, w, rows, cols, rtn, h), rows, cols, h)
		eGPTQ := WeightedError(w, quantizeMatrix(t, w, rows, cols, g, h), rows, cols, h)
		t.Logf("int%d: Hessian-weighted error RTN %.4g, GPTQ %.4g (%.3fx)", bits, eRTN, eGPTQ, eGPTQ/eRTN)
		if eGPTQ > 0.8*eRTN {
			t.Errorf("int%d: GPTQ error %.4g not below 0.8x round-to-nearest %.4g", bits, eGPTQ, eRTN)
		}
	}
}

// With a diagonal Hessian no error can be moved to another column, so GPTQ
// must give exactly the round-to-nearest symbols.
func TestGPTQDiagonalHessianIsRoundToNearest(t *testing.T) {
	const rows, cols = 16, 24
	h := NewHessian(cols)
	for i := range cols {
		h.Sum[i*cols+i] = float64(1 + i%5)
	}
	h.Sum[3*cols+3] = 0 // a dead input: its column must come out zero
	w := randomMatrix(6, rows, cols, true)
	r := intRule(5, std(3))
	g := r
	g.GPTQ = true
	a := quantizeMatrix(t, w, rows, cols, r, h)
	b := quantizeMatrix(t, w, rows, cols, g, h)
	for i := range a {
		if i%cols == 3 {
			if b[i] != 0 {
				t.Fatalf("dead column not zero: %v", b[i])
			}
			continue
		}
		if a[i] != b[i] {
			t.Fatalf("value %d: GPTQ %v, RTN %v", i, b[i], a[i])
		}
	}
}

func TestHessianAddByHand(t *testing.T) {
	h := NewHessian(2)
	// rows (1,2) and (3,-1): X^T X = [[1+9, 2-3], [2-3, 4+1]] = [[10,-1],[-1,5]]
	if err := h.Add([]float32{1, 2, 3, -1}); err != nil {
		t.Fatal(err)
	}
	want := []float64{10, -1, -1, 5}
	for i := range want {
		if math.Abs(h.Sum[i]-want[i]) > 1e-12 {
			t.Fatalf("H = %v, want %v", h.Sum, want)
		}
	}
	if h.Count != 2 {
		t.Fatalf("count %d", h.Count)
	}
	if err := h.Add([]float32{1, 2, 3}); err == nil {
		t.Fatal("ragged input accepted")
	}
	// WeightedError by hand: e = (1, 1) -> e H e^T = 10 - 1 - 1 + 5 = 13.
	if got := WeightedError([]float32{1, 1}, []float32{0, 0}, 1, 2, h); math.Abs(got-13) > 1e-12 {
		t.Fatalf("weighted error %v, want 13", got)
	}
}

func TestGPTQNeedsAHessian(t *testing.T) {
	w, _ := synthetic.Weights("tiny", 1)
	s, _ := SchemeByName("gptq-int6")
	if _, err := Quantize(context.Background(), w, s, Options{}); err == nil {
		t.Fatal("GPTQ without Hessians accepted")
	}
}

func TestHessiansFromTensors(t *testing.T) {
	good := model.Tensor{Name: "block_0/attn/c_q", Shape: []int{2, 2}, Data: []float32{4, 1, 1, 3}}
	hs, err := HessiansFromTensors([]model.Tensor{good})
	if err != nil || hs["block_0/attn/c_q"].In != 2 || hs["block_0/attn/c_q"].Sum[1] != 1 {
		t.Fatalf("%v %v", hs, err)
	}
	for name, bad := range map[string]model.Tensor{
		"not square":   {Name: "x", Shape: []int{2, 3}, Data: make([]float32, 6)},
		"asymmetric":   {Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 1}},
		"NaN":          {Name: "x", Shape: []int{1, 1}, Data: []float32{float32(math.NaN())}},
		"negative":     {Name: "x", Shape: []int{1, 1}, Data: []float32{-1}},
		"short values": {Name: "x", Shape: []int{2, 2}, Data: []float32{1}},
	} {
		if _, err := HessiansFromTensors([]model.Tensor{bad}); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := HessiansFromTensors([]model.Tensor{good, good}); err == nil {
		t.Error("duplicate accepted")
	}
}
