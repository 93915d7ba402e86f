package quant

// ByteShuffle returns data with its bytes grouped by their offset modulo
// stride: every byte at offset ≡ 0, then every byte at offset ≡ 1, and so
// on (out = data[0::s] ++ data[1::s] ++ ... ++ data[s-1::s]). For
// little-endian fp16 values and stride 2 that is all low bytes, then all
// high bytes: the byte planes, whose high plane (sign and exponent) is far
// more regular than the interleaved bytes. It is the record's
// _byte_shuffle (PR #2135) without its 5-byte "BSHF"+stride prefix (the
// artifact's table records the stride). A stride below 2 or longer than
// data returns a copy of data.
func ByteShuffle(data []byte, stride int) []byte {
	out := make([]byte, 0, len(data))
	if stride < 2 || len(data) < stride {
		return append(out, data...)
	}
	for pos := range stride {
		for i := pos; i < len(data); i += stride {
			out = append(out, data[i])
		}
	}
	return out
}

// ByteUnshuffle inverts ByteShuffle with the same stride.
func ByteUnshuffle(data []byte, stride int) []byte {
	out := make([]byte, len(data))
	if stride < 2 || len(data) < stride {
		copy(out, data)
		return out
	}
	src := 0
	for pos := range stride {
		for i := pos; i < len(data); i += stride {
			out[i] = data[src]
			src++
		}
	}
	return out
}
