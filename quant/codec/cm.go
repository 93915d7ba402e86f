package codec

import (
	"fmt"
	"math/bits"
)

// CM is an adaptive context-mixing coder written for quantized weights.
//
// For symbol streams (Hint.Bits = b > 0, or Hint.Segments) each symbol s is
// coded as the b bits of u = s + 2^(b-1), most significant first, walking a
// binary tree whose node is the prefix coded so far. The stream is read as
// rows of RowLen symbols (a matrix row-major, or transposed). Each bit's
// probability comes from six adaptive models, each a table of bit
// probabilities indexed by the tree node and a context (cmsym.go):
//
//	order-0        no context: the tensor's symbol distribution
//	position       the signed mean and the mean |s| of position j over the
//	               rows above (trained weights shift and scale per input
//	               feature), relative to the stream's typical |s|
//	magnitudes     position mean |s| x row-so-far mean |s|, quarter octaves
//	above          the two symbols above (same position, previous rows)
//	left           the two symbols before it in the row
//	row            the signed and absolute means of the row so far
//
// and three parametric inputs with no table (gauss.go): the bit's
// probability under discretised normal distributions N(0, m2_j), N(0, m2)
// and N(f·mean_j, var_j), where m2_j, mean_j and var_j are the position's
// second moment, mean and variance over the rows above (shrunk towards the
// stream's m2 while few rows are seen), m2 the stream's, and f the row's
// least-squares fit to the position means so far (1 for rows that follow
// the common profile, as unused embedding rows do). They are mixed by three
// logistic mixers (one weight set, one per position magnitude, one per tree
// node) and a second layer per bit index, trained online to minimise the
// coding cost, then refined by an adaptive probability map (APM) indexed by
// node and position mean. The segments of a per-class stream share one model per
// symbol width, so a class's tensors share what was learnt. On independent
// normal symbols it codes a fraction of a percent above Order0Bits on large
// tensors and about 1 % above on 8,192-symbol ones (the normal inputs
// halve what the tables alone pay to learn); where symbols carry
// per-feature shifts or magnitudes, or neighbours agree (similarity-sorted
// rows), it codes below the order-0 bound, which no static per-tensor table
// can do.
//
// For other bytes (Hint.Bits = 0) the models are order-0 and order-1 (the
// previous byte), both split by plane when Hint.RowLen gives the plane length
// of byte-planar floats (plane = offset / RowLen, at most 3).
//
// The stream is the arithmetic coder's output, followed inside the coded
// bits by a 16-bit end marker (0xA55A at probability 1/2 per bit), so that
// decoding with a wrong length fails unless the symbols added or dropped
// cost the coder almost nothing (a long run of one predictable symbol: an
// artifact's header fixes every stream's length); there is no header and no
// table. Everything is integer arithmetic, so encoder and
// decoder agree on every platform.
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

// codeSegments codes (or decodes into) data segment by segment. Symbol
// segments of one width share one model, so the tensors of a per-class
// stream share what the model has learnt.
func codeSegments[C bitCoder](c C, data []byte, segs []Segment, decoding bool) {
	models := map[int]*symbolModel{}
	off := 0
	for _, sg := range segs {
		part := data[off : off+sg.Len]
		off += sg.Len
		if len(part) == 0 {
			continue
		}
		if sg.Bits > 0 {
			m := models[sg.Bits]
			if m == nil {
				m = newSymbolModel(sg.Bits)
				models[sg.Bits] = m
			}
			codeSymbols(c, m, part, sg.RowLen, decoding)
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
	if dec.over > 0 {
		return nil, corrupt("cm", "stream truncated: it ends before the %d bytes it should decode to", rawLen)
	}
	if !readEndMarker(dec) || dec.over > 0 {
		return nil, corrupt("cm", "end marker missing: wrong length or corrupt stream")
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
	// exhausted reports a decoder that has read past the end of its
	// stream: a valid stream never does, so decoding stops there instead
	// of running on zeros to the declared length (a few bytes declaring
	// 2^28 symbols would otherwise take minutes to reject).
	exhausted() bool
}

// exhaustedCheck is how many symbols or bytes are coded between two
// exhausted checks.
const exhaustedCheck = 1024

const (
	counterLimit = 255
	byteInputs   = 3 // order-0, order-1, bias
	biasInput    = 256
)

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

func codeBytes[C bitCoder](c C, data []byte, h Hint, decoding bool) {
	planeLen := h.RowLen
	o0 := newCounters(4 * 256)
	o1 := newCounters(4 * 256 * 256)
	mx := newMixer(byteInputs, 256)
	mx.in[byteInputs-1] = biasInput
	prev := 0
	plane, inPlane := 0, 0
	for i := range data {
		if i%exhaustedCheck == 0 && c.exhausted() {
			return
		}
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

// newCounters returns n counters at P = 1/2 (the zero value).
func newCounters(n int) []counter { return make([]counter, n) }
