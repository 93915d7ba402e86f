package quant

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/paramgolf/golf/model"
)

// QTensor is one tensor as an artifact stores it.
//
// For FormatInt, value (r, c) of the row-major [rows, cols] view (rows =
// Shape[0] for per-row scales) dequantizes to
//
//	w[r][c] = float32(Symbols[r*cols+c]) * Scales[r]
//
// (Scales has one entry for a per-tensor scale). The product is a float32
// multiply, as the reference's q.float() * s.float().
//
// A matrix may also carry AWQ-lite's high-precision column groups
// (Protected, which replace those columns) and a low-rank error correction
// (LQER, added last); see their types.
type QTensor struct {
	Name    string
	Shape   []int
	Class   model.Class
	Init    model.Init // the parameter's initialiser, as the registry declares it
	Format  Format
	Bits    int       // symbol width (FormatInt)
	Symbols []int8    // FormatInt: row-major symbols in [-QMax, QMax]
	Scales  []float32 // FormatInt: exact dequantization scales, one per row or one per tensor
	// ScaleFormat is how Scales are stored: FormatFP16 (per row; every
	// scale is then exactly representable in fp16) or FormatFP32.
	ScaleFormat Format
	Values      []float32    // FormatFP16/FP32: stored values (fp16-representable for FP16)
	Protected   *Protected   // FormatInt matrices: AWQ-lite column groups, or nil
	LQER        *LQERFactors // FormatInt matrices: low-rank error correction, or nil
	// RowOrder, when set, is the order the artifact stores the rows in
	// (row i of the stored matrix is row RowOrder[i]; see SimilarityOrder):
	// a storage choice that Dequantize ignores.
	RowOrder []int
}

// NumElements returns the number of values of the tensor.
func (q *QTensor) NumElements() int { return numElements(q.Shape) }

// Rows returns the number of scales' rows: Shape[0] for per-row scales, 1
// for a per-tensor scale.
func (q *QTensor) Rows() int { return len(q.Scales) }

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Dequantize returns the float32 tensor the stored form represents.
func (q *QTensor) Dequantize() model.Tensor {
	t := model.Tensor{Name: q.Name, Shape: slices.Clone(q.Shape), Class: q.Class, Init: q.Init, Data: make([]float32, q.NumElements())}
	if q.Format != FormatInt {
		copy(t.Data, q.Values)
		return t
	}
	rows := len(q.Scales)
	if rows == 0 {
		return t
	}
	cols := len(q.Symbols) / rows
	for r := range rows {
		s := q.Scales[r]
		for c := range cols {
			t.Data[r*cols+c] = float32(q.Symbols[r*cols+c]) * s
		}
	}
	if p := q.Protected; p != nil {
		cs := p.columns()
		for r := range rows {
			for j, c := range cs {
				t.Data[r*cols+c] = float32(p.Symbols[r*len(cs)+j]) * p.Scales[r]
			}
		}
	}
	if q.LQER != nil {
		q.LQER.apply(t.Data, rows, cols)
	}
	return t
}

// Quantized is a model's weights under a scheme.
type Quantized struct {
	Scheme  string
	Tensors []QTensor
}

// Dequantize returns every tensor's float32 values, in order.
func (q *Quantized) Dequantize() model.Weights {
	w := make(model.Weights, len(q.Tensors))
	for i := range q.Tensors {
		w[i] = q.Tensors[i].Dequantize()
	}
	return w
}

// Options adjusts Quantize.
type Options struct {
	// Hessians holds the input Hessian (Gram matrix X^T X of the inputs the
	// matrix multiplies) of each matrix that a GPTQ rule quantizes, keyed by
	// tensor name.
	Hessians map[string]*Hessian
	// Workers bounds the tensors quantized at once (0 = GOMAXPROCS).
	Workers int
}

