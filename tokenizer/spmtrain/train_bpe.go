package spmtrain

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/paramgolf/golf/internal/progress"
)

// This file is the reference's BPE trainer (bpe_model_trainer.cc), step for
// step; the comments name its functions. What differs is representation
// only: symbols live in one slice and are named by index; a symbol's
// positions are a slice kept sorted (the reference's std::set<uint64_t>),
// sorted lazily when appended out of order; pairs that cannot be pieces are
// remembered so that they are checked once.

// bpeSymbol is a character or a pair of symbols (Trainer::Symbol).
type bpeSymbol struct {
	left, right int32  // the pair's halves; -1 for a character
	fp          uint64 // fingerprint: the character, or FingerprintCat of the halves
	freq        uint64 // 0: to be recomputed from positions
	str         string // the characters as UTF-8
	nchars      int32
	isUnk       bool
	unsorted    bool     // positions were appended out of order
	activeAt    int32    // index in bpe.active, or -1
	positions   []uint64 // encoded (sentence, left, right) occurrences
}

// bpe is the trainer's state.
type bpe struct {
	t       *trainer
	words   []sentence
	syms    []bpeSymbol
	symbols [][]int32 // by word: the symbol at each character position, -1 when merged away
	cache   map[uint64]int32
	order   *cxxHashOrder // iteration order of the reference's symbols_cache_
	invalid map[uint64]bool
	active  []int32 // active_symbols_
	live    int     // symbols in the cache
}

func newBPE(t *trainer, words []sentence) *bpe {
	b := &bpe{t: t, words: words, cache: map[uint64]int32{}, invalid: map[uint64]bool{}}
	b.order = newCxxHashOrder(func(i int32) uint64 { return b.syms[i].fp })
	return b
}

// fingerprintCat is the reference's port::FingerprintCat: Bob Jenkins'
// 64-bit mix of the two fingerprints.
func fingerprintCat(x, y uint64) uint64 {
	a, b, c := x, uint64(0xe08c1d668b756f82), y
	a -= b
	a -= c
	a ^= c >> 43
	b -= c
	b -= a
	b ^= a << 9
	c -= a
	c -= b
	c ^= b >> 8
	a -= b
	a -= c
	a ^= c >> 38
	b -= c
	b -= a
	b ^= a << 23
	c -= a
	c -= b
	c ^= b >> 5
	a -= b
	a -= c
	a ^= c >> 35
	b -= c
	b -= a
	b ^= a << 49
	c -= a
	c -= b
	c ^= b >> 11
	a -= b
	a -= c
	a ^= c >> 12
	b -= c
	b -= a
	b ^= a << 18
	c -= a
	c -= b
	c ^= b >> 22
	return c
}

// addToCache puts a new symbol into symbols_cache_.
func (b *bpe) addToCache(s bpeSymbol) (int32, error) {
	i := int32(len(b.syms))
	s.activeAt = -1
	b.syms = append(b.syms, s)
	b.cache[s.fp] = i
	if err := b.order.insert(i); err != nil {
		return -1, err
	}
	b.live++
	b.t.stats.PeakSymbols = max(b.t.stats.PeakSymbols, b.live)
	return i, nil
}

// eraseFromCache is symbols_cache_.erase(fp).
func (b *bpe) eraseFromCache(fp uint64) {
	if i, ok := b.cache[fp]; ok {
		delete(b.cache, fp)
		b.order.erase(i)
		b.live--
	}
}

// charSymbol is GetCharSymbol.
func (b *bpe) charSymbol(c rune) (int32, error) {
	freq, ok := b.t.required[c]
	if !ok {
		freq = 1
	}
	if freq <= 0 {
		return -1, fmt.Errorf("required character %q does not occur in the text", c)
	}
	if i, ok := b.cache[uint64(c)]; ok {
		return i, nil
	}
	return b.addToCache(bpeSymbol{left: -1, right: -1, fp: uint64(c), freq: uint64(freq), str: string(c), nchars: 1, isUnk: c == trainUnk})
}

