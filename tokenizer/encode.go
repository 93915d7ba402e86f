package tokenizer

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// Encoding follows the reference (SentencePiece 0.1.97, bpe_model.cc and
// sentencepiece_processor.cc) step by step:
//
//  1. Normalize the text (see Normalize).
//  2. Split it into symbols: a user-defined piece where one starts (such a
//     symbol is frozen and never merges), else one UTF-8 character.
//  3. Repeatedly merge the adjacent pair of symbols whose concatenation is a
//     NORMAL, USER_DEFINED or UNUSED piece with the highest score; among
//     equal scores the leftmost pair goes first.
//  4. Replace each UNUSED piece by the two symbols it was last merged from,
//     recursively.
//  5. Map each symbol to its id. A symbol that is no piece is unknown: with
//     byte fallback it becomes one <0xNN> piece per UTF-8 byte, without it
//     the unknown id, a run of unknown symbols giving a single unknown id.
//
// Speed comes from words. When no mergeable piece contains the space mark
// U+2581 anywhere but at its start, no merge can join a symbol that begins
// with U+2581 to the symbol before it, so the text splits before every
// U+2581 into words that encode independently to the same ids (and likewise
// after every U+2581 when the marks end pieces). The encoded words are
// cached. The property is checked when a model is loaded; models without it,
// or with UNUSED pieces (whose undoing in step 4 depends on the whole text),
// encode the text in one piece.

// wordSplit says where normalized text may be cut into independent words.
type wordSplit int

const (
	splitNone        wordSplit = iota // encode the whole text at once
	splitBeforeSpace                  // a word starts at each space mark
	splitAfterSpace                   // a word ends after each space mark
)

// chooseWordSplit checks the vocabulary for the property described above.
func (m *Model) chooseWordSplit() wordSplit {
	if m.hasUnused {
		return splitNone
	}
	ws := m.norm.wsSymbol()
	before, after := true, true
	for p := range m.mergeable {
		for i := 0; i < len(p); {
			j := strings.Index(p[i:], ws)
			if j < 0 {
				break
			}
			at := i + j
			if at != 0 {
				before = false
			}
			if at != len(p)-len(ws) {
				after = false
			}
			i = at + 1
		}
	}
	switch {
	case before:
		return splitBeforeSpace
	case after:
		return splitAfterSpace
	}
	return splitNone
}

// Cache limits: words longer than maxCachedWord bytes are encoded each time;
// a shard that reaches shardCap entries is emptied, bounding memory to about
// cacheShards*shardCap words.
const (
	maxCachedWord = 64
	cacheShards   = 64
	shardCap      = 8192
)

// wordCache maps a normalized word to its ids. It is sharded so that
// concurrent encoders rarely contend.
type wordCache struct {
	seed   maphash.Seed
	shards [cacheShards]struct {
		mu sync.RWMutex
		m  map[string][]int32
		_  [32]byte // keep shards on separate cache lines
	}
}

func newWordCache() *wordCache {
	c := &wordCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = map[string][]int32{}
	}
	return c
}

// reset empties the cache (for benchmarks that must start cold).
func (c *wordCache) reset() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m = map[string][]int32{}
		s.mu.Unlock()
	}
}

func (c *wordCache) get(word []byte) ([]int32, bool) {
	s := &c.shards[maphash.Bytes(c.seed, word)%cacheShards]
	s.mu.RLock()
	ids, ok := s.m[string(word)]
	s.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word []byte, ids []int32) {
	s := &c.shards[maphash.Bytes(c.seed, word)%cacheShards]
	s.mu.Lock()
	if len(s.m) >= shardCap {
		s.m = make(map[string][]int32, shardCap)
	}
	s.m[string(word)] = ids
	s.mu.Unlock()
}

