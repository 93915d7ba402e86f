package quant

import (
	"fmt"
	"math"

	"github.com/paramgolf/golf/model"
)

// FakeQuantSpec defines the fake quantization that quantization-aware
// training applies to a [rows, cols] weight matrix in the model graph, so
// the graph (model package) and the exporter (this package) agree on one
// formula. For each row w of the matrix:
//
//	c   = Clip.Value * std(w)   (ClipStd; std with n-1, as torch.std)
//	    = max |w|               (ClipMaxAbs)
//	s   = c / qmax,  qmax = 2^(Bits-1) - 1;  s = 1 where c = 0
//	w_q = s * clamp(round_half_even(w / s), -qmax, qmax)
//
// The forward pass uses w_q; the backward pass treats the rounding as the
// identity (straight-through estimator: dL/dw = dL/dw_q) and the scale s as
// a constant (no gradient through c). Values beyond the clip get the
// straight-through gradient too, as in the records' QAT. Everything is in
// float32; the exported artifact stores s rounded to fp16, a relative
// change below 2^-11 that QAT does not model.
type FakeQuantSpec struct {
	Bits int
	Clip Clip // ClipStd or ClipMaxAbs
}

// FakeQuantFor returns the QAT spec matching a scheme rule: same bits and
// clip. Only rules whose clip is a closed-form function of the row (std or
// max-abs) can be trained against; percentile and MSE clips cannot.
func FakeQuantFor(r Rule) (FakeQuantSpec, error) {
	if r.Format != FormatInt {
		return FakeQuantSpec{}, fmt.Errorf("fake quant: rule %v stores floats", r)
	}
	f := FakeQuantSpec{Bits: r.Bits, Clip: r.Clip}
	return f, f.Validate()
}

// Validate checks the spec.
func (f FakeQuantSpec) Validate() error {
	if f.Bits < 2 || f.Bits > 8 {
		return fmt.Errorf("fake quant: %d bits outside 2..8", f.Bits)
	}
	switch f.Clip.Method {
	case ClipMaxAbs:
	case ClipStd:
		if !(f.Clip.Value > 0) {
			return fmt.Errorf("fake quant: std clip needs k > 0, has %g", f.Clip.Value)
		}
	default:
		return fmt.Errorf("fake quant: clip %v has no closed form; use std or maxabs", f.Clip)
	}
	return nil
}

// Apply returns the fake-quantized copy of the row-major rows x cols matrix
// w: the host reference for the graph implementation.
func (f FakeQuantSpec) Apply(w []float32, rows, cols int) ([]float32, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if rows*cols != len(w) {
		return nil, fmt.Errorf("fake quant: %d values for %d x %d", len(w), rows, cols)
	}
	qmax := float32(int(1)<<(f.Bits-1) - 1)
	out := make([]float32, len(w))
	for r := range rows {
		row := w[r*cols : (r+1)*cols]
		var c float32
		if f.Clip.Method == ClipStd {
			c = float32(f.Clip.Value) * float32(stdDev(row))
		} else {
			c = maxAbs(row)
		}
		s := c / qmax
		if !(s > 0) {
			s = 1
		}
		for i, v := range row {
			q := float32(math.RoundToEven(float64(v / s)))
			out[r*cols+i] = s * min(max(q, -qmax), qmax)
		}
	}
	return out, nil
}

// QATFor returns the quantization-aware training config that matches scheme
// s's rules for the matrices QAT fake-quantizes (classes Attention and
// MLP): the same bits and clip per class, so training sees the grid the
// export uses (the record scheme: int6 at 13 std for attention, 11.5 for
// the MLP). A class's rule must be a closed-form int rule (std or max-abs
// clip); GPTQ's re-rounding is not modelled (QAT trains against
// round-to-nearest on the same grid).
func QATFor(s Scheme) (*model.QATConfig, error) {
	rules := map[model.Class]Rule{}
	for _, c := range []model.Class{model.Attention, model.MLP} {
		r, ok := s.ByClass[c]
		if !ok {
			r = s.Matrix
		}
		spec, err := FakeQuantFor(r)
		if err != nil {
			return nil, fmt.Errorf("scheme %s, class %v: %w", s.Name, c, err)
		}
		rules[c] = Rule{Bits: spec.Bits, Clip: spec.Clip}
	}
	clipStd := func(r Rule) float64 {
		if r.Clip.Method == ClipStd {
			return r.Clip.Value
		}
		return 0
	}
	a, m := rules[model.Attention], rules[model.MLP]
	q := &model.QATConfig{Bits: a.Bits, ClipStd: clipStd(a)}
	if m.Bits != a.Bits || clipStd(m) != clipStd(a) {
		q.ByClass = map[model.Class]model.QATRule{model.MLP: {Bits: m.Bits, ClipStd: clipStd(m)}}
	}
	return q, nil
}
