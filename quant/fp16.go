package quant

import "math"

// Float16 is an IEEE 754 binary16 value (1 sign, 5 exponent, 10 fraction
// bits), the storage format of scales and small tensors in artifacts.
type Float16 uint16

// ToFloat16 rounds f to the nearest binary16 value, ties to even, as
// PyTorch's tensor.to(torch.float16) does: magnitudes from 65520 up become
// infinity, values below 2^-25 become (signed) zero, subnormals keep their
// reduced precision, and NaN stays NaN.
func ToFloat16(f float32) Float16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return Float16(sign | 0x7e00)
		}
		return Float16(sign | 0x7c00)
	case exp == 0 && mant == 0:
		return Float16(sign)
	}
	e := exp - 127 + 15 // rebiased exponent
	if e >= 0x1f {
		return Float16(sign | 0x7c00)
	}
	if e <= 0 {
		// Subnormal half (or underflow): shift the full significand right.
		if e < -10 {
			return Float16(sign)
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return Float16(sign | uint16(half))
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to infinity: both correct
	}
	return Float16(sign | uint16(half))
}

// Float32 returns the exact float32 value of h.
func (h Float16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: mant * 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// RoundFloat16 returns f rounded to the nearest binary16 value, as a float32.
func RoundFloat16(f float32) float32 { return ToFloat16(f).Float32() }