// pairSymbol is GetPairSymbol: the symbol for l followed by r, or -1 when
// they may not merge.
func (b *bpe) pairSymbol(l, r int32) (int32, error) {
	if l < 0 || r < 0 || b.syms[l].isUnk || b.syms[r].isUnk {
		return -1, nil
	}
	fp := fingerprintCat(b.syms[l].fp, b.syms[r].fp)
	if i, ok := b.cache[fp]; ok {
		return i, nil
	}
	if b.invalid[fp] {
		return -1, nil
	}
	str := b.syms[l].str + b.syms[r].str
	n := b.syms[l].nchars + b.syms[r].nchars
	if !b.t.validPiece(str, int(n)) {
		b.invalid[fp] = true
		return -1, nil
	}
	return b.addToCache(bpeSymbol{left: l, right: r, fp: fp, str: str, nchars: n})
}

// validPiece is IsValidSentencePiece for a candidate of n characters.
func (t *trainer) validPiece(s string, n int) bool {
	o := t.opts
	if n == 0 || n > o.MaxSentencepieceLength {
		return false
	}
	const anyScript = scriptID(255)
	allWS := true
	for _, c := range s {
		if c != trainWS {
			allWS = false
			break
		}
	}
	prev := anyScript
	pos := 0
	for _, c := range s {
		switch {
		case c == trainUnk, c == 0, c == trainBoundary, c == ' ':
			return false
		case c >= 0xD800 && c < 0xE000, c > 0x10FFFF:
			return false
		}
		if c == trainWS {
			if !o.AllowWhitespaceOnlyPieces || !allWS {
				if o.TreatWhitespaceAsSuffix {
					if (o.SplitByWhitespace && pos < n-1) || (!o.SplitByWhitespace && pos < n-1 && pos == 0) {
						return false
					}
				} else {
					if (o.SplitByWhitespace && pos > 0) || (!o.SplitByWhitespace && pos > 0 && pos == n-1) {
						return false
					}
				}
			}
		} else {
			sc := scriptOf(c)
			switch {
			case sc == scriptHiragana || sc == scriptKatakana || c == 0x30FC:
				sc = scriptHan
			case sc == scriptInherited:
				sc = prev
			}
			digit := (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19)
			if !o.SplitByNumber && digit {
				sc = anyScript
			}
			if o.SplitDigits && digit && n > 1 {
				return false
			}
			if o.SplitByUnicodeScript && sc != anyScript && prev != anyScript && prev != sc {
				return false
			}
			prev = sc
		}
		pos++
	}
	return true
}

// Positions encode (sentence, left, right) as the reference's EncodePos.
func encodePos(sid, l, r int) uint64 { return uint64(sid)<<32 | uint64(l)<<16 | uint64(r) }

func decodePos(p uint64) (sid, l, r int) {
	return int(p >> 32), int(p >> 16 & 0xffff), int(p & 0xffff)
}

// sortPositions restores the std::set order of a symbol's positions.
func (s *bpeSymbol) sortPositions() {
	if s.unsorted {
		slices.Sort(s.positions)
		s.positions = slices.Compact(s.positions)
		s.unsorted = false
	}
}

// computeFreq is ComputeFreq: recount a symbol whose frequency was reset,
// dropping positions that no longer hold it and the second of two
// overlapping ones ("aaa" holds "aa" once).
func (b *bpe) computeFreq(i int32) {
	s := &b.syms[i]
	if s.freq > 0 {
		return
	}
	s.sortPositions()
	prevSid, prevRight := -1, 0
	kept := s.positions[:0]
	for _, p := range s.positions {
		sid, l, r := decodePos(p)
		if (sid == prevSid && l == prevRight) || s.left != b.symbols[sid][l] || s.right != b.symbols[sid][r] {
			prevSid, prevRight = -1, 0
			continue
		}
		s.freq += uint64(b.words[sid].freq)
		prevSid, prevRight = sid, r
		kept = append(kept, p)
	}
	clear(s.positions[len(kept):])
	s.positions = kept
}

