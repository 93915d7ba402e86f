package quant

import (
	"math"
	"testing"
)

func TestFloat16RoundTripsEveryValue(t *testing.T) {
	for i := range 1 << 16 {
		h := Float16(i)
		f := h.Float32()
		if f != f {
			if ToFloat16(f)&0x7c00 != 0x7c00 || ToFloat16(f)&0x3ff == 0 {
				t.Fatalf("NaN %04x came back as %04x", i, ToFloat16(f))
			}
			continue
		}
		if got := ToFloat16(f); got != h {
			t.Fatalf("fp16 %04x -> %v -> %04x", i, f, got)
		}
	}
}

// Between two neighbouring fp16 values the midpoint rounds to the one with
// an even mantissa, and anything off the midpoint to the nearer one.
func TestFloat16RoundsToNearestEven(t *testing.T) {
	for i := range 0x7bff { // positive finite values below the largest
		lo, hi := Float16(i), Float16(i+1)
		a, b := lo.Float32(), hi.Float32()
		mid := float32((float64(a) + float64(b)) / 2) // exact: fp16 has 11 significant bits
		even := lo
		if lo&1 == 1 {
			even = hi
		}
		if got := ToFloat16(mid); got != even {
			t.Fatalf("midpoint of %04x and %04x (%v) -> %04x, want %04x", lo, hi, mid, got, even)
		}
		if got := ToFloat16(math.Nextafter32(mid, 0)); got != lo {
			t.Fatalf("just below the midpoint %v -> %04x, want %04x", mid, got, lo)
		}
		if got := ToFloat16(math.Nextafter32(mid, 1e9)); got != hi {
			t.Fatalf("just above the midpoint %v -> %04x, want %04x", mid, got, hi)
		}
		if got := ToFloat16(-mid); got != even|0x8000 {
			t.Fatalf("negative midpoint -> %04x", got)
		}
	}
}

func TestFloat16HandValues(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want Float16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65519.99, 0x7bff}, {65520, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {2.98e-08, 0x0000},
		{3.0e-08, 0x0001}, {6.097555160522461e-05, 0x03ff}, {0.1, 0x2e66}, {1.0 / 127, 0x2008},
	} {
		if got := ToFloat16(c.f); got != c.want {
			t.Errorf("ToFloat16(%v) = %04x, want %04x", c.f, got, c.want)
		}
	}
}
