package codec

import "math/bits"

// The parametric input of the symbol model: the probability of each bit of
// a symbol under a discretised normal distribution whose mean and spread
// are estimated from what was coded before it. Quantized weight matrices
// are close to normal per input feature, so this input is right from the
// first symbol, where adaptive counters still have to learn.

const (
	gaussStepBits = 8                           // z grid: 1/256
	gaussRange    = 8                           // the table covers z in [-8, 8]
	gaussHalf     = gaussRange << gaussStepBits // grid points on each side of 0
	gaussOne      = 1 << 32                     // Φ is stored as Φ(z)·2^32
)

// gaussCDF[k] is Φ((k - gaussHalf)/256)·2^32, the standard normal CDF on
// the grid, built with integer arithmetic only (the density by the exact
// recurrence exp(-(k+1)²h²/2) = exp(-k²h²/2)·r^(2k+1), r = exp(-h²/2),
// then the trapezoid rule), so every platform builds the same table.
var gaussCDF = func() []uint64 {
	const q = 62 // fixed-point fraction bits of the density recurrence
	mul := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		return hi<<(64-q) | lo>>q
	}
	// r = exp(-x) with x = h²/2 = 2^-17, by its Taylor series.
	one := uint64(1) << q
	r, term := one, one
	for i := uint64(1); i <= 6; i++ {
		term = (term >> 17) / i
		if i%2 == 1 {
			r -= term
		} else {
			r += term
		}
	}
	r2 := mul(r, r)
	dens := make([]uint64, gaussHalf+1) // exp(-z²/2) at z = k/256, Q62
	dens[0] = one
	step := r // r^(2k+1)
	for k := 1; k <= gaussHalf; k++ {
		dens[k] = mul(dens[k-1], step)
		step = mul(step, r2)
	}
	// Cumulative trapezoid sums from z = -8 (density >> 20 keeps the sum
	// of 4,096 terms inside 64 bits).
	n := 2*gaussHalf + 1
	cum := make([]uint64, n)
	at := func(k int) uint64 { // density at grid point k of the full range
		if k < gaussHalf {
			return dens[gaussHalf-k] >> 20
		}
		return dens[k-gaussHalf] >> 20
	}
	for k := 1; k < n; k++ {
		cum[k] = cum[k-1] + (at(k-1)+at(k))/2
	}
	total := cum[n-1]
	out := make([]uint64, n)
	for k := range out {
		hi, lo := bits.Mul64(cum[k], gaussOne)
		out[k], _ = bits.Div64(hi, lo, total)
	}
	out[n-1] = gaussOne
	return out
}()

// gaussAt returns Φ(z)·2^32 for z in units of 1/256 (0 below -8, 1 above 8).
func gaussAt(z int64) uint64 {
	k := z + gaussHalf
	if k <= 0 {
		return 0
	}
	if k >= 2*gaussHalf {
		return gaussOne
	}
	return gaussCDF[k]
}

// gaussNode walks the symbol tree under one normal distribution: the CDF at
// the lower and upper end of the current node's range of u = s + off.
type gaussNode struct {
	mean, sd int64 // 8.8 fixed point; sd > 0
	flo, fhi uint64
}

// start sets the distribution for a new symbol; the mean is clamped to
// ±128 (beyond every symbol width), so later shifts cannot overflow.
func (g *gaussNode) start(mean, sd int64) {
	*g = gaussNode{mean: min(max(mean, -128<<8), 128<<8), sd: sd, fhi: gaussOne}
}

// cdf is Φ((s - 1/2 - mean)/sd): the probability of a symbol below s.
func (g *gaussNode) cdf(s int) uint64 {
	return gaussAt(((int64(s)<<8 - 128 - g.mean) << 8) / g.sd)
}

// p12 returns P(bit = 1) in 12 bits for the split at u = mid (symbol
// mid - off) of the current node.
func (g *gaussNode) p12(mid, off int) (p int32, fmid uint64) {
	fmid = g.cdf(mid - off)
	fmid = min(max(fmid, g.flo), g.fhi)
	if g.fhi == g.flo {
		return probOne / 2, fmid
	}
	p = int32((g.fhi - fmid) << probBits / (g.fhi - g.flo))
	return min(max(p, 1), probOne-1), fmid
}

// next descends to the half the coded bit chose; fmid is the CDF at the
// split, as p12 returned it.
func (g *gaussNode) next(bit int, fmid uint64) {
	if bit != 0 {
		g.flo = fmid
	} else {
		g.fhi = fmid
	}
}
