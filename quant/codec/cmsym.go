package codec

import "math"

// The symbol model of CM: what each bit of a quantized weight symbol is
// predicted from. A stream is read as rows of RowLen symbols (a matrix
// row-major, or its transpose); for the symbol at row i, position j, the
// contexts are its neighbours (left = (i, j-1), above = (i-1, j), ...),
// running statistics of its position j over the rows above (the signed
// mean, which trained weights shift per input feature, and the mean
// magnitude) and of row i so far, all relative to the stream's typical
// magnitude so one model serves every symbol width. Next to the adaptive
// tables sit parametric inputs (gauss.go): the bit probabilities of normal
// distributions fitted to the position and to the stream, which are right
// from the first rows, where counters are still learning.

const (
	sym3Clamp   = 14 // signed neighbour values are squeezed into ±14
	sym3Values  = 2*sym3Clamp + 1
	meanBuckets = 33 // signed mean / typical magnitude in 1/8 steps, ±16
	absBuckets  = 16 // mean magnitude, half octaves
	fineBuckets = 12<<fineFrac + 1
	// colWindow2: position statistics are the mean over the rows so far,
	// then a moving average at rate 1/128.
	colWindow2 = 128
	nSymModels = 6
	// apmRate is the APM's learning rate (2^-7) and apmShare its share of
	// the final probability (1/4): measured on quantized weights, a larger
	// share or rate costs more than it gains.
	apmRate  = 7
	apmShare = 1
	// nGauss is the parametric inputs (gauss.go): zero-mean normals with the
	// position's and the stream's second moment, and a normal around the
	// position mean scaled by the row's fit to the position means.
	nGauss = 3
	// nInputs is the mixers' inputs besides the bias.
	nInputs = nSymModels + nGauss
	// nMixers is the first-layer mixers.
	nMixers = 3
	// mixIn is the mixers' inputs: the models and a bias.
	mixIn = nInputs + 1
	// gaussPrior is the weight, in rows, of the stream's variance in a
	// position's variance estimate (shrinkage while few rows are seen).
	gaussPrior = 4
	// rowFitPrior is how many positions of typical magnitude a row's prior
	// fit of 1 to the position means weighs.
	rowFitPrior = 2
	// counterLimitSym caps the counters' update count (rate 1/(n+1.5)
	// down to about 1/1020).
	counterLimitSym = 1020
	// symMixRate and finalRate are the learning rates of the first-layer
	// mixers and of the second layer that combines them, in mixerRate's
	// units (2^-14 per unit error).
	symMixRate = 3
	finalRate  = 2
	// The mixers' initial weights (16.16): order-0 1/4, the parametric
	// inputs 1/2 each, the other tables 1/16. Measured on trained int6 and
	// int8 weights: starting near the normal models saves most of the cost
	// of learning the weights on small tensors.
	initW0 = 16384
	initWg = 32768
	initWo = 4096
)

// squeeze maps a signed symbol to [0, sym3Values): itself up to ±6, then
// logarithmic steps.
func squeeze(v int) int {
	a := v
	if a < 0 {
		a = -a
	}
	if a > 6 {
		a = min(6+bitsLen(uint32(a-6)), sym3Clamp)
	}
	if v < 0 {
		a = -a
	}
	return a + sym3Clamp
}

func bitsLen(x uint32) int {
	n := 0
	for x != 0 {
		x >>= 1
		n++
	}
	return n
}

// symbolModel is the adaptive state for one symbol width.
type symbolModel struct {
	bits, nodes, off int
	tables           [nSymModels][]counter
	mix              [nMixers]*mixer // weight sets: one; one per position magnitude bucket; one per tree node
	final            []int32         // second layer: weights of the mixers' outputs and a bias, per bit index
	apm              []uint16        // per node and colMean bucket: 33 interpolation points
	// typical magnitude: mean |s| in 8.8 fixed point over the stream
	absSum   int64
	absCount int64
	sqSum    int64 // sum of s²
}

// symSizes are the context counts of the models. Measured on quantized
// trained and synthetic weights, (left, above), (above, position mean) and
// the 3-neighbour context above cost more than they gained next to these.
var symSizes = [nSymModels]int{
	1,                         // order 0
	meanBuckets * absBuckets,  // position mean x position magnitude
	fineBuckets * fineBuckets, // position magnitude x row magnitude
	sym3Values * sym3Values,   // above x above-2
	sym3Values * sym3Values,   // left x left-2
	meanBuckets * absBuckets,  // row mean x row magnitude
}

