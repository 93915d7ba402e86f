package quant

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// LQEROptions configures low-rank quantization-error correction (LQER,
// PR #1797; record-stack.md §4.3). After quantization the error
// E = W - Ŵ of every int matrix with per-row scales is measured; the TopK
// matrices of largest ‖E‖_F get a rank-Rank correction from E's truncated
// SVD, E ≈ A·B with A = U_r·diag(S_r) (rows × r) and B = V_rᵀ (r × cols),
// quantized as LQERFactors describe. The record uses rank 4, top 3, groups
// of 32.
type LQEROptions struct {
	Rank int // r, the correction's rank
	TopK int // how many matrices are corrected
	// Group is the asymmetric form's group size over B's flattened values;
	// a matrix whose B does not divide into groups gets the symmetric form.
	Group int
	// FactorBits is the symmetric form's symbol width for A and B (the
	// record's LQER_FACTOR_BITS, 4).
	FactorBits int
}

// Validate checks the options.
func (o LQEROptions) Validate() error {
	switch {
	case o.Rank < 1 || o.Rank > 64:
		return fmt.Errorf("lqer: rank %d outside 1..64", o.Rank)
	case o.TopK < 0:
		return fmt.Errorf("lqer: top-k %d is negative", o.TopK)
	case o.Group < 1:
		return fmt.Errorf("lqer: group size %d must be positive", o.Group)
	case o.FactorBits < 2 || o.FactorBits > 8:
		return fmt.Errorf("lqer: factor bits %d outside 2..8", o.FactorBits)
	}
	return nil
}

// RecordLQER returns the record's LQER settings: rank 4 on the 3 worst
// matrices, asymmetric with groups of 32, 4-bit symmetric fallback.
func RecordLQER() LQEROptions { return LQEROptions{Rank: 4, TopK: 3, Group: 32, FactorBits: 4} }

// LQERFactors is a quantized low-rank correction A·B of a rows × cols
// matrix: A is rows × Rank, B is Rank × cols, both row-major. Value i of A
// dequantizes to
//
//	a_i = float32(QA[i]) * SA[i / AGroup]
//
// and likewise b_i with SB and BGroup; the corrected matrix is
//
//	W[r][c] = q[r][c]·s[r] + sum_k a[r][k]·b[k][c]      (float32, k in order)
//
// Codes lie in [-2^(bits-1), 2^(bits-1) - 1] for ABits and BBits. The
// record's asymmetric form (_lqer_pack_asym) has ABits 2 with one scale
// max|A|/1.5 (AGroup = rows·Rank, codes -2..1) and BBits 4 with one scale
// max|g|/7.5 per group g of BGroup consecutive values of B (codes -8..7);
// the symmetric form (_lqer_pack) has one scale per row of A and of B,
// max|row|/(2^(bits-1)-1). Scales are fp16 values.
type LQERFactors struct {
	Rank         int
	ABits, BBits int
	AGroup       int
	BGroup       int
	QA, QB       []int8
	SA, SB       []float32
}

// apply adds the correction to the rows × cols matrix w.
func (f *LQERFactors) apply(w []float32, rows, cols int) {
	a := dequantGroups(f.QA, f.SA, f.AGroup)
	b := dequantGroups(f.QB, f.SB, f.BGroup)
	r := f.Rank
	for i := range rows {
		ai := a[i*r : (i+1)*r]
		row := w[i*cols : (i+1)*cols]
		for c := range row {
			var s float32
			for k, av := range ai {
				s += float32(av * b[k*cols+c]) // no fused multiply-add: same result everywhere
			}
			row[c] += s
		}
	}
}

func dequantGroups(q []int8, s []float32, group int) []float32 {
	out := make([]float32, len(q))
	for i, v := range q {
		out[i] = float32(v) * s[i/group]
	}
	return out
}