// symbol is one node of the doubly linked list of symbols being merged; its
// text is seg[start:end].
type symbol struct {
	start, end int32
	prev, next int32   // neighbours' indices, -1 at the ends
	id         int32   // the mergeable piece this symbol has become, -1 if unmerged
	pairID     int32   // piece made by merging with next, -1 if none
	pairScore  float32 // score of pairID
	freeze     bool    // a user-defined piece: never merged
}

// candidate is a possible merge of symbols left and right into a piece of
// size bytes, queued by score (the reference's SymbolPair).
type candidate struct {
	left, right int32
	size        int32
	id          int32 // the merged piece
	score       float32
}

// before orders the queue: higher score first, then the leftmost pair.
func (a candidate) before(b candidate) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// encodeState holds one encoder's scratch buffers.
type encodeState struct {
	norm     []byte
	syms     []symbol
	queue    []candidate
	word     []int32
	revMerge map[string][2]string
	pieces   []string // filled only when recording pieces
	record   bool
}

// smallSegment is the symbol count up to which merging scans the list for
// the best pair instead of using a priority queue (both give the same
// result; the scan is faster for short words).
const smallSegment = 48

// emitter turns the (piece, id) results of segmentation into ids the way
// the reference's PopulateSentencePieceText does.
type emitter struct {
	m       *Model
	out     []int32
	prevUnk bool
	st      *encodeState
}

func (e *emitter) emit(piece string, id int32) {
	m := e.m
	isUnk := int(id) == m.unk
	switch {
	case isUnk && m.trainer.ByteFallback:
		for i := 0; i < len(piece); i++ {
			e.out = append(e.out, m.byteIDs[piece[i]])
			if e.st.record {
				e.st.pieces = append(e.st.pieces, m.pieces[m.byteIDs[piece[i]]])
			}
		}
	case isUnk && e.prevUnk:
		// A run of unknown symbols is one unknown piece.
		if e.st.record {
			e.st.pieces[len(e.st.pieces)-1] += piece
		}
	default:
		e.out = append(e.out, id)
		if e.st.record {
			e.st.pieces = append(e.st.pieces, piece)
		}
	}
	e.prevUnk = isUnk
}

// symbolLen is the length of the symbol that starts s: a user-defined piece
// or one UTF-8 character (as the reference's PrefixMatcher::PrefixMatch).
func (m *Model) symbolLen(s string) (n int, frozen bool) {
	if m.matcher != nil {
		if n := m.matcher.Match(s); n > 0 {
			return n, true
		}
	}
	return min(len(s), spm.OneCharLen(s[0])), false
}

// segment runs BPE on seg (normalized text, or one word of it) and emits the
// resulting ids.
func (m *Model) segment(e *emitter, seg string) {
	st := e.st
	syms := st.syms[:0]
	for i := 0; i < len(seg); {
		n, frozen := m.symbolLen(seg[i:])
		k := int32(len(syms))
		syms = append(syms, symbol{start: int32(i), end: int32(i + n), prev: k - 1, next: k + 1, id: -1, pairID: -1, freeze: frozen})
		i += n
	}
	if len(syms) == 0 {
		return
	}
	syms[len(syms)-1].next = -1
	st.syms = syms
	if len(syms) <= m.scanLimit && !m.hasUnused {
		m.mergeByScan(seg, syms)
	} else {
		m.mergeByQueue(st, seg, syms)
	}
	for i := int32(0); i != -1; i = syms[i].next {
		s := &syms[i]
		piece := seg[s.start:s.end]
		if s.id < 0 {
			e.emit(piece, int32(m.PieceID(piece)))
		} else if m.hasUnused && m.types[s.id] == Unused {
			m.resegment(e, piece)
		} else {
			e.emit(piece, s.id)
		}
	}
}

// pairOf returns the piece id and score of merging symbols l and r, or -1.
func (m *Model) pairOf(seg string, l, r *symbol) (int32, float32) {
	if l.freeze || r.freeze {
		return -1, 0
	}
	id, ok := m.mergeable[seg[l.start:r.end]]
	if !ok {
		return -1, 0
	}
	return id, m.scores[id]
}

