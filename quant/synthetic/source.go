package synthetic

import (
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/stat/distuv"
)

// studentNu is the degrees of freedom of the heavy-tailed rows.
const studentNu = 5

// Source is how FillMatrix drew one matrix:
//
//	w[r][c] = RowGain[r] · ColGain[c] · z
//
// with z standard normal, or Student-t with 5 degrees of freedom on the
// rows where StudentT(r). Knowing it, the entropy of the matrix's quantized
// symbols can be computed exactly instead of estimated from the draw.
type Source struct {
	RowGain, ColGain []float64
}

// StudentT reports whether row r was drawn from the Student-t.
func (s *Source) StudentT(r int) bool { return r%3 == 2 }

// SymbolEntropy returns, in bits, the entropy of the matrix's symbols when
// row r is rounded to the nearest multiple of divisors[r] and clamped to
// ±qmax (quant's round-to-nearest rules; a clip at or beyond qmax·divisor
// changes nothing), given the draw's gains:
//
//	H = Σ_r Σ_c H(p_rc),  u_rc = RowGain[r]·ColGain[c] / divisors[r]
//	p_rc(k) = F((k+½)/u_rc) − F((k−½)/u_rc)   for |k| < qmax
//	p_rc(±qmax) = 1 − F((qmax−½)/u_rc)
//
// with F the standard normal or Student-t CDF of the row. It is computed
// from the distribution, not from the drawn values. No code for the
// symbols, knowing the divisors, has a shorter expected length: a coder
// that does not know the gains either can only do worse (conditioning
// lowers entropy). Two approximations: the divisor, derived from the row's
// own spread, is treated as independent of the row's values, which is off
// by at most the information in the divisor (about a byte per row: 0.35 %
// of the floor of the record preset's 53,248 rows), and w's storage in
// float32 is ignored. H(u) is interpolated in log u from a table of 128
// points per octave over [2^-12, 2^12] (the ends held beyond), within 2e-5
// bits of the direct sum.
func (s *Source) SymbolEntropy(divisors []float32, qmax int) (float64, error) {
	if len(divisors) != len(s.RowGain) {
		return 0, fmt.Errorf("synthetic: %d divisors for a matrix of %d rows", len(divisors), len(s.RowGain))
	}
	if qmax < 1 || qmax > 127 {
		return 0, fmt.Errorf("synthetic: symbol bound %d outside [1, 127]", qmax)
	}
	gauss, student := entropyCurve(false, qmax), entropyCurve(true, qmax)
	var bits float64
	for r, d := range divisors {
		if !(d > 0) || math.IsInf(float64(d), 0) {
			return 0, fmt.Errorf("synthetic: row %d has divisor %v, want a positive finite value", r, d)
		}
		curve := gauss
		if s.StudentT(r) {
			curve = student
		}
		a := s.RowGain[r] / float64(d)
		for _, b := range s.ColGain {
			bits += curve.at(a * b)
		}
	}
	return bits, nil
}

// binEntropy is the entropy in bits of round(x/u) clamped to ±qmax, for x
// of the row's standard distribution: the H(p) of SymbolEntropy.
func binEntropy(studentT bool, qmax int, u float64) float64 {
	survival := distuv.UnitNormal.Survival
	if studentT {
		survival = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: studentNu}.Survival
	}
	plogp := func(p float64) float64 {
		if p <= 0 {
			return 0
		}
		return -p * math.Log2(p)
	}
	// By symmetry: the zero bin, then each positive bin twice.
	h := plogp(1 - 2*survival(0.5/u))
	for k := 1; k < qmax; k++ {
		h += 2 * plogp(survival((float64(k)-0.5)/u)-survival((float64(k)+0.5)/u))
	}
	return h + 2*plogp(survival((float64(qmax)-0.5)/u))
}

// curve is binEntropy tabulated over log2 u in [curveMin, curveMax].
type curve struct{ h []float64 }

const (
	curveMin, curveMax = -12, 12
	curveSteps         = 128 // points per octave
)

func (c *curve) at(u float64) float64 {
	x := (math.Log2(u) - curveMin) * curveSteps
	if x <= 0 {
		return c.h[0]
	}
	if n := float64(len(c.h) - 1); x >= n {
		return c.h[len(c.h)-1]
	}
	i := int(x)
	f := x - float64(i)
	return c.h[i]*(1-f) + c.h[i+1]*f
}

var curves sync.Map // curveKey -> *curve

type curveKey struct {
	studentT bool
	qmax     int
}

func entropyCurve(studentT bool, qmax int) *curve {
	k := curveKey{studentT, qmax}
	if c, ok := curves.Load(k); ok {
		return c.(*curve)
	}
	c := &curve{h: make([]float64, (curveMax-curveMin)*curveSteps+1)}
	for i := range c.h {
		c.h[i] = binEntropy(studentT, qmax, math.Exp2(curveMin+float64(i)/curveSteps))
	}
	v, _ := curves.LoadOrStore(k, c)
	return v.(*curve)
}
