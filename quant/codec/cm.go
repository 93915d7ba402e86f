package codec

import (
	"fmt"
	"math/bits"
)

// CM is an adaptive context-model coder written for quantized weights.
//
// For symbol streams (Hint.Bits = b > 0) each symbol s is coded as the b bits
// of u = s + 2^(b-1), most significant first, walking a binary tree whose
// node is the prefix coded so far. Each bit's probability is a logistic mix
// (weights chosen by tree node and trained online) of five adaptive models,
// each a table of bit probabilities indexed by the node and a context:
//
//	order-0     no context: the tensor's symbol distribution
//	column      the mean |s| of column j over the rows above (the last 64
//	            once 64 rows are in), in quarter-octave buckets
//	row         the mean |s| of the current row so far (at a row start, the
//	            previous row's), in quarter-octave buckets
//	local       a moving average of |s| over the last few symbols of the row
//	            (rate 1/4), in half-octave buckets
//	joint       the column and row means together, in half-octave buckets
//
// On independent symbols with one distribution the mix settles on the
// order-0 model and costs a fraction of a percent above Order0Bits; where
// weights carry per-column or per-row magnitude structure (input features of
// different scale, rows of different shape), the column and row models code
// below the order-0 bound, which no static per-tensor table can do.
//
// For other bytes (Hint.Bits = 0) the models are order-0 and order-1 (the
// previous byte), both split by plane when Hint.RowLen gives the plane length
// of byte-planar floats (plane = offset / RowLen, at most 3).
//
// The stream is the arithmetic coder's output, followed inside the coded
// bits by a 16-bit end marker (0xA55A at probability 1/2 per bit) so that
// decoding with a wrong length fails with probability 1 - 2^-16; there is no
// header and no table.
type CM struct{}

// Name returns "cm".
func (CM) Name() string { return "cm" }

// Compress codes src with the model chosen by h.
func (CM) Compress(src []byte, h Hint) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	segs, ok := h.segments(len(src))
	if !ok {
		return nil, fmt.Errorf("cm: hint segments do not add up to the %d-byte stream", len(src))
	}
	if len(src) == 0 {
		return []byte{}, nil
	}
	off := 0
	for _, sg := range segs {
		if sg.Bits > 0 {
			lo, hi := -(1 << (sg.Bits - 1)), 1<<(sg.Bits-1)-1
			for i, v := range src[off : off+sg.Len] {
				if s := int(int8(v)); s < lo || s > hi {
					return nil, &SymbolRangeError{Codec: "cm", Index: off + i, Value: s, Bits: sg.Bits}
				}
			}
		}
		off += sg.Len
	}
	enc := newArithEncoder(len(src)/2 + 16)
	codeSegments(enc, src, segs, false)
	writeEndMarker(enc)
	return enc.finish(), nil
}

// codeSegments codes (or decodes into) data segment by segment.
func codeSegments[C bitCoder](c C, data []byte, segs []Segment, decoding bool) {
	off := 0
	for _, sg := range segs {
		part := data[off : off+sg.Len]
		off += sg.Len
		if len(part) == 0 {
			continue
		}
		if sg.Bits > 0 {
			codeSymbols(c, part, Hint{Bits: sg.Bits, RowLen: sg.RowLen}, decoding)
		} else {
			codeBytes(c, part, Hint{RowLen: sg.RowLen}, decoding)
		}
	}
}

// Decompress decodes rawLen bytes. It reads every byte of src and no more; a
// stream that ends early or has bytes left over is reported as corrupt (a
// stream corrupted in the middle decodes to other bytes: the artifact's
// checksum catches that).
func (CM) Decompress(src []byte, rawLen int, h Hint) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if rawLen < 0 {
		return nil, corrupt("cm", "negative raw length %d", rawLen)
	}
	segs, ok := h.segments(rawLen)
	if !ok {
		return nil, fmt.Errorf("cm: hint segments do not add up to the %d-byte stream", rawLen)
	}
	if rawLen == 0 {
		if len(src) != 0 {
			return nil, corrupt("cm", "%d bytes for an empty stream", len(src))
		}
		return []byte{}, nil
	}
	dec, ok := newArithDecoder(src)
	if !ok {
		return nil, corrupt("cm", "bad stream start")
	}
	out := make([]byte, rawLen)
	codeSegments(dec, out, segs, true)
	if !readEndMarker(dec) {
		return nil, corrupt("cm", "end marker missing: wrong length or corrupt stream")
	}
	if dec.over > 0 {
		return nil, corrupt("cm", "stream truncated (%d bytes missing)", dec.over)
	}
	if dec.pos != len(src) {
		return nil, corrupt("cm", "%d bytes after the end of the stream", len(src)-dec.pos)
	}
	return out, nil
}

// SymbolRangeError reports a byte that is not a symbol of the hinted width.
type SymbolRangeError struct {
	Codec string
	Index int
	Value int
	Bits  int
}

// Error says which symbol does not fit.
func (e *SymbolRangeError) Error() string {
	return fmt.Sprintf("%s: symbol %d at offset %d does not fit %d signed bits", e.Codec, e.Value, e.Index, e.Bits)
}

// bitCoder is the arithmetic encoder or decoder: code takes the bit to write
// (ignored when decoding) and its predicted probability, and returns the bit.
type bitCoder interface {
	code(bit int, p uint32) int
}