func (m *Model) setPair(seg string, syms []symbol, i int32) {
	s := &syms[i]
	if s.next < 0 {
		s.pairID = -1
		return
	}
	s.pairID, s.pairScore = m.pairOf(seg, s, &syms[s.next])
}

// mergeByScan merges a short segment: each round scans the list for the best
// pair (highest score, leftmost among equals) and merges it.
func (m *Model) mergeByScan(seg string, syms []symbol) {
	for i := range syms {
		m.setPair(seg, syms, int32(i))
	}
	for {
		best := int32(-1)
		var bestScore float32
		for i := int32(0); i != -1; i = syms[i].next {
			if s := &syms[i]; s.pairID >= 0 && (best < 0 || s.pairScore > bestScore) {
				best, bestScore = i, s.pairScore
			}
		}
		if best < 0 {
			return
		}
		l := &syms[best]
		r := &syms[l.next]
		l.end, l.id, l.next = r.end, l.pairID, r.next
		if l.next >= 0 {
			syms[l.next].prev = best
		}
		if l.prev >= 0 {
			m.setPair(seg, syms, l.prev)
		}
		m.setPair(seg, syms, best)
	}
}

// mergeByQueue merges with a priority queue of candidate pairs, exactly as
// the reference: stale candidates (a side already merged away or grown) are
// skipped when popped.
func (m *Model) mergeByQueue(st *encodeState, seg string, syms []symbol) {
	q := st.queue[:0]
	if m.hasUnused {
		if st.revMerge == nil {
			st.revMerge = map[string][2]string{}
		}
		clear(st.revMerge)
	}
	add := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		id, score := m.pairOf(seg, &syms[l], &syms[r])
		if id < 0 {
			return
		}
		q = heapPush(q, candidate{left: l, right: r, size: syms[r].end - syms[l].start, id: id, score: score})
		if m.types[id] == Unused {
			st.revMerge[seg[syms[l].start:syms[r].end]] = [2]string{seg[syms[l].start:syms[l].end], seg[syms[r].start:syms[r].end]}
		}
	}
	for i := 1; i < len(syms); i++ {
		add(int32(i-1), int32(i))
	}
	for len(q) > 0 {
		var c candidate
		q, c = heapPop(q)
		l, r := &syms[c.left], &syms[c.right]
		if l.end == l.start || r.end == r.start || (l.end-l.start)+(r.end-r.start) != c.size {
			continue
		}
		l.end, l.id, l.next = r.end, c.id, r.next
		if r.next >= 0 {
			syms[r.next].prev = c.left
		}
		r.end = r.start // empty: merged away
		add(l.prev, c.left)
		add(c.left, l.next)
	}
	st.queue = q
}

func heapPush(q []candidate, c candidate) []candidate {
	q = append(q, c)
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].before(q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
	return q
}

func heapPop(q []candidate) ([]candidate, candidate) {
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, best := 2*i+1, i
		if l < n && q[l].before(q[best]) {
			best = l
		}
		if r := l + 1; r < n && q[r].before(q[best]) {
			best = r
		}
		if best == i {
			break
		}
		q[i], q[best] = q[best], q[i]
		i = best
	}
	return q, top
}

// resegment emits an UNUSED piece as the two symbols it was last merged
// from, recursively (the reference's resegment).
func (m *Model) resegment(e *emitter, w string) {
	id := int32(m.PieceID(w))
	if m.types[id] != Unused {
		e.emit(w, id)
		return
	}
	p, ok := e.st.revMerge[w]
	if !ok {
		e.emit(w, id)
		return
	}
	m.resegment(e, p[0])
	m.resegment(e, p[1])
}

// Encode returns the ids of text, identical to the reference's
// SentencePieceProcessor::EncodeAsIds. text may hold any bytes: malformed
// UTF-8 is normalized to U+FFFD per byte. No BOS or EOS is added.
func (m *Model) Encode(text string) []int {
	return m.AppendEncode(nil, text)
}

