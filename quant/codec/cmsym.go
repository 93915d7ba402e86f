package codec

// The symbol model of CM: what each bit of a quantized weight symbol is
// predicted from. A stream is read as rows of RowLen symbols (a matrix
// row-major, or its transpose); for the symbol at row i, position j, the
// contexts are its neighbours (left = (i, j-1), above = (i-1, j), ...),
// running statistics of its position j over the rows above (the signed
// mean, which trained weights shift per input feature, and the mean
// magnitude) and of row i so far, all relative to the stream's typical
// magnitude so one model serves every symbol width.

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
	// mixIn is the mixers' inputs: the models and a bias.
	mixIn = nSymModels + 1
	// counterLimitSym caps the counters' update count (rate 1/(n+1.5)
	// down to about 1/1020).
	counterLimitSym = 1020
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
	mx1, mx2         *mixer
	apm              []uint16 // per node and colMean bucket: 33 interpolation points
	// typical magnitude: mean |s| in 8.8 fixed point over the stream
	absSum   int64
	absCount int64
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
	m.mx1 = newMixer(nSymModels+1, m.nodes)
	m.mx2 = newMixer(nSymModels+1, absBuckets*bits)
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
	var rowMean, rowAbs, rowSum, rowAbsSum int32
	var in1 [nSymModels]int32
	var ctr [nSymModels]*counter
	var base [nSymModels]int
	j, rowsDone := 0, 0
	for i := range data {
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
		u := int(int8(data[i])) + m.off
		node := 1
		for k := b - 1; k >= 0; k-- {
			// The two mixers' dot products over the models' stretched
			// predictions (the same arithmetic as mixer.predict, inlined).
			sel2 := ca*b + (b - 1 - k)
			w1 := m.mx1.weights[node*mixIn : (node+1)*mixIn]
			w2 := m.mx2.weights[sel2*mixIn : (sel2+1)*mixIn]
			var dot1, dot2 int64
			for t := range nSymModels {
				ctr[t] = &m.tables[t][base[t]+node]
				st := int32(stretchTable[ctr[t].p12()])
				in1[t] = st
				dot1 += int64(st) * int64(w1[t])
				dot2 += int64(st) * int64(w2[t])
			}
			dot1 += biasInput * int64(w1[nSymModels])
			dot2 += biasInput * int64(w2[nSymModels])
			p1 := min(max(squash(int32(dot1>>16)), 1), probOne-1)
			p2 := min(max(squash(int32(dot2>>16)), 1), probOne-1)
			st := (int32(stretchTable[p1]) + int32(stretchTable[p2])) / 2
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
			// mixer.update for both, inlined.
			e1 := (int32(bit)<<probBits - p1) * mixerRate
			e2 := (int32(bit)<<probBits - p2) * mixerRate
			for t := range nSymModels {
				x := in1[t]
				w1[t] = min(max(w1[t]+(x*e1+8192)>>14, -weightMax), weightMax)
				w2[t] = min(max(w2[t]+(x*e2+8192)>>14, -weightMax), weightMax)
				ctr[t].update(bit, counterLimitSym)
			}
			w1[nSymModels] = min(max(w1[nSymModels]+(biasInput*e1+8192)>>14, -weightMax), weightMax)
			w2[nSymModels] = min(max(w2[nSymModels]+(biasInput*e2+8192)>>14, -weightMax), weightMax)
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
		m.absCount++
		n := int32(min(rowsDone+1, colWindow2))
		colMean[j] += (int32(s)<<8 - colMean[j]) / n
		colAbs[j] += (mag<<8 - colAbs[j]) / n
		rowSum += int32(s)
		rowAbsSum += mag
		if j++; j == rowLen {
			j = 0
			rowsDone++
			rowSum, rowAbsSum = 0, 0
		} else {
			rowMean = (rowSum << 8) / int32(j)
			rowAbs = (rowAbsSum << 8) / int32(j)
		}
	}
}
