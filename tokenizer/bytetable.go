package tokenizer

import "strings"

// ByteTable counts the UTF-8 bytes that tokens stand for, by the rule of the
// challenge's val_bpb metric (build_sentencepiece_luts in train_gpt.py):
//
//	bytes(tok | prev) = base(tok) + [tok starts with U+2581 and prev is not a boundary]
//
// where base is 0 for control, unknown and unused pieces (which are the
// boundaries) and for ids outside the vocabulary (boundaries too), 1 for a
// byte piece, and otherwise the UTF-8 length of the piece without one leading
// U+2581. The leading U+2581 is a space and counts 1 byte, except right after
// a boundary, where the reference's decoder drops it (a document's first word
// after BOS).
//
// val_bpb = total nats / (ln 2 × total bytes), summed over the same targets.
// A ByteTable is immutable and safe for concurrent use.
type ByteTable struct {
	base     []int32
	space    []bool // piece starts with U+2581
	boundary []bool
}

func newByteTable(m *Model) *ByteTable {
	n := len(m.pieces)
	t := &ByteTable{base: make([]int32, n), space: make([]bool, n), boundary: make([]bool, n)}
	for id, piece := range m.pieces {
		switch m.types[id] {
		case Control, Unknown, Unused:
			t.boundary[id] = true
		case Byte:
			t.base[id] = 1
		default:
			rest, cut := strings.CutPrefix(piece, spaceSymbol)
			t.space[id] = cut
			t.base[id] = int32(len(rest))
		}
	}
	return t
}

// ByteTable returns the model's byte table for bits-per-byte accounting.
func (m *Model) ByteTable() *ByteTable { return m.byteTable }

// isBoundary reports whether tok resets the leading-space rule; ids outside
// the vocabulary (and negative prev, meaning "no predecessor") do.
func (t *ByteTable) isBoundary(tok int) bool {
	return tok < 0 || tok >= len(t.boundary) || t.boundary[tok]
}

// TokenBytes returns the bytes that token tok stands for when it follows
// prev (pass prev < 0 for a token with no predecessor).
func (t *ByteTable) TokenBytes(prev, tok int) int {
	if tok < 0 || tok >= len(t.base) {
		return 0
	}
	n := int(t.base[tok])
	if t.space[tok] && !t.isBoundary(prev) {
		n++
	}
	return n
}

// CountTargets returns the bytes of tokens[1:], each counted after its
// predecessor: the byte total of the targets when tokens is a stream of
// inputs followed by one more token, as in the challenge's evaluation.
func (t *ByteTable) CountTargets(tokens []uint16) int64 {
	var total int64
	for i := 1; i < len(tokens); i++ {
		total += int64(t.TokenBytes(int(tokens[i-1]), int(tokens[i])))
	}
	return total
}