func (b *bpe) nextIndex(sid, index int) int {
	w := b.symbols[sid]
	for i := index + 1; i < len(w); i++ {
		if w[i] >= 0 {
			return i
		}
	}
	return -1
}

func (b *bpe) prevIndex(sid, index int) int {
	w := b.symbols[sid]
	for i := index - 1; i >= 0; i-- {
		if w[i] >= 0 {
			return i
		}
	}
	return -1
}

func (b *bpe) activate(i int32) {
	if b.syms[i].activeAt < 0 {
		b.syms[i].activeAt = int32(len(b.active))
		b.active = append(b.active, i)
	}
}

func (b *bpe) deactivate(i int32) {
	at := b.syms[i].activeAt
	if at < 0 {
		return
	}
	last := b.active[len(b.active)-1]
	b.active[at] = last
	b.syms[last].activeAt = at
	b.active = b.active[:len(b.active)-1]
	b.syms[i].activeAt = -1
}

// addNewPair is AddNewPair.
func (b *bpe) addNewPair(sid, l, r int) error {
	if l < 0 || r < 0 {
		return nil
	}
	i, err := b.pairSymbol(b.symbols[sid][l], b.symbols[sid][r])
	if err != nil || i < 0 {
		return err
	}
	b.activate(i)
	s := &b.syms[i]
	p := encodePos(sid, l, r)
	if n := len(s.positions); n > 0 && s.positions[n-1] >= p {
		s.unsorted = true
	}
	s.positions = append(s.positions, p)
	return nil
}

// resetFreq is ResetFreq.
func (b *bpe) resetFreq(sid, l, r int, best int32) error {
	if l < 0 || r < 0 {
		return nil
	}
	i, err := b.pairSymbol(b.symbols[sid][l], b.symbols[sid][r])
	if err != nil {
		return err
	}
	if i >= 0 && i != best {
		b.syms[i].freq = 0
	}
	return nil
}

// updateActiveSymbols is UpdateActiveSymbols: the top 5% most frequent
// pairs (at least 1000), chosen by libstdc++'s partial_sort over the
// cache's iteration order.
func (b *bpe) updateActiveSymbols() {
	var cand []int32
	b.order.each(func(i int32) {
		if b.syms[i].left >= 0 {
			b.computeFreq(i)
			cand = append(cand, i)
		}
	})
	size := min(max(1000, int(float32(b.live)*float32(0.05))), len(cand))
	cxxHeapSelect(cand, size, func(x, y int32) bool { return b.syms[x].freq > b.syms[y].freq })
	for _, i := range b.active {
		b.syms[i].activeAt = -1
	}
	b.active = b.active[:0]
	for _, i := range cand[:size] {
		b.activate(i)
	}
}

// better reports whether symbol x beats y as the next merge: more
// frequent, then fewer characters, then byte-wise smaller, then (standing
// in for the reference's pointer order) created earlier.
func (b *bpe) better(x, y int32) bool {
	sx, sy := &b.syms[x], &b.syms[y]
	if sx.freq != sy.freq {
		return sx.freq > sy.freq
	}
	if sx.nchars != sy.nchars {
		return sx.nchars < sy.nchars
	}
	if c := cmp.Compare(sx.str, sy.str); c != 0 {
		return c < 0
	}
	return x < y
}

// maxWordChars is the longest word the reference can train on: positions
// hold a character index in 16 bits, and it computes left<<16 in a signed
// 32-bit int, so a pair starting at index 32768 or more corrupts its
// position.
const maxWordChars = 1 << 15

