package codec

// A binary arithmetic (range) coder with 12-bit probabilities and the usual
// carry handling by a cached byte and a count of pending 0xFF bytes. The coder
// state is a 33-bit low end and a 32-bit range kept at or above 2^24 by
// shifting out one byte at a time.
//
// Every quantity is an integer, so the encoder and the decoder agree
// bit-for-bit on every platform (floating-point models could differ where the
// compiler fuses multiply-adds, e.g. on arm64).

const (
	probBits = 12
	probOne  = 1 << probBits // probabilities are P(bit = 1) * 4096, in [1, 4095]
	rangeTop = 1 << 24
)

type arithEncoder struct {
	low     uint64
	rng     uint32
	cache   byte
	pending int64
	out     []byte
}

func newArithEncoder(sizeHint int) *arithEncoder {
	return &arithEncoder{rng: 0xFFFFFFFF, pending: 1, out: make([]byte, 0, sizeHint)}
}

// code writes bit, which the model predicted to be 1 with probability p/4096.
// exhausted is false: an encoder has no end to read past.
func (e *arithEncoder) exhausted() bool { return false }

func (e *arithEncoder) code(bit int, p uint32) int {
	bound := (e.rng >> probBits) * p
	if bit != 0 {
		e.rng = bound
	} else {
		e.low += uint64(bound)
		e.rng -= bound
	}
	for e.rng < rangeTop {
		e.rng <<= 8
		e.shiftLow()
	}
	return bit
}

// shiftLow moves the top byte of low out, resolving a pending carry.
func (e *arithEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low >= 1<<32 {
		carry := byte(e.low >> 32)
		b := e.cache
		for {
			e.out = append(e.out, b+carry)
			b = 0xFF
			e.pending--
			if e.pending == 0 {
				break
			}
		}
		e.cache = byte(e.low >> 24)
	}
	e.pending++
	e.low = (e.low & 0x00FFFFFF) << 8
}

// finish flushes the state; the stream is complete after it. The first byte
// the carry scheme emits is always zero (the coded value lies in the initial
// interval [0, 2^32)), so it is dropped and the decoder assumes it.
func (e *arithEncoder) finish() []byte {
	for range 5 {
		e.shiftLow()
	}
	return e.out[1:]
}

type arithDecoder struct {
	val  uint32
	rng  uint32
	src  []byte
	pos  int
	over int // bytes read past the end of src (as zeros)
}

func newArithDecoder(src []byte) (*arithDecoder, bool) {
	d := &arithDecoder{rng: 0xFFFFFFFF, src: src}
	if len(src) < 4 {
		return d, false
	}
	for range 4 {
		d.val = d.val<<8 | uint32(d.next())
	}
	return d, true
}

func (d *arithDecoder) next() byte {
	if d.pos < len(d.src) {
		b := d.src[d.pos]
		d.pos++
		return b
	}
	d.over++
	return 0
}

// exhausted reports whether the decoder has read past the end of src.
func (d *arithDecoder) exhausted() bool { return d.over > 0 }

// code returns the next bit, predicted to be 1 with probability p/4096. The
// bit argument is ignored; it lets encoder and decoder share model code.
func (d *arithDecoder) code(_ int, p uint32) int {
	bound := (d.rng >> probBits) * p
	var bit int
	if d.val < bound {
		d.rng = bound
		bit = 1
	} else {
		d.val -= bound
		d.rng -= bound
	}
	for d.rng < rangeTop {
		d.rng <<= 8
		d.val = d.val<<8 | uint32(d.next())
	}
	return bit
}

// endMarker closes every arithmetic-coded stream.
const endMarker = 0xA55A

func writeEndMarker(c bitCoder) {
	for k := 15; k >= 0; k-- {
		c.code(endMarker>>k&1, probOne/2)
	}
}

func readEndMarker(c bitCoder) bool {
	v := 0
	for range 16 {
		v = v<<1 | c.code(0, probOne/2)
	}
	return v == endMarker
}

// squashTable holds 4096/(1+exp(-x/256)) at x = -2048, -1920, ..., 2048.
var squashTable = [33]int32{1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546,
	2048, 2550, 2994, 3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095}