// validate checks the factors against a rows × cols matrix.
func (f *LQERFactors) validate(rows, cols int) error {
	switch {
	case f.Rank < 1 || f.Rank > min(rows, cols, 64):
		return fmt.Errorf("lqer rank %d invalid for %d x %d", f.Rank, rows, cols)
	case f.ABits < 2 || f.ABits > 8 || f.BBits < 2 || f.BBits > 8:
		return fmt.Errorf("lqer factor widths %d/%d outside 2..8", f.ABits, f.BBits)
	case len(f.QA) != rows*f.Rank || len(f.QB) != f.Rank*cols:
		return fmt.Errorf("lqer factors hold %d and %d codes, rank %d needs %d and %d", len(f.QA), len(f.QB), f.Rank, rows*f.Rank, f.Rank*cols)
	case f.AGroup < 1 || len(f.QA)%f.AGroup != 0 || len(f.SA) != len(f.QA)/f.AGroup:
		return fmt.Errorf("lqer A: %d scales for %d codes in groups of %d", len(f.SA), len(f.QA), f.AGroup)
	case f.BGroup < 1 || len(f.QB)%f.BGroup != 0 || len(f.SB) != len(f.QB)/f.BGroup:
		return fmt.Errorf("lqer B: %d scales for %d codes in groups of %d", len(f.SB), len(f.QB), f.BGroup)
	}
	for _, c := range []struct {
		q    []int8
		bits int
	}{{f.QA, f.ABits}, {f.QB, f.BBits}} {
		lo, hi := -(1 << (c.bits - 1)), 1<<(c.bits-1)-1
		for i, v := range c.q {
			if int(v) < lo || int(v) > hi {
				return fmt.Errorf("lqer code %d at %d outside %d..%d", v, i, lo, hi)
			}
		}
	}
	for _, s := range append(slices.Clone(f.SA), f.SB...) {
		if !(s > 0) || math.IsInf(float64(s), 0) || RoundFloat16(s) != s {
			return fmt.Errorf("lqer scale %v is not a positive fp16 value", s)
		}
	}
	return nil
}

// fp16Scale rounds a positive float32 scale to fp16, keeping it positive
// and finite (the record's clamp_min(1e-10) would round to zero in fp16).
func fp16Scale(v float32) float32 {
	_, s := scaleFor(v, 1, 0, FormatFP16)
	return s
}

func roundClamp(x float32, lo, hi float32) int8 {
	v := float32(math.RoundToEven(float64(x)))
	return int8(min(max(v, lo), hi))
}

// PackLQERAsym quantizes factors A (rows × rank) and B (rank × cols) as the
// record's _lqer_pack_asym: A to codes -2..1 with the single scale
// max(max|A|, 1e-10)/1.5, B in groups of g consecutive values to codes
// -8..7 with scales max(max|g|, 1e-10)/7.5, all scales in fp16 and codes
// rounded half to even from the fp16 scales. len(B) must be a multiple of g.
func PackLQERAsym(a, b []float32, rows, rank, cols, g int) (*LQERFactors, error) {
	if len(a) != rows*rank || len(b) != rank*cols || g < 1 || len(b)%g != 0 {
		return nil, fmt.Errorf("lqer: %d and %d values for %d x %d and %d x %d in groups of %d", len(a), len(b), rows, rank, rank, cols, g)
	}
	f := &LQERFactors{Rank: rank, ABits: 2, BBits: 4, AGroup: len(a), BGroup: g,
		QA: make([]int8, len(a)), QB: make([]int8, len(b)), SA: make([]float32, 1), SB: make([]float32, len(b)/g)}
	f.SA[0] = fp16Scale(max(maxAbs(a), 1e-10) / 1.5)
	for i, v := range a {
		f.QA[i] = roundClamp(v/f.SA[0], -2, 1)
	}
	for gi := range f.SB {
		grp := b[gi*g : (gi+1)*g]
		s := fp16Scale(max(maxAbs(grp), 1e-10) / 7.5)
		f.SB[gi] = s
		for i, v := range grp {
			f.QB[gi*g+i] = roundClamp(v/s, -8, 7)
		}
	}
	return f, nil
}

