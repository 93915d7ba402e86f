package data

import (
	"fmt"
	"path/filepath"
	"sort"
)

// PackingLoader streams training steps with the semantics of the record's
// DocumentPackingLoader (PR #1530, #2135's train_gpt.py; record-stack.md
// §3.5): documents packed back to back, with attention kept inside each
// document by segment ids.
//
// The training shards are read in the order given, wrapping around. Reading
// starts at the first BOS of the first shard. Each span takes the next
// world × (local+1) tokens of the current shard (local = globalTokens /
// (world × accumSteps)), rank r the r-th local+1 of them; a span never
// crosses a shard: when the shard's rest is too short the loader moves to the
// next shard's first BOS (the rest is skipped). A step is
// ReferenceAccumSteps(world) spans, as NextStep reads them.
//
// Segments follow the record's _build_cu_seqlens: a segment starts at the
// span's first token and at every BOS, and long documents are cut every
// maxDocLen tokens from their start. golf attends within dense rows of
// seqLen tokens (gomlx has no variable-length attention), so a segment that
// crosses a row boundary is also cut there: exact when a span is one row
// (B/8 = seqLen, the tiny presets); for the record's 98,304-token spans in
// 2,048-token rows about one extra cut per row.
//
// A PackingLoader is not safe for concurrent use.
type PackingLoader struct {
	shardRing
	rank      int
	worldSize int
	bos       uint16
	bosIdx    []int // BOS positions in the open shard
	cursor    int
}

// PackingState is a PackingLoader's position: the open shard and the
// cursor in it (the start of the next span group). Shard is the shard's base
// name, checked on Restore.
type PackingState struct {
	File   int    `json:"file"`
	Cursor int64  `json:"cursor"`
	Shard  string `json:"shard"`
}

// NewPackingLoader returns a packing loader over files for rank of
// worldSize ranks, with bos the documents' first token (1 in the
// challenge's shards). It opens the first shard at once.
func NewPackingLoader(files []string, rank, worldSize int, bos uint16) (*PackingLoader, error) {
	ring, err := newShardRing("packing loader", files, rank, worldSize)
	if err != nil {
		return nil, err
	}
	l := &PackingLoader{shardRing: ring, rank: rank, worldSize: worldSize, bos: bos}
	if err := l.open(0); err != nil {
		return nil, err
	}
	releaseOnDrop(l, &l.shardRing)
	return l, nil
}

// open makes files[i] the current shard with the cursor at its first BOS.
func (l *PackingLoader) open(i int) error {
	s, err := OpenShard(l.files[i])
	if err != nil {
		return fmt.Errorf("data: packing loader: %w", err)
	}
	var idx []int
	for p, t := range s.Tokens() {
		if t == l.bos {
			idx = append(idx, p)
		}
	}
	if len(idx) == 0 {
		s.Close()
		return fmt.Errorf("data: packing loader: shard %s has no BOS token (%d): documents cannot be found", l.files[i], l.bos)
	}
	l.use(i, s)
	l.bosIdx, l.cursor = idx, idx[0]
	return nil
}

// span returns this rank's next span of n+1 tokens (and moves past the whole
// world's spans), skipping to the next shard when the current one's rest is
// too short, as _prepare_batch does.
func (l *PackingLoader) span(n int) ([]uint16, int, error) {
	global := (n + 1) * l.worldSize
	for tries := 0; l.cursor+global > l.shard.Len(); tries++ {
		if tries > len(l.files) {
			return nil, 0, fmt.Errorf("data: packing loader: no training shard holds %d tokens after its first BOS (a span of every rank)", global)
		}
		if err := l.open((l.fileIdx + 1) % len(l.files)); err != nil {
			return nil, 0, err
		}
	}
	start := l.cursor + l.rank*(n+1)
	l.cursor += global
	return l.shard.Tokens()[start : start+n+1], start, nil
}

// NextStep returns this rank's rows of the next optimizer step: the
// ReferenceAccumSteps(world) spans of globalTokens / 8 inputs each (see
// StepShape), row-major [rankRows, seqLen] inputs and targets (the inputs
// shifted by one), and each position's segment id: positions of one row with
// the same id may attend to each other. Ids are unique within the step.
func (l *PackingLoader) NextStep(globalTokens, seqLen, maxDocLen int) (inputs, targets, segments []int32, err error) {
	spanTokens, rows, err := StepShape(globalTokens, seqLen, l.worldSize)
	if err != nil {
		return nil, nil, nil, err
	}
	if maxDocLen < 0 {
		return nil, nil, nil, fmt.Errorf("data: packing loader: max document length %d must not be negative", maxDocLen)
	}
	n := rows * seqLen
	inputs, targets, segments = make([]int32, n), make([]int32, n), make([]int32, n)
	accum := ReferenceSpans / l.worldSize
	next := int32(0)
	for k := range accum {
		toks, start, err := l.span(spanTokens)
		if err != nil {
			return nil, nil, nil, err
		}
		off := k * spanTokens
		for i := range spanTokens {
			inputs[off+i], targets[off+i] = int32(toks[i]), int32(toks[i+1])
		}
		starts := l.docStarts(start, spanTokens)
		next = SegmentIDs(segments[off:off+spanTokens], starts, maxDocLen, seqLen, next)
	}
	return inputs, targets, segments, nil
}

// docStarts returns the BOS positions in [start, start+n) relative to start
// (the record's _local_doc_starts).
func (l *PackingLoader) docStarts(start, n int) []int {
	lo := sort.SearchInts(l.bosIdx, start)
	hi := sort.SearchInts(l.bosIdx, start+n)
	out := make([]int, 0, hi-lo)
	for _, p := range l.bosIdx[lo:hi] {
		out = append(out, p-start)
	}
	return out
}

// SegmentIDs writes the segment id of every position of one span into ids
// (len = the span's length) and returns the next unused id. Segments start
// at position 0, at every document start in starts (sorted, relative to the
// span), every maxDocLen tokens after a document start (0: no cap), as the
// record's _build_cu_seqlens cuts them, and at every multiple of rowLen
// (0: none), where golf's dense rows end. Ids are first, first+1, ...
func SegmentIDs(ids []int32, starts []int, maxDocLen, rowLen int, first int32) int32 {
	id := first - 1
	si := 0
	docStart := 0
	for p := range ids {
		cut := p == 0
		for si < len(starts) && starts[si] == p {
			cut, docStart = true, p
			si++
		}
		if maxDocLen > 0 && p > docStart && (p-docStart)%maxDocLen == 0 {
			cut = true
		}
		if rowLen > 0 && p%rowLen == 0 {
			cut = true
		}
		if cut {
			id++
		}
		ids[p] = id
	}
	return id + 1
}

// State returns the loader's position, for Restore.
func (l *PackingLoader) State() PackingState {
	return PackingState{File: l.fileIdx, Cursor: int64(l.cursor), Shard: filepath.Base(l.files[l.fileIdx])}
}

// Restore moves the loader to a position State returned.
func (l *PackingLoader) Restore(st PackingState) error {
	cursor, err := l.restore("packing loader", st.File, st.Shard, true, "cursor", st.Cursor, l.open)
	if err != nil {
		return err
	}
	l.cursor = cursor
	return nil
}

// Close releases the open shard.
func (l *PackingLoader) Close() error { return l.close() }
