package codec

import (
	"math"
	"testing"
)

// The integer-built normal CDF table must match the float64 one to well
// within what 12-bit probabilities can tell apart, be monotone and be
// symmetric, Φ(-z) = 1 - Φ(z).
func TestGaussCDFTable(t *testing.T) {
	prev := uint64(0)
	worst := 0.0
	for k, v := range gaussCDF {
		if v < prev {
			t.Fatalf("Φ table decreases at %d", k)
		}
		prev = v
		z := float64(k-gaussHalf) / 256
		want := 0.5 * math.Erfc(-z/math.Sqrt2)
		worst = max(worst, math.Abs(float64(v)/gaussOne-want))
		if mirror := gaussCDF[len(gaussCDF)-1-k]; k != gaussHalf && absDiff(v+mirror, gaussOne) > 2 {
			t.Fatalf("Φ(%v) + Φ(%v) = %d/2^32, want 1", z, -z, v+mirror)
		}
	}
	if worst > 1e-6 {
		t.Errorf("Φ table differs from erfc by %.2g, want <= 1e-6", worst)
	}
	if got := gaussCDF[gaussHalf]; absDiff(got, gaussOne/2) > 1 {
		t.Errorf("Φ(0) = %d/2^32, want 1/2", got)
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// The node probabilities of one normal walk must multiply out to the
// symbol's probability mass: Σ over symbols of Π P(bit) = 1 and each
// product equals Φ(s+1/2) - Φ(s-1/2) (12-bit rounding aside).
func TestGaussNodeProbabilities(t *testing.T) {
	const bits = 6
	nodes, off := 1<<bits, 1<<(bits-1)
	mean, sd := 1.75, 2.4
	total := 0.0
	for u := range nodes {
		var g gaussNode
		g.start(int64(mean*256), int64(sd*256))
		p, node := 1.0, 1
		for k := bits - 1; k >= 0; k-- {
			mid := node<<(k+1) - nodes + 1<<k
			p1, fm := g.p12(mid, off)
			bit := u >> k & 1
			if bit == 1 {
				p *= float64(p1) / probOne
			} else {
				p *= 1 - float64(p1)/probOne
			}
			g.next(bit, fm)
			node = node<<1 | bit
		}
		total += p
		s := float64(u - off)
		phi := func(x float64) float64 { return 0.5 * math.Erfc(-(x-mean)/sd/math.Sqrt2) }
		want := phi(s+0.5) - phi(s-0.5)
		if want > 1e-3 && math.Abs(p-want) > 0.01*want {
			t.Errorf("symbol %v: probability %.5f, want %.5f", s, p, want)
		}
	}
	if math.Abs(total-1) > 0.01 {
		t.Errorf("probabilities add up to %.4f", total)
	}
}