// Quantize stores every tensor of w under scheme s. Tensors must hold
// finite values. It honours ctx between tensors.
func Quantize(ctx context.Context, w model.Weights, s Scheme, opts Options) (*Quantized, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := &Quantized{Scheme: s.Name, Tensors: make([]QTensor, len(w))}
	seen := map[string]bool{}
	for _, t := range w {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("quantize: %w", err)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("quantize: tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
	}
	var protect map[int][]int
	if s.AWQ != nil {
		protect = selectAWQ(awqCandidates(w, &s, &opts), *s.AWQ)
	}
	errs, ctxErr := forEach(ctx, len(w), opts.Workers, func(i int) error {
		return quantizeOne(&out.Tensors[i], w[i], &s, &opts, protect[i])
	})
	if ctxErr != nil {
		return nil, fmt.Errorf("quantize: %w", ctxErr)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if s.LQER != nil && s.LQER.TopK > 0 {
		vals := make([][]float32, len(w))
		for i := range w {
			vals[i] = w[i].Data
		}
		if err := applyLQER(out, vals, *s.LQER); err != nil {
			return nil, fmt.Errorf("quantize: %w", err)
		}
	}
	return out, nil
}

// awqCandidates lists the matrices AWQ-lite may protect: GPTQ rules of
// fewer bits than the protected groups', with a Hessian.
func awqCandidates(w model.Weights, s *Scheme, opts *Options) []awqCandidate {
	var cands []awqCandidate
	for i, t := range w {
		r := s.RuleFor(t.Shape, t.Class)
		h := opts.Hessians[t.Name]
		if !r.GPTQ || r.Format != FormatInt || r.PerTensor || len(t.Shape) != 2 || r.Bits >= s.AWQ.Bits || h == nil {
			continue
		}
		cands = append(cands, awqCandidate{index: i, w: t.Data, rows: t.Shape[0], cols: t.Shape[1], h: h})
	}
	return cands
}

func quantizeOne(q *QTensor, t model.Tensor, s *Scheme, opts *Options, protect []int) error {
	class := t.Class
	if !class.Valid() {
		return fmt.Errorf("quantize %s: no parameter class (weights must come from the model's registry: model.InitWeights, a checkpoint, or model.Annotate)", t.Name)
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("quantize %s: non-finite value %v at index %d", t.Name, v, i)
		}
	}
	r := s.RuleFor(t.Shape, class)
	*q = QTensor{Name: t.Name, Shape: slices.Clone(t.Shape), Class: class, Init: t.Init, Format: r.Format}
	switch r.Format {
	case FormatFP32:
		q.Values = slices.Clone(t.Data)
		return nil
	case FormatFP16:
		q.Values = make([]float32, len(t.Data))
		for i, v := range t.Data {
			q.Values[i] = RoundFloat16(v)
		}
		return nil
	}
	q.Bits = r.Bits
	rows, cols := 1, len(t.Data)
	if len(t.Shape) == 2 && !r.PerTensor {
		rows, cols = t.Shape[0], t.Shape[1]
	}
	q.ScaleFormat = FormatFP16
	if rows == 1 && (len(t.Shape) != 2 || r.PerTensor) {
		q.ScaleFormat = FormatFP32
	}
	q.Symbols = make([]int8, len(t.Data))
	q.Scales = make([]float32, rows)
	if len(t.Data) == 0 {
		q.Scales = q.Scales[:0]
		return nil
	}
	for row := range rows {
		w := t.Data[row*cols : (row+1)*cols]
		q.Scales[row] = quantizeRow(w, q.Symbols[row*cols:(row+1)*cols], r, q.ScaleFormat)
	}
	if r.GPTQ {
		if len(t.Shape) != 2 || r.PerTensor {
			return fmt.Errorf("quantize %s: GPTQ needs a 2-D tensor with per-row scales, shape %v", t.Name, t.Shape)
		}
		h, ok := opts.Hessians[t.Name]
		if !ok || h == nil {
			return fmt.Errorf("quantize %s: GPTQ rule but no Hessian for this tensor", t.Name)
		}
		var hi *gptqFine
		if len(protect) > 0 {
			hi = newGPTQFine(t.Data, rows, cols, r, protect, s.AWQ)
			q.Protected = hi.p
		}
		if err := gptq(t.Data, rows, cols, q.Scales, r.QMax(), h, s.GPTQ, q.Symbols, hi); err != nil {
			return fmt.Errorf("quantize %s: %w", t.Name, err)
		}
	}
	return nil
}

// newGPTQFine prepares AWQ-lite's protected groups of a matrix: their
// columns and per-row scales (the rule's clip over the finer grid).
func newGPTQFine(w []float32, rows, cols int, r Rule, starts []int, o *AWQOptions) *gptqFine {
	p := &Protected{Size: o.GroupSize, Starts: starts, Bits: o.Bits, Scales: make([]float32, rows)}
	p.Symbols = make([]int8, rows*len(starts)*o.GroupSize)
	qmax := 1<<(o.Bits-1) - 1
	for row := range rows {
		clip := RowClip(w[row*cols:(row+1)*cols], r.Clip, r.Bits, FormatFP16)
		_, p.Scales[row] = scaleFor(clip, qmax, r.ScaleFloor, FormatFP16)
	}
	f := &gptqFine{p: p, qmax: qmax, index: make([]int, cols)}
	for c := range f.index {
		f.index[c] = -1
	}
	for j, c := range p.columns() {
		f.index[c] = j
	}
	return f
}

// RowClip returns the clip of one row (or a whole tensor) under c, before
// any scale floor: the largest magnitude the row's symbols represent.
func RowClip(w []float32, c Clip, bits int, scaleFormat Format) float32 {
	switch c.Method {
	case ClipPercentile:
		abs := make([]float32, len(w))
		for i, v := range w {
			abs[i] = abs32(v)
		}
		return Quantile(abs, c.Value)
	case ClipStd:
		// float32 arithmetic, as the record's clip_sigmas * row_std on a
		// float32 tensor: one float64 product rounded once differs by an
		// ulp, which an fp16 scale on a rounding tie turns into a step.
		return float32(c.Value) * float32(stdDev(w))
	case ClipMSE:
		return mseClip(w, int(c.Value), bits, scaleFormat)
	}
	return maxAbs(w)
}

func maxAbs(w []float32) float32 {
	var m float32
	for _, v := range w {
		m = max(m, abs32(v))
	}
	return m
}

// stdDev is the sample standard deviation (n-1 in the denominator, as
// torch.std), accumulated in float64; 0 for fewer than two values.
func stdDev(w []float32) float64 {
	if len(w) < 2 {
		return 0
	}
	var mean float64
	for _, v := range w {
		mean += float64(v)
	}
	mean /= float64(len(w))
	var ss float64
	for _, v := range w {
		d := float64(v) - mean
		ss += d * d
	}
	return math.Sqrt(ss / float64(len(w)-1))
}

// scaleFor turns a clip into the stored scale: clip/qmax rounded to the
// storage format, kept positive and finite. A zero clip (an all-zero row)
// gives scale 1, so every symbol is 0.
func scaleFor(clip float32, qmax int, floor float32, format Format) (exact, stored float32) {
	exact = clip / float32(qmax)
	if floor > 0 {
		exact = max(exact, floor)
	}
	if !(exact > 0) {
		exact = 1
	}
	stored = exact
	if format == FormatFP16 {
		h := ToFloat16(exact)
		switch {
		case h&0x7fff == 0:
			h = 1 // smallest positive subnormal, 2^-24
		case h&0x7fff >= 0x7c00:
			h = 0x7bff // largest finite, 65504
		}
		stored = h.Float32()
	}
	return exact, stored
}

// quantizeRow fills sym with round-to-nearest-even symbols of w under rule r
// and returns the stored scale:
//
//	clip = RowClip(w);  scale = clip / qmax (floored, stored as ScaleFormat)
//	q    = clamp(round(clamp(w, -clip, clip) / scale), -qmax, qmax)
//
// with float32 arithmetic throughout, matching the reference script.
func quantizeRow(w []float32, sym []int8, r Rule, scaleFormat Format) float32 {
	qmax := r.QMax()
	clip := RowClip(w, r.Clip, r.Bits, scaleFormat)
	exact, stored := scaleFor(clip, qmax, r.ScaleFloor, scaleFormat)
	div := stored
	if r.RoundWithFP32Scale {
		div = exact
	}
	roundRow(w, sym, clip, div, qmax)
	return stored
}

// roundRow writes clamp(round(clamp(w, -clip, clip)/div), -qmax, qmax).
func roundRow(w []float32, sym []int8, clip, div float32, qmax int) {
	fq := float32(qmax)
	for i, v := range w {
		v = min(max(v, -clip), clip)
		x := float32(math.RoundToEven(float64(v / div)))
		sym[i] = int8(min(max(x, -fq), fq))
	}
}

// mseClip searches the clip grid of ClipMSE for the smallest squared error.
func mseClip(w []float32, grid, bits int, scaleFormat Format) float32 {
	m := maxAbs(w)
	if m == 0 || grid < 2 {
		return m
	}
	qmax := 1<<(bits-1) - 1
	fq := float32(qmax)
	best, bestErr := m, math.Inf(1)
	for i := range grid {
		frac := 1 - float64(i)*(1-mseMinFrac)/float64(grid-1)
		clip := float32(float64(m) * frac)
		_, s := scaleFor(clip, qmax, 0, scaleFormat)
		var e float64
		for _, v := range w {
			c := min(max(v, -clip), clip)
			x := float32(math.RoundToEven(float64(c / s)))
			x = min(max(x, -fq), fq)
			d := float64(v - x*s)
			e += d * d
		}
		if e < bestErr {
			best, bestErr = clip, e
		}
	}
	return best
}
