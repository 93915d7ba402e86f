package tokenizer

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// spaceSymbol is U+2581 LOWER ONE EIGHTH BLOCK, which SentencePiece writes in
// place of a space so that pieces can carry word boundaries.
const spaceSymbol = "\u2581"

// replacementChar is what the normalizer writes for each byte of malformed
// UTF-8 (one byte at a time, as the reference does).
const replacementChar = "\uFFFD"

// maxTrieResults is how many matches the reference's normalizer reads from one
// trie search (kMaxTrieResultsSize); the longest among them wins.
const maxTrieResults = 32

// dartsTrie is a darts-clone double array, the trie format of SentencePiece's
// precompiled charsmap. Each unit is a little-endian uint32:
//
//	bits 0-7    label: the input byte that leads to this unit
//	bit 8       has_leaf: the child reached with byte 0 is a leaf holding a value
//	bit 9       scale: the offset below is shifted left by 8 more bits
//	bits 10-31  offset: the children of the unit at p are at p ^ offset ^ byte
//	bit 31      set on leaf units, so that no input byte matches their label;
//	            a leaf's value is its low 31 bits
type dartsTrie []uint32

func unitLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func unitHasLeaf(u uint32) bool  { return u>>8&1 == 1 }
func unitValue(u uint32) uint32  { return u & (1<<31 - 1) }
func unitOffset(u uint32) uint32 { return u >> 10 << (u & (1 << 9) >> 6) }

// step follows the edge labelled c from the children base pos (a unit's index
// already xored with its offset). It returns the unit reached and the base of
// its children, or ok=false when there is no such edge. Out-of-range indices,
// possible only in a corrupt trie, count as no edge.
func (t dartsTrie) step(pos, c uint32) (unit, next uint32, ok bool) {
	pos ^= c
	if pos >= uint32(len(t)) {
		return 0, 0, false
	}
	unit = t[pos]
	if unitLabel(unit) != c {
		return 0, 0, false
	}
	return unit, pos ^ unitOffset(unit), true
}

// root returns the children base of the root unit.
func (t dartsTrie) root() uint32 {
	if len(t) == 0 {
		return 0
	}
	return unitOffset(t[0])
}

// longestPrefix returns the length and value of the longest key that is a
// prefix of s, considering the first maxTrieResults matches as the reference
// does (darts-clone's commonPrefixSearch). length is 0 when no key matches.
func (t dartsTrie) longestPrefix(s string) (length int, value uint32) {
	if len(t) == 0 {
		return 0, 0
	}
	pos, found := t.root(), 0
	for i := 0; i < len(s); i++ {
		unit, next, ok := t.step(pos, uint32(s[i]))
		if !ok {
			break
		}
		pos = next
		if unitHasLeaf(unit) {
			if pos >= uint32(len(t)) {
				break
			}
			if found < maxTrieResults {
				length, value = i+1, unitValue(t[pos])
			}
			found++
		}
	}
	return length, value
}

// asciiRule is the precomputed outcome of normalizing one ASCII byte that is
// followed by another ASCII byte or by the end of the text.
type asciiRule struct {
	simple bool   // no trie key continues from this byte with an ASCII byte
	out    string // the normalized form when simple
}

// normalizer is the reference's text normalizer: a precompiled charsmap
// (longest-match rewriting rules, e.g. NFKC) followed by whitespace handling.
type normalizer struct {
	trie        dartsTrie
	values      string // replacement strings, each ending at a NUL byte
	spec        NormalizerSpec
	wsAsSuffix  bool               // trainer_spec.treat_whitespace_as_suffix
	userDefined *spm.PrefixMatcher // nil when the model has no user-defined pieces
	ascii       [128]asciiRule
}