// AppendEncode appends the ids of text to dst and returns the extended
// slice, so a caller can reuse one buffer across documents.
func (m *Model) AppendEncode(dst []int, text string) []int {
	st := m.scratchSet.Get().(*encodeState)
	defer m.scratchSet.Put(st)
	st.record = false
	out := m.encode(st, text)
	for _, id := range out {
		dst = append(dst, int(id))
	}
	return dst
}

// EncodePieces returns the pieces of text as the reference reports them
// (sp.encode(text, out_type=str), spm_encode --output_format=piece): the
// piece of each id, except that a run of unknown characters (without byte
// fallback) is shown as its own text rather than as "<unk>".
func (m *Model) EncodePieces(text string) []string {
	st := m.scratchSet.Get().(*encodeState)
	defer m.scratchSet.Put(st)
	ids := m.encode(st, text)
	pieces := make([]string, 0, len(ids))
	hasUnk := false
	for _, id := range ids {
		hasUnk = hasUnk || int(id) == m.unk
		pieces = append(pieces, m.pieces[id])
	}
	if !hasUnk {
		return pieces
	}
	st.record, st.pieces = true, st.pieces[:0]
	m.encode(st, text)
	st.record = false
	return append(pieces[:0], st.pieces...)
}

// encode normalizes and segments text. The returned slice is st's scratch
// buffer unless recording pieces.
func (m *Model) encode(st *encodeState, text string) []int32 {
	st.norm = m.norm.appendNormalized(st.norm[:0], text)
	norm := st.norm
	e := emitter{m: m, out: st.word[:0], st: st}
	defer func() { st.word = e.out }()
	if m.split == splitNone || st.record {
		m.segment(&e, string(norm))
		return e.out
	}
	ws := m.norm.wsSymbol()
	start := 0
	for i := 0; i < len(norm); {
		var n int
		if m.matcher != nil {
			n, _ = m.symbolLen(string(norm[i:min(len(norm), i+max(m.matcher.MaxLen(), 4))]))
		} else {
			n = min(len(norm)-i, spm.OneCharLen(norm[i]))
		}
		isWS := n == len(ws) && string(norm[i:i+n]) == ws
		if m.split == splitBeforeSpace && isWS && i > start {
			m.encodeWord(&e, norm[start:i])
			start = i
		}
		i += n
		if m.split == splitAfterSpace && isWS {
			m.encodeWord(&e, norm[start:i])
			start = i
		}
	}
	if start < len(norm) {
		m.encodeWord(&e, norm[start:])
	}
	return e.out
}

// encodeWord emits the ids of one word, from the cache when it can.
func (m *Model) encodeWord(e *emitter, word []byte) {
	if len(word) > maxCachedWord {
		m.segment(e, string(word))
		return
	}
	ids, ok := m.cache.get(word)
	if !ok {
		we := emitter{m: m, st: e.st}
		m.segment(&we, string(word))
		ids = we.out
		m.cache.put(word, ids)
	}
	if len(ids) == 0 {
		return
	}
	// Without byte fallback, an unknown piece that starts this word joins an
	// unknown piece that ended the previous one.
	first := ids
	if !m.trainer.ByteFallback && e.prevUnk && int(ids[0]) == m.unk {
		first = ids[1:]
	}
	e.out = append(e.out, first...)
	e.prevUnk = int(ids[len(ids)-1]) == m.unk
}

// EncodeAll encodes docs in parallel (GOMAXPROCS workers) and returns their
// ids in the order of docs. It stops early, returning ctx's error, when ctx
// is cancelled.
func (m *Model) EncodeAll(ctx context.Context, docs []string) ([][]int, error) {
	out := make([][]int, len(docs))
	workers := min(runtime.GOMAXPROCS(0), len(docs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(docs) {
					return
				}
				out[i] = m.Encode(docs[i])
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: encoding %d documents: %w", len(docs), err)
	}
	return out, nil
}
