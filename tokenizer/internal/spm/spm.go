// Package spm holds the small SentencePiece rules that both the tokenizer
// (encoding) and its trainer (tokenizer/spmtrain) follow, so the two cannot
// drift apart.
package spm

import (
	"slices"
	"strings"
)

// DefaultUnkSurface is what the reference decodes the unknown piece to
// unless the model sets trainer_spec.unk_surface: " ⁇ " (U+2047 between
// spaces).
const DefaultUnkSurface = " \u2047 "

// OrDefault returns s, or def when s is empty.
func OrDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// BytePiece returns the name of the byte piece for b, e.g. <0x0A>.
func BytePiece(b byte) string {
	const hex = "0123456789ABCDEF"
	return "<0x" + string([]byte{hex[b>>4], hex[b&15]}) + ">"
}

// OneCharLen is the length of the UTF-8 sequence that lead byte b
// announces, 1 for continuation and invalid bytes (the reference's
// OneCharLen).
func OneCharLen(b byte) int {
	return int("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x03\x04"[b>>4])
}

// PrefixMatcher finds user-defined (special) pieces, which the reference
// matches longest-first and never normalizes or splits (its
// PrefixMatcher). Like the reference's trie of C strings, it sees each
// piece only up to its first NUL byte.
type PrefixMatcher struct {
	keys    map[string]bool
	lengths []int     // the keys' distinct lengths, longest first
	first   [256]bool // bytes that start a key
}

// NewPrefixMatcher returns the matcher of pieces, or nil when there are
// none (empty pieces do not count).
func NewPrefixMatcher(pieces []string) *PrefixMatcher {
	m := &PrefixMatcher{keys: map[string]bool{}}
	for _, p := range pieces {
		if i := strings.IndexByte(p, 0); i >= 0 {
			p = p[:i]
		}
		if p == "" {
			continue
		}
		if !m.keys[p] && !slices.Contains(m.lengths, len(p)) {
			m.lengths = append(m.lengths, len(p))
		}
		m.keys[p] = true
		m.first[p[0]] = true
	}
	if len(m.keys) == 0 {
		return nil
	}
	slices.SortFunc(m.lengths, func(a, b int) int { return b - a })
	return m
}

// Match returns the length of the longest key that prefixes s, or 0.
func (m *PrefixMatcher) Match(s string) int {
	if len(s) == 0 || !m.first[s[0]] {
		return 0
	}
	for _, n := range m.lengths {
		if n <= len(s) && m.keys[s[:n]] {
			return n
		}
	}
	return 0
}

// MaxLen is the length of the longest key.
func (m *PrefixMatcher) MaxLen() int { return m.lengths[0] }