// train is Trainer::Train from the symbols onwards; it returns the merged
// pieces followed by the alphabet.
func (b *bpe) train() ([]finalPiece, error) {
	t := b.t
	o := t.opts
	b.symbols = make([][]int32, len(b.words))
	for sid, w := range b.words {
		n := utf8.RuneCountInString(w.text)
		if n > maxWordChars {
			return nil, fmt.Errorf("a word of %d characters (the reference handles at most %d): %.40q...", n, maxWordChars, w.text)
		}
		syms := make([]int32, 0, n)
		for _, c := range w.text {
			i, err := b.charSymbol(c)
			if err != nil {
				return nil, err
			}
			syms = append(syms, i)
		}
		b.symbols[sid] = syms
	}
	for sid := range b.symbols {
		for i := 1; i < len(b.symbols[sid]); i++ {
			if err := b.addNewPair(sid, i-1, i); err != nil {
				return nil, err
			}
		}
		if sid%4096 == 0 {
			if err := t.ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	for i := range b.syms {
		t.stats.Positions += int64(len(b.syms[i].positions))
	}
	target := o.VocabSize - len(t.meta) - len(t.required)
	if target < 0 {
		return nil, errors.New("the vocabulary is smaller than the alphabet plus the special pieces")
	}
	meter := progress.New(o.Progress, "tokenizer train: merges", "pieces", int64(target))
	dup := map[string]bool{}
	var final []finalPiece
	for len(final) < target {
		if len(final)%100 == 0 {
			if err := t.ctx.Err(); err != nil {
				return nil, err
			}
			b.updateActiveSymbols()
		}
		best := int32(-1)
		ties := false // another candidate equals best in all but identity
		for _, i := range b.active {
			b.computeFreq(i)
			same := best >= 0 && b.syms[i].freq == b.syms[best].freq && b.syms[i].str == b.syms[best].str
			if best < 0 || b.better(i, best) {
				ties = same
				best = i
			} else if same {
				ties = true
			}
		}
		if best < 0 {
			break // no valid symbol left
		}
		bs := &b.syms[best]
		if dup[bs.str] {
			b.eraseFromCache(bs.fp)
			b.deactivate(best)
			continue
		}
		dup[bs.str] = true
		if ties {
			t.stats.TieRisks++
		}
		final = append(final, finalPiece{bs.str, -float32(len(final))})
		meter.Add(1)
		bs.sortPositions()
		positions := bs.positions
		for _, p := range positions {
			sid, l, r := decodePos(p)
			if b.symbols[sid][l] < 0 {
				continue // merged away earlier in this loop ("aaa")
			}
			if b.symbols[sid][r] < 0 {
				return nil, fmt.Errorf("internal error: a position of %q lost its right half", bs.str)
			}
			next := b.nextIndex(sid, r)
			prev := b.prevIndex(sid, l)
			if err := b.resetFreq(sid, prev, l, best); err != nil {
				return nil, err
			}
			if err := b.resetFreq(sid, r, next, best); err != nil {
				return nil, err
			}
			b.symbols[sid][l] = best
			b.symbols[sid][r] = -1
			if err := b.addNewPair(sid, prev, l); err != nil {
				return nil, err
			}
			if err := b.addNewPair(sid, l, next); err != nil {
				return nil, err
			}
		}
		bs = &b.syms[best] // syms may have grown
		b.eraseFromCache(bs.fp)
		b.deactivate(best)
		bs.positions = nil // the reference keeps them; no step reads them again
	}
	meter.Done()
	alphabet := make([]charCount, 0, len(t.required))
	for c, n := range t.required {
		alphabet = append(alphabet, charCount{c: c, count: n})
	}
	slices.SortFunc(alphabet, func(x, y charCount) int {
		if x.count != y.count {
			return cmp.Compare(y.count, x.count)
		}
		return cmp.Compare(x.c, y.c)
	})
	for _, c := range alphabet {
		i, err := b.charSymbol(c.c)
		if err != nil {
			return nil, err
		}
		final = append(final, finalPiece{b.syms[i].str, -float32(len(final))})
	}
	return final, nil
}