// PackLQERSym quantizes A and B as the record's _lqer_pack: one fp16 scale
// per row of each, max(max|row|, 1e-10)/(2^(bits-1)-1), codes within
// ±(2^(bits-1)-1).
func PackLQERSym(a, b []float32, rows, rank, cols, bits int) (*LQERFactors, error) {
	if len(a) != rows*rank || len(b) != rank*cols || bits < 2 || bits > 8 {
		return nil, fmt.Errorf("lqer: %d and %d values for %d x %d and %d x %d at %d bits", len(a), len(b), rows, rank, rank, cols, bits)
	}
	rng := float32(int(1)<<(bits-1) - 1)
	f := &LQERFactors{Rank: rank, ABits: bits, BBits: bits, AGroup: rank, BGroup: cols,
		QA: make([]int8, len(a)), QB: make([]int8, len(b)), SA: make([]float32, rows), SB: make([]float32, rank)}
	pack := func(v, s []float32, q []int8, n int) {
		for r := range s {
			row := v[r*n : (r+1)*n]
			s[r] = fp16Scale(max(maxAbs(row), 1e-10) / rng)
			for i, x := range row {
				q[r*n+i] = roundClamp(x/s[r], -rng, rng)
			}
		}
	}
	pack(a, f.SA, f.QA, rank)
	pack(b, f.SB, f.QB, cols)
	return f, nil
}

// lowRank returns the rank-r truncated SVD factors of the rows × cols
// matrix e: A = U_r·diag(S_r) (rows × r) and B = V_rᵀ (r × cols), in
// float32. The SVD runs in float64.
func lowRank(e []float32, rows, cols, r int) (a, b []float32, err error) {
	m := mat.NewDense(rows, cols, nil)
	for i := range rows {
		for j := range cols {
			m.Set(i, j, float64(e[i*cols+j]))
		}
	}
	var svd mat.SVD
	if !svd.Factorize(m, mat.SVDThin) {
		return nil, nil, fmt.Errorf("lqer: SVD did not converge")
	}
	s := svd.Values(nil)
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	r = min(r, len(s))
	a = make([]float32, rows*r)
	b = make([]float32, r*cols)
	for i := range rows {
		for k := range r {
			a[i*r+k] = float32(u.At(i, k) * s[k])
		}
	}
	for k := range r {
		for j := range cols {
			b[k*cols+j] = float32(v.At(j, k))
		}
	}
	return a, b, nil
}

// fitLQER fits the correction of one matrix with error e.
func fitLQER(e []float32, rows, cols int, o LQEROptions) (*LQERFactors, error) {
	a, b, err := lowRank(e, rows, cols, o.Rank)
	if err != nil {
		return nil, err
	}
	r := len(a) / rows
	if len(b)%o.Group == 0 {
		return PackLQERAsym(a, b, rows, r, cols, o.Group)
	}
	return PackLQERSym(a, b, rows, r, cols, o.FactorBits)
}

// lqerCandidate is a matrix eligible for correction with its error.
type lqerCandidate struct {
	index int
	err   []float32
	norm  float64
}

// applyLQER fits corrections for the TopK matrices of q (with per-row int
// scales) whose error against the original weights w is largest.
func applyLQER(q *Quantized, w [][]float32, o LQEROptions) error {
	var cands []lqerCandidate
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if t.Format != FormatInt || t.ScaleFormat != FormatFP16 || len(t.Shape) != 2 || t.NumElements() == 0 {
			continue
		}
		deq := t.Dequantize().Data
		e := make([]float32, len(deq))
		var ss float64
		for j, v := range w[i] {
			e[j] = v - deq[j]
			ss += float64(e[j]) * float64(e[j])
		}
		cands = append(cands, lqerCandidate{i, e, math.Sqrt(ss)})
	}
	slices.SortStableFunc(cands, func(a, b lqerCandidate) int {
		switch {
		case a.norm > b.norm:
			return -1
		case a.norm < b.norm:
			return 1
		}
		return 0
	})
	for _, c := range cands[:min(o.TopK, len(cands))] {
		t := &q.Tensors[c.index]
		f, err := fitLQER(c.err, t.Shape[0], t.Shape[1], o)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		t.LQER = f
	}
	return nil
}
