package quant

import (
	"math"
	"slices"
)

// Quantile returns the q-quantile of values the way torch.quantile does with
// its default linear interpolation, in float32 arithmetic, so clips computed
// here equal the reference script's bit for bit:
//
//	sorted ascending v[0..n-1]
//	rank  = float32(q) * float32(n-1)          (float32 product)
//	lo, hi = floor(rank), ceil(rank);  w = rank - lo
//	lerp(a=v[lo], b=v[hi], w) = a + w*(b-a)    if |w| < 0.5
//	                          = b - (b-a)*(1-w) otherwise
//
// values is not modified. It returns 0 for an empty slice and NaN when a value
// is NaN (as torch does).
func Quantile(values []float32, q float64) float32 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	for _, v := range sorted {
		if v != v {
			return float32(math.NaN())
		}
	}
	slices.Sort(sorted)
	return quantileSorted(sorted, q)
}

// quantileSorted is Quantile on values already sorted ascending.
func quantileSorted(sorted []float32, q float64) float32 {
	n := len(sorted)
	rank := float32(q) * float32(n-1)
	lo := int(rank) // rank >= 0: truncation is floor
	hi := int(float32(math.Ceil(float64(rank))))
	lo = min(max(lo, 0), n-1)
	hi = min(max(hi, 0), n-1)
	w := rank - float32(lo)
	return lerp32(sorted[lo], sorted[hi], w)
}

// lerp32 is torch's CPU lerp for float32, which keeps the interpolation exact
// at both ends. The float32 conversions forbid the compiler from fusing the
// multiply and add (which Go allows on some platforms), so every step rounds.
func lerp32(a, b, w float32) float32 {
	if abs32(w) < 0.5 {
		return a + float32(w*(b-a))
	}
	return b - float32((b-a)*(1-w))
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