// squash maps a logit x (scaled by 256, clamped to ±2047) to a 12-bit
// probability by linear interpolation in squashTable.
func squash(x int32) int32 {
	if x > 2047 {
		x = 2047
	}
	if x < -2047 {
		x = -2047
	}
	i := (x + 2048) >> 7
	w := (x + 2048) & 127
	return (squashTable[i]*(128-w) + squashTable[i+1]*w + 64) >> 7
}

// stretchTable inverts squash: stretchTable[p] is the smallest x with squash(x) >= p.
var stretchTable = func() [probOne]int16 {
	var t [probOne]int16
	pi := int32(0)
	for x := int32(-2047); x <= 2047; x++ {
		v := squash(x)
		for j := pi; j <= v; j++ {
			t[j] = int16(x)
		}
		pi = v + 1
	}
	for j := pi; j < probOne; j++ {
		t[j] = 2047
	}
	return t
}()

// counter is an adaptive bit probability: P(1) in the top 22 bits (stored
// XOR 2^21, so that the zero value is P = 1/2: tables need no
// initialisation pass) and the number of updates so far (capped) in the low
// 10 bits. Its learning rate is 1/(n+1.5) for the first updates, so a fresh
// context learns as fast as a frequency count, and settles at
// 1/(limit+1.5) to track slow drift.
type counter uint32

const counterBias = 1 << 21 // the stored probability is P XOR counterBias

var counterRate = func() [1024]int32 {
	var r [1024]int32
	for n := range r {
		r[n] = int32(65536 * 2 / (2*n + 3))
	}
	return r
}()

// p22 returns P(1) in 22 bits.
func (c counter) p22() int64 { return int64(uint32(c)>>10 ^ counterBias) }

// p12 returns the probability of a 1 in 12 bits, within [1, 4095].
func (c counter) p12() int32 {
	p := int32(c.p22() >> 10)
	return min(max(p, 1), probOne-1)
}

func (c *counter) update(bit int, limit uint32) {
	n := uint32(*c) & 1023
	p := c.p22()
	target := int64(0)
	if bit != 0 {
		target = 1<<22 - 1
	}
	p += (target - p) * int64(counterRate[n]) >> 16
	if n < limit {
		n++
	}
	*c = counter((uint32(p)^counterBias)<<10 | n)
}

// mixer combines the stretched predictions of several models with weights
// trained online to minimise coding cost (a one-layer logistic network).
type mixer struct {
	n       int     // inputs per weight set
	weights []int32 // 16.16 fixed point, one set per selector value
	in      []int32 // current stretched inputs
	set     int     // offset of the selected weight set
	pr      int32   // last output probability
}

// mixerRate is the mixer's learning rate in units of 2^-14 per unit error:
// measured on synthetic weight symbols, rates from 2 to 4 cost 0.3 % over the
// order-0 bound on independent symbols and larger ones more (1.1 % at 32).
const mixerRate = 3

// weightMax bounds each mixer weight (64.0) so dot products stay in range.
const weightMax = 64 << 16

func newMixer(inputs, sets int) *mixer {
	m := &mixer{n: inputs, weights: make([]int32, inputs*sets), in: make([]int32, inputs)}
	for i := range m.weights {
		m.weights[i] = 65536 / 4
	}
	return m
}

// predict returns P(1) in 12 bits using weight set sel.
func (m *mixer) predict(sel int) int32 {
	m.set = sel * m.n
	w := m.weights[m.set : m.set+m.n]
	var dot int64
	for i, x := range m.in {
		dot += int64(x) * int64(w[i])
	}
	p := squash(int32(dot >> 16))
	m.pr = min(max(p, 1), probOne-1)
	return m.pr
}

// update moves the selected weights along the gradient of the coding cost.
func (m *mixer) update(bit int) {
	err := (int32(bit)<<probBits - m.pr) * mixerRate
	w := m.weights[m.set : m.set+m.n]
	for i, x := range m.in {
		w[i] = min(max(w[i]+(x*err+8192)>>14, -weightMax), weightMax)
	}
}