func newSymbolModel(bits int) *symbolModel {
	m := &symbolModel{bits: bits, nodes: 1 << bits, off: 1 << (bits - 1)}
	for k, n := range symSizes {
		m.tables[k] = newCounters(n * m.nodes)
	}
	m.mix = [nMixers]*mixer{newMixer(mixIn, 1), newMixer(mixIn, absBuckets), newMixer(mixIn, m.nodes)}
	for _, mx := range m.mix {
		for i := range mx.weights {
			switch k := i % mixIn; {
			case k == 0:
				mx.weights[i] = initW0
			case k >= nSymModels && k < nInputs:
				mx.weights[i] = initWg
			case k == nInputs:
				mx.weights[i] = 0
			default:
				mx.weights[i] = initWo
			}
		}
	}
	m.final = make([]int32, (nMixers+1)*bits)
	for i := range m.final {
		if i%(nMixers+1) != nMixers {
			m.final[i] = 65536 / nMixers
		}
	}
	m.apm = make([]uint16, m.nodes*9*33)
	for i := range m.apm {
		m.apm[i] = uint16(squash(int32((i%33-16)*128)) * 16)
	}
	return m
}

// typical returns the mean |s| so far in 8.8 fixed point (at least 1/16).
func (m *symbolModel) typical() int32 {
	if m.absCount == 0 {
		return 256
	}
	return int32(max(m.absSum*256/m.absCount, 16))
}

// meanBucket maps a signed mean (8.8) relative to the typical magnitude t
// to [0, meanBuckets).
func meanBucket(mean, t int32) int {
	r := (int64(mean)*8 + int64(t)/2*sign64(mean)) / int64(t)
	return int(min(max(r, -16), 16)) + 16
}

func sign64(x int32) int64 {
	if x < 0 {
		return -1
	}
	return 1
}