const (
	magBuckets   = 24 // half-octave buckets of an average |symbol|
	colWindow    = 64 // column average: mean of the rows so far, then rate 1/64
	rowRateShift = 2  // row average: rate 1/4 per symbol
	counterLimit = 255
	byteInputs   = 3 // order-0, order-1, bias
	biasInput    = 256
)

// magBucket maps an average magnitude in 8.8 fixed point to a half-octave
// bucket in [0, magBuckets).
func magBucket(avg int32) int {
	v := uint32(avg) >> 4 // units of 1/16
	l := bits.Len32(v)
	b := l
	if l >= 2 {
		b = 2*l - 1 + int(v>>(l-2)&1)
	} else if l == 1 {
		b = 1
	}
	return min(b, magBuckets-1)
}

// fineFrac is the resolution of the fine magnitude buckets: 2^-fineFrac
// octaves. Measured on synthetic int6 weights, quarter octaves beat half
// octaves by 0.1 % of the size and eighth octaves gain only 0.04 % more.
const fineFrac = 2

// logBucket maps an average magnitude in 8.8 fixed point to a bucket of
// 2^-frac octaves: 0 for averages below 1/16, then increasing.
func logBucket(avg int32, frac int, n int) int {
	v := uint32(avg) >> 4 // units of 1/16
	l := bits.Len32(v)
	if l == 0 {
		return 0
	}
	var f uint32
	if l > frac {
		f = v >> (l - 1 - frac) & (1<<frac - 1)
	} else {
		f = v << (frac + 1 - l) & (1<<frac - 1)
	}
	return min(((l-1)<<frac)+int(f)+1, n-1)
}

func codeSymbols[C bitCoder](c C, data []byte, h Hint, decoding bool) {
	b := h.Bits
	nodes := 1 << b
	off := nodes >> 1
	rowLen := h.RowLen
	if rowLen <= 0 || rowLen > len(data) {
		rowLen = len(data)
	}
	nFine := 12<<fineFrac + 1
	sizes := []int{1, nFine, nFine, magBuckets, magBuckets * magBuckets}
	tables := make([][]counter, len(sizes))
	for k, n := range sizes {
		tables[k] = newCounters(n * nodes)
	}
	nIn := len(sizes) + 1
	mx := newMixer(nIn, nodes)
	mx.in[nIn-1] = biasInput
	base := make([]int, len(sizes))
	ctrs := make([]*counter, len(sizes))
	colAvg := make([]int32, rowLen)
	var rowAvg, rowSum, rowMean int32
	j, rowsDone := 0, 0
	for i := range data {
		cf := logBucket(colAvg[j], fineFrac, nFine)
		base[1] = cf * nodes
		base[2] = logBucket(rowMean, fineFrac, nFine) * nodes
		base[3] = magBucket(rowAvg) * nodes
		base[4] = (magBucket(colAvg[j])*magBuckets + magBucket(rowMean)) * nodes
		u := int(int8(data[i])) + off
		node := 1
		for k := b - 1; k >= 0; k-- {
			for t := range tables {
				ctrs[t] = &tables[t][base[t]+node]
				mx.in[t] = int32(stretchTable[ctrs[t].p12()])
			}
			p := mx.predict(node)
			bit := c.code(u>>k&1, uint32(p))
			mx.update(bit)
			for _, ct := range ctrs {
				ct.update(bit, counterLimit)
			}
			node = node<<1 | bit
		}
		u = node - nodes
		s := u - off
		if decoding {
			data[i] = byte(int8(s))
		}
		mag := int32(s)
		if mag < 0 {
			mag = -mag
		}
		colAvg[j] += (mag<<8 - colAvg[j]) / int32(min(rowsDone+1, colWindow))
		rowAvg += (mag<<8 - rowAvg) >> rowRateShift
		rowSum += mag
		if j++; j == rowLen {
			j = 0
			rowsDone++
			rowSum = 0
		} else {
			rowMean = (rowSum << 8) / int32(j)
		}
	}
}

func codeBytes[C bitCoder](c C, data []byte, h Hint, decoding bool) {
	planeLen := h.RowLen
	o0 := newCounters(4 * 256)
	o1 := newCounters(4 * 256 * 256)
	mx := newMixer(byteInputs, 256)
	mx.in[byteInputs-1] = biasInput
	prev := 0
	plane, inPlane := 0, 0
	for i := range data {
		base0 := plane * 256
		base1 := (plane*256 + prev) * 256
		v := int(data[i])
		node := 1
		for k := 7; k >= 0; k-- {
			c0, c1 := &o0[base0+node], &o1[base1+node]
			mx.in[0] = int32(stretchTable[c0.p12()])
			mx.in[1] = int32(stretchTable[c1.p12()])
			p := mx.predict(node)
			bit := c.code(v>>k&1, uint32(p))
			mx.update(bit)
			c0.update(bit, counterLimit)
			c1.update(bit, counterLimit)
			node = node<<1 | bit
		}
		v = node - 256
		if decoding {
			data[i] = byte(v)
		}
		prev = v
		if planeLen > 0 {
			if inPlane++; inPlane == planeLen {
				inPlane = 0
				plane = min(plane+1, 3)
			}
		}
	}
}

func newCounters(n int) []counter {
	cs := make([]counter, n)
	for i := range cs {
		cs[i] = counterInit
	}
	return cs
}
