package eval

import (
	"errors"
	"fmt"
	"math"
)

// Tilt configures the token-only n-gram tilt of PR #2135 (record-stack.md
// §6.4; the record's online_ngram_state.c and online_ngram_tilt.py). One
// left-to-right pass over the validation targets in stream order gives
// each target a hint h, the token that most often followed the same
// Order-1 previous targets so far; where that count reaches Threshold of
// the context's occurrences the scored distribution is tilted towards h
// and renormalised over the whole vocabulary:
//
//	p'(a) = p(a) · e^{β·1[a=h]} / Z,   Z = 1 + q(e^β − 1),  q = p(h)
//	NLL'  = NLL − β·1[y=h] + log(1 + q(e^β − 1))
//
// The hint of a target depends only on the targets before it, so the tilt
// is causal; Z makes p' a distribution.
type Tilt struct {
	// Order is the n-gram order: the context is the Order-1 previous
	// targets (record 16).
	Order int `json:"order"`
	// Threshold gates the tilt: the hint's share of its context's
	// occurrences, top_count/total in float32, must be >= Threshold
	// (record 0.8).
	Threshold float64 `json:"threshold"`
	// Boost is β (record 2.625).
	Boost float64 `json:"boost"`
}

// RecordTilt returns PR #2135's tilt: order 16, threshold 0.8, boost 2.625.
func RecordTilt() Tilt { return Tilt{Order: 16, Threshold: 0.8, Boost: 2.625} }

// Validate reports settings the tilt cannot use.
func (t Tilt) Validate() error {
	var errs []error
	if t.Order < 1 || t.Order > len(rollingCoeffs) {
		errs = append(errs, fmt.Errorf("tilt: order must be in 1..%d, got %d", len(rollingCoeffs), t.Order))
	}
	if math.IsNaN(t.Threshold) || t.Threshold < 0 {
		errs = append(errs, fmt.Errorf("tilt: threshold must be >= 0, got %v", t.Threshold))
	}
	if math.IsNaN(t.Boost) || math.IsInf(t.Boost, 0) || t.Boost < 0 {
		errs = append(errs, fmt.Errorf("tilt: boost must be a finite value >= 0, got %v", t.Boost))
	}
	return errors.Join(errs...)
}

// The record's hashing constants (online_ngram_state.c): the rolling
// coefficients multiply the ring's tokens (oldest first); the pair key
// mixes the context key with the next token; slots are the key times the
// table mix, masked.
var rollingCoeffs = [32]uint64{
	36313, 27191, 51647, 81929, 131071, 196613,
	262147, 393241, 524309, 655373, 786433, 917521,
	1048583, 1179653, 1310729, 1441801, 1572869, 1703941,
	1835017, 1966087, 2097169, 2228243, 2359319, 2490389,
	2621471, 2752549, 2883617, 3014687, 3145757, 3276833,
	3407903, 3538973,
}

const (
	pairMix  uint64 = 1000003
	tableMix uint64 = 0x9e3779b97f4a7c15
)

// Hints are the tilt's per-target hints of one stream, indexed by stream
// position (entry 0 is never a target).
type Hints struct {
	Tok  []uint16 // hinted token (0 where there is no hint)
	Gate []bool   // tilt applied: the hint's share reached the threshold
	// Prob is the hint's share top_count/total, in float32 as the record
	// computes it (0 where the context was never seen).
	Prob  []float32
	Boost float64 // β
	Gated int     // number of gated targets
}

// hashTables is the record's open-addressing hash table pair, with the
// same slot function and linear probing (the results depend only on exact
// 64-bit key matches; the layout is kept so that a full table fails where
// the record's does).
type hashTables struct {
	mask uint64
	// context table: key -> (total, top_count, top_tok)
	ctxKey   []uint64
	ctxUsed  []bool
	ctxTotal []uint32
	ctxTop   []uint32
	ctxTok   []uint16
	// pair table: key -> count
	pairKey   []uint64
	pairUsed  []bool
	pairCount []uint32
}

func newHashTables(bits int) *hashTables {
	n := 1 << bits
	return &hashTables{
		mask:   uint64(n - 1),
		ctxKey: make([]uint64, n), ctxUsed: make([]bool, n), ctxTotal: make([]uint32, n), ctxTop: make([]uint32, n), ctxTok: make([]uint16, n),
		pairKey: make([]uint64, n), pairUsed: make([]bool, n), pairCount: make([]uint32, n),
	}
}

// find returns key's slot in a table and whether it holds key; ok is false
// when the table is full without it.
func (h *hashTables) find(keys []uint64, used []bool, key uint64) (slot uint64, found, ok bool) {
	idx := (key * tableMix) & h.mask
	for probe := uint64(0); probe <= h.mask; probe++ {
		if !used[idx] {
			return idx, false, true
		}
		if keys[idx] == key {
			return idx, true, true
		}
		idx = (idx + 1) & h.mask
	}
	return 0, false, false
}