func codeSymbols[C bitCoder](c C, m *symbolModel, data []byte, rowLen int, decoding bool) {
	if rowLen <= 0 || rowLen > len(data) {
		rowLen = len(data)
	}
	b, nodes := m.bits, m.nodes
	colMean := make([]int32, rowLen)
	colAbs := make([]int32, rowLen)
	colSq := make([]int32, rowLen) // mean s² in 8.8, as colMean
	var rowMean, rowAbs, rowSum, rowAbsSum int32
	var rowNum, rowDen int64 // Σ s·colMean and Σ colMean² over the row so far (16.16)
	var in1 [mixIn]int32
	var gs [nGauss]gaussNode
	var ctr [nSymModels]*counter
	var base [nSymModels]int
	j, rowsDone := 0, 0
	for i := range data {
		if i%exhaustedCheck == 0 && c.exhausted() {
			return
		}
		t := m.typical()
		left, left2, above, above2 := 0, 0, 0, 0
		if j > 0 {
			left = int(int8(data[i-1]))
			if j > 1 {
				left2 = int(int8(data[i-2]))
			}
		}
		if rowsDone > 0 {
			above = int(int8(data[i-rowLen]))
			if rowsDone > 1 {
				above2 = int(int8(data[i-2*rowLen]))
			}
		}
		cm := meanBucket(colMean[j], t)
		ca := logBucket(int32(int64(colAbs[j])*256/int64(t)), 1, absBuckets)
		cf := logBucket(colAbs[j], fineFrac, fineBuckets)
		rf := logBucket(rowAbs, fineFrac, fineBuckets)
		base[0] = 0
		base[1] = cm*absBuckets + ca
		base[2] = cf*fineBuckets + rf
		base[3] = squeeze(above)*sym3Values + squeeze(above2)
		base[4] = squeeze(left)*sym3Values + squeeze(left2)
		base[5] = meanBucket(rowMean, t)*absBuckets + logBucket(int32(int64(rowAbs)*256/int64(t)), 1, absBuckets)
		for k := range base {
			base[k] *= nodes
		}
		apmBase := (cm / 4) * nodes
		// The parametric inputs' distributions: zero-mean normals with the
		// position's second moment (shrunk towards the stream's by
		// gaussPrior rows) and with the stream's, and one around the
		// position mean with the position's (shrunk) variance.
		streamVar := int64(256 * 256)
		if m.absCount > 0 {
			streamVar = max(m.sqSum*256/m.absCount, 16)
		}
		nr := int64(min(rowsDone, colWindow2))
		cv := max(int64(colSq[j])-int64(colMean[j])*int64(colMean[j])>>8, 0)
		v := (nr*cv + gaussPrior*streamVar) / (nr + gaussPrior)
		v0 := (nr*int64(colSq[j]) + gaussPrior*streamVar) / (nr + gaussPrior)
		gs[0].start(0, isqrt8(v0))
		gs[1].start(0, isqrt8(streamVar))
		// The row's fit to the position means so far (1 when the row
		// follows them, 0 when it does not), from rowFitPrior positions'
		// worth of a prior fit of 1.
		prior := rowFitPrior * int64(t) * int64(t)
		fit := (rowNum + prior) * 256 / (rowDen + prior)
		gs[2].start(fit*int64(colMean[j])>>8, isqrt8(v))
		u := int(int8(data[i])) + m.off
		node := 1
		var fmid [nGauss]uint64
		for k := b - 1; k >= 0; k-- {
			mid := node<<(k+1) - nodes + 1<<k // the split's u: the prefix's range starts at node<<(k+1) - nodes
			// The mixers' dot products over the inputs' stretched
			// predictions (the same arithmetic as mixer.predict, inlined),
			// then the second layer over the mixers' outputs.
			sel := [nMixers]int{0, ca, node}
			var wm [nMixers][]int32
			var dot [nMixers]int64
			for x := range nMixers {
				wm[x] = m.mix[x].weights[sel[x]*mixIn : (sel[x]+1)*mixIn]
			}
			for t := range nSymModels {
				ctr[t] = &m.tables[t][base[t]+node]
				in1[t] = int32(stretchTable[ctr[t].p12()])
			}
			for g := range gs {
				pg, fm := gs[g].p12(mid, m.off)
				fmid[g] = fm
				in1[nSymModels+g] = int32(stretchTable[pg])
			}
			in1[nInputs] = biasInput
			for x := range nMixers {
				wx := wm[x][:mixIn:mixIn]
				var d int64
				for t := range mixIn {
					d += int64(in1[t]) * int64(wx[t])
				}
				dot[x] = d
			}
			var pmx [nMixers]int32
			var smx [nMixers + 1]int32
			wf := m.final[(b-1-k)*(nMixers+1) : (b-k)*(nMixers+1)]
			var dotf int64
			for x := range nMixers {
				pmx[x] = min(max(squash(int32(dot[x]>>16)), 1), probOne-1)
				smx[x] = int32(stretchTable[pmx[x]])
			}
			smx[nMixers] = biasInput
			for x, v := range smx {
				dotf += int64(v) * int64(wf[x])
			}
			pf := min(max(squash(int32(dotf>>16)), 1), probOne-1)
			st := int32(stretchTable[pf])
			// APM: refine the mixed probability by interpolating a learnt
			// curve over the stretched domain, per node and position mean.
			pos := int(st+2048) * 32 / 4096
			pos = min(max(pos, 0), 31)
			w := int32((st + 2048) - int32(pos)*128)
			w = min(max(w, 0), 128)
			ai := (apmBase+node)*33 + pos
			pa := (int32(m.apm[ai])*(128-w) + int32(m.apm[ai+1])*w) >> 11 // 16x scale, /128
			pm := squash(st)
			p := (pm*(4-apmShare) + apmShare*pa) / 4
			p = min(max(p, 1), probOne-1)
			bit := c.code(u>>k&1, uint32(p))
			// mixer.update for each, inlined.
			for x := range nMixers {
				e := (int32(bit)<<probBits - pmx[x]) * symMixRate
				wx := wm[x][:mixIn:mixIn]
				for t := range mixIn {
					wx[t] = min(max(wx[t]+(in1[t]*e+8192)>>14, -weightMax), weightMax)
				}
			}
			ef := (int32(bit)<<probBits - pf) * finalRate
			for x, v := range smx {
				wf[x] = min(max(wf[x]+(v*ef+8192)>>14, -weightMax), weightMax)
			}
			for t := range nSymModels {
				ctr[t].update(bit, counterLimitSym)
			}
			for g := range gs {
				gs[g].next(bit, fmid[g])
			}
			target := int32(bit) * 65535
			if w >= 64 {
				ai++
			}
			m.apm[ai] = uint16(int32(m.apm[ai]) + (target-int32(m.apm[ai]))>>apmRate)
			node = node<<1 | bit
		}
		s := node - nodes - m.off
		if decoding {
			data[i] = byte(int8(s))
		}
		mag := int32(s)
		if mag < 0 {
			mag = -mag
		}
		m.absSum += int64(mag)
		m.sqSum += int64(mag) * int64(mag)
		m.absCount++
		n := int32(min(rowsDone+1, colWindow2))
		colMean[j] += (int32(s)<<8 - colMean[j]) / n
		colAbs[j] += (mag<<8 - colAbs[j]) / n
		colSq[j] += (mag*mag<<8 - colSq[j]) / n
		rowSum += int32(s)
		rowAbsSum += mag
		rowNum += int64(s) << 8 * int64(colMean[j])
		rowDen += int64(colMean[j]) * int64(colMean[j])
		if j++; j == rowLen {
			j = 0
			rowsDone++
			rowSum, rowAbsSum = 0, 0
			rowNum, rowDen = 0, 0
		} else {
			rowMean = (rowSum << 8) / int32(j)
			rowAbs = (rowAbsSum << 8) / int32(j)
		}
	}
}

// isqrt8 returns sqrt(v) in 8.8 fixed point for a variance v in 8.8 (at
// least 1/4): the integer square root of v·256, exact on every platform.
func isqrt8(v int64) int64 {
	x := uint64(v) << 8
	r := uint64(math.Sqrt(float64(x))) // IEEE sqrt is correctly rounded; fix up the conversion
	for r*r > x {
		r--
	}
	for (r+1)*(r+1) <= x {
		r++
	}
	return max(int64(r), 64)
}