// newNormalizer decodes spec's precompiled charsmap: a little-endian uint32
// giving the trie's size in bytes, the darts-clone trie, then the replacement
// strings. An empty charsmap means no rewriting at all (identity).
func newNormalizer(spec NormalizerSpec, wsAsSuffix bool, userDefined *spm.PrefixMatcher) (*normalizer, error) {
	n := &normalizer{spec: spec, wsAsSuffix: wsAsSuffix, userDefined: userDefined}
	if blob := spec.PrecompiledCharsmap; len(blob) > 0 {
		if len(blob) <= 4 {
			return nil, fmt.Errorf("precompiled charsmap of %d bytes is too short", len(blob))
		}
		size := binary.LittleEndian.Uint32(blob)
		if uint64(size) > uint64(len(blob)-4) {
			return nil, fmt.Errorf("precompiled charsmap: trie size %d exceeds the %d bytes after its header", size, len(blob)-4)
		}
		n.trie = make(dartsTrie, size/4)
		for i := range n.trie {
			n.trie[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
		}
		n.values = string(blob[4+size:])
	}
	n.buildASCIIRules()
	return n, nil
}

// buildASCIIRules precomputes, for each ASCII byte, whether a trie search
// that starts with it can go on with an ASCII byte. When it cannot, the byte's
// normalized form does not depend on what follows as long as that is ASCII.
func (n *normalizer) buildASCIIRules() {
	for b := range n.ascii {
		r := &n.ascii[b]
		r.simple, r.out = true, string(rune(b))
		if len(n.trie) == 0 {
			continue
		}
		unit, next, ok := n.trie.step(n.trie.root(), uint32(b))
		if !ok {
			continue
		}
		for c := uint32(0); c < 0x80; c++ {
			if _, _, ok := n.trie.step(next, c); ok {
				r.simple = false
				break
			}
		}
		if unitHasLeaf(unit) {
			if next >= uint32(len(n.trie)) {
				r.simple = false
				continue
			}
			r.out = n.value(unitValue(n.trie[next]))
		}
	}
}

// value returns the replacement string stored at offset v.
func (n *normalizer) value(v uint32) string {
	if int64(v) >= int64(len(n.values)) {
		return "" // only in a corrupt charsmap
	}
	s := n.values[v:]
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// prefix normalizes the start of in and returns the replacement and the number
// of input bytes it stands for (the reference's NormalizePrefix): a
// user-defined piece as it is; else the longest charsmap rule; else one UTF-8
// character unchanged, or U+FFFD for one byte of malformed UTF-8.
func (n *normalizer) prefix(in string) (out string, used int) {
	if b := in[0]; b < 0x80 && n.userDefined == nil && (len(in) == 1 || in[1] < 0x80) && n.ascii[b].simple {
		return n.ascii[b].out, 1
	}
	if n.userDefined != nil {
		if l := n.userDefined.Match(in); l > 0 {
			return in[:l], l
		}
	}
	if l, v := n.trie.longestPrefix(in); l > 0 {
		return n.value(v), l
	}
	r, size := utf8.DecodeRuneInString(in)
	if r == utf8.RuneError && size == 1 {
		return replacementChar, 1
	}
	return in[:size], size
}

// wsSymbol is the space mark that whitespace handling uses: U+2581 when
// whitespace is escaped, else a plain space.
func (n *normalizer) wsSymbol() string {
	if n.spec.EscapeWhitespaces {
		return spaceSymbol
	}
	return " "
}

// Normalizer is the normalization of a NormalizerSpec on its own, without a
// model: what a trainer (package spmtrain) normalizes its sentences with
// before the model exists. A Model normalizes with the same rules
// ([Model.Normalize]).
type Normalizer struct{ n *normalizer }

// NewNormalizer returns the normalizer of spec; wsAsSuffix is the trainer
// spec's treat_whitespace_as_suffix (the dummy prefix then goes at the end).
// User-defined pieces are not protected from normalization.
func NewNormalizer(spec NormalizerSpec, wsAsSuffix bool) (*Normalizer, error) {
	n, err := newNormalizer(spec, wsAsSuffix, nil)
	if err != nil {
		return nil, err
	}
	return &Normalizer{n}, nil
}

// AppendNormalized appends the normalized form of s to dst, exactly as the
// reference's Normalizer::Normalize writes it.
func (n *Normalizer) AppendNormalized(dst []byte, s string) []byte {
	return n.n.appendNormalized(dst, s)
}

// appendNormalized appends the normalized form of in to dst, exactly as the
// reference's Normalizer::Normalize: rules applied left to right; with
// remove_extra_whitespaces, leading spaces dropped, runs of spaces (after the
// rules, so tabs and newlines too when the rules map them to spaces)
// collapsed to one, trailing space marks dropped; a space mark added in front
// (or at the end with treat_whitespace_as_suffix) when add_dummy_prefix; each
// space written as U+2581 when escape_whitespaces.
func (n *normalizer) appendNormalized(dst []byte, in string) []byte {
	removeExtra := n.spec.RemoveExtraWhitespaces
	if removeExtra {
		for len(in) > 0 {
			out, used := n.prefix(in)
			if out != " " {
				break
			}
			in = in[used:]
		}
	}
	if len(in) == 0 {
		return dst
	}
	start := len(dst)
	ws := n.wsSymbol()
	if n.spec.AddDummyPrefix && !n.wsAsSuffix {
		dst = append(dst, ws...)
	}
	prevSpace := removeExtra
	for len(in) > 0 {
		out, used := n.prefix(in)
		in = in[used:]
		if prevSpace {
			for len(out) > 0 && out[0] == ' ' {
				out = out[1:]
			}
		}
		if len(out) > 0 {
			for i := 0; i < len(out); i++ {
				if out[i] == ' ' && n.spec.EscapeWhitespaces {
					dst = append(dst, spaceSymbol...)
				} else {
					dst = append(dst, out[i])
				}
			}
			prevSpace = out[len(out)-1] == ' '
		}
		if !removeExtra {
			prevSpace = false
		}
	}
	if removeExtra {
		for len(dst)-start >= len(ws) && string(dst[len(dst)-len(ws):]) == ws {
			dst = dst[:len(dst)-len(ws)]
		}
	}
	if n.spec.AddDummyPrefix && n.wsAsSuffix {
		dst = append(dst, ws...)
	}
	return dst
}