// tableBits is the record's suggest_table_bits(total, 0.55): 2^bits slots
// for total entries at a load factor of at most 0.55, between 2^12 and 2^28.
func tableBits(total int) int {
	if total <= 0 {
		return 16
	}
	target := max(int(float64(total)/0.55), 1)
	bits := max(int(math.Ceil(math.Log2(float64(target)))), 12)
	return min(bits, 28)
}

// Hints computes the hint of every target of tokens (a stream whose
// targets are tokens[1:]) in one left-to-right pass, exactly as the
// record's online_ngram_state_process_chunk does over the targets: the
// context ring of Order-1 tokens is seeded with the first target, a
// context is looked up only once the ring is full, the lookup comes before
// the update, ties keep the older top token, and nothing resets at
// document boundaries.
func (t Tilt) Hints(tokens []uint16) (*Hints, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	n := len(tokens)
	hs := &Hints{Tok: make([]uint16, n), Gate: make([]bool, n), Prob: make([]float32, n), Boost: t.Boost}
	if n < 2 {
		return hs, nil
	}
	targets := tokens[1:]
	tb := newHashTables(tableBits(len(targets)))
	ctxLen := t.Order - 1
	ring := make([]uint16, max(ctxLen, 1))
	prefix, head := 0, 0
	push := func(tok uint16) {
		if ctxLen <= 0 {
			return
		}
		if prefix < ctxLen {
			ring[prefix] = tok
			prefix++
			return
		}
		ring[head] = tok
		head = (head + 1) % ctxLen
	}
	push(targets[0]) // the record seeds the ring with the first target
	threshold := float32(t.Threshold)
	for i, tok := range targets {
		if ctxLen != 0 && prefix < ctxLen {
			push(tok)
			continue
		}
		var key uint64
		for j := range ctxLen {
			key ^= uint64(ring[(head+j)%ctxLen]) * rollingCoeffs[j]
		}
		slot, found, ok := tb.find(tb.ctxKey, tb.ctxUsed, key)
		if !ok {
			return nil, fmt.Errorf("tilt: context table of %d slots is full at target %d", tb.mask+1, i+1)
		}
		if found {
			p := float32(tb.ctxTop[slot]) / float32(tb.ctxTotal[slot])
			hs.Tok[i+1], hs.Prob[i+1] = tb.ctxTok[slot], p
			if p >= threshold {
				hs.Gate[i+1] = true
				hs.Gated++
			}
		}
		pairKey := (key * pairMix) ^ (uint64(tok) * rollingCoeffs[ctxLen%len(rollingCoeffs)])
		ps, pfound, ok := tb.find(tb.pairKey, tb.pairUsed, pairKey)
		if !ok {
			return nil, fmt.Errorf("tilt: pair table of %d slots is full at target %d", tb.mask+1, i+1)
		}
		if !pfound {
			tb.pairUsed[ps], tb.pairKey[ps], tb.pairCount[ps] = true, pairKey, 0
		}
		tb.pairCount[ps]++
		count := tb.pairCount[ps]
		if !found {
			// A new context: the lookup's empty slot is still free, since
			// the pair table is separate.
			tb.ctxUsed[slot], tb.ctxKey[slot] = true, key
			tb.ctxTotal[slot], tb.ctxTop[slot], tb.ctxTok[slot] = 1, count, tok
		} else {
			tb.ctxTotal[slot]++
			if count > tb.ctxTop[slot] {
				tb.ctxTop[slot], tb.ctxTok[slot] = count, tok
			}
		}
		push(tok)
	}
	return hs, nil
}

// tiltNats returns the tilted loss of a target at a gated position from
// its untilted loss nats and the untilted loss hintNats of the hint token
// (q = e^{-hintNats}, at most 1), with hit whether the target is the hint:
//
//	NLL' = NLL − β·hit + log1p(q · expm1(β))
func tiltNats(nats, hintNats float64, hit bool, beta float64) float64 {
	q := math.Exp(-max(hintNats, 0))
	out := nats + math.Log1p(q*math.Expm1(beta))
	if hit {
		out -= beta
	}
	return out
}

// tiltDistribution tilts a log-distribution towards hint in place:
// logp(a) += β·1[a=h] − log1p(q · expm1(β)), with q from hintNats as
// tiltNats uses it, so the tilted distribution is the one scored.
func tiltDistribution(logp []float64, hint int, hintNats, beta float64) {
	q := math.Exp(-max(hintNats, 0))
	logZ := math.Log1p(q * math.Expm1(beta))
	for a := range logp {
		logp[a] -= logZ
	}
	logp[hint] += beta
}
