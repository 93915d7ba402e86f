package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// CaseOps is the record's lossless capitalization transform
// (lossless_caps_caseops_v1, the same as encode_lossless_caps_v2 in its
// lossless_caps.py): capitals are rewritten as lowercase letters behind
// operator characters, so that "The", "THE" and "the" share the piece
// "the", and the text stays exactly recoverable. Over each maximal run of
// ASCII letters (a "word"):
//
//	lowercase                 unchanged                       the   -> the
//	all capitals, 2+ letters  ALLCAPS + lowercase             NASA  -> ⟨A⟩nasa
//	capital then lowercase    TITLE + lowercase               The   -> ⟨T⟩the
//	                          (a lone capital too)            A     -> ⟨T⟩a
//	other mixes               TITLE if the first is a capital, then each
//	                          later capital as CAPNEXT + its lowercase
//	                                                          McDo  -> ⟨T⟩mc⟨N⟩do
//	                                                          iPod  -> i⟨N⟩pod
//
// An operator character in the text itself is escaped as ESC + itself;
// everything else (non-ASCII letters included) is left alone. The
// operators are private-use characters, user-defined symbols of a CaseOps
// tokenizer (ids 4-7 in the record's sp8192).
const (
	CaseOpsTitle   = '\uE001' // next word: first letter capital, rest lowercase
	CaseOpsAllCaps = '\uE002' // next word: all capitals
	CaseOpsCapNext = '\uE003' // next letter: capital
	CaseOpsEscape  = '\uE004' // next character is literal
)

// CaseOpsSymbols are the four operators in id order, as user-defined
// symbols for training a CaseOps tokenizer (spmtrain.Options.UserDefinedSymbols).
var CaseOpsSymbols = []string{string(CaseOpsTitle), string(CaseOpsAllCaps), string(CaseOpsCapNext), string(CaseOpsEscape)}

// CaseOpsTransformName is the name the record's tools give the transform
// (text_transform in its manifests).
const CaseOpsTransformName = "lossless_caps_caseops_v1"

// caseOp returns which operator the UTF-8 sequence at the start of s is
// (0 if none).
func caseOp(s string) rune {
	// U+E001..U+E004 are EE 80 81..84.
	if len(s) >= 3 && s[0] == 0xEE && s[1] == 0x80 && s[2] >= 0x81 && s[2] <= 0x84 {
		return rune(0xE000 + int(s[2]-0x80))
	}
	return 0
}

func isASCIIUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
func isASCIILower(b byte) bool { return b >= 'a' && b <= 'z' }
func isASCIIAlpha(b byte) bool { return isASCIIUpper(b) || isASCIILower(b) }

// CaseOpsEncode applies the CaseOps transform to text. Bytes that are not
// valid UTF-8 pass through unchanged, so the transform is lossless for any
// string.
func CaseOpsEncode(text string) string {
	var b strings.Builder
	b.Grow(len(text) + len(text)/8)
	for i := 0; i < len(text); {
		if op := caseOp(text[i:]); op != 0 {
			b.WriteRune(CaseOpsEscape)
			b.WriteString(text[i : i+3])
			i += 3
			continue
		}
		if !isASCIIAlpha(text[i]) {
			b.WriteByte(text[i])
			i++
			continue
		}
		j := i + 1
		for j < len(text) && isASCIIAlpha(text[j]) {
			j++
		}
		writeCaseOpsWord(&b, text[i:j])
		i = j
	}
	return b.String()
}

// writeCaseOpsWord writes one run of ASCII letters, transformed.
func writeCaseOpsWord(b *strings.Builder, w string) {
	upper := 0
	for i := 0; i < len(w); i++ {
		if isASCIIUpper(w[i]) {
			upper++
		}
	}
	restLower := true // w[1:] has a letter and all are lowercase (Python's islower)
	for i := 1; i < len(w); i++ {
		restLower = restLower && isASCIILower(w[i])
	}
	restLower = restLower && len(w) > 1
	switch {
	case upper == 0:
		b.WriteString(w)
		return
	case len(w) >= 2 && upper == len(w):
		b.WriteRune(CaseOpsAllCaps)
		writeLower(b, w)
		return
	case isASCIIUpper(w[0]) && restLower:
		b.WriteRune(CaseOpsTitle)
		writeLower(b, w)
		return
	}
	if isASCIIUpper(w[0]) {
		b.WriteRune(CaseOpsTitle)
	}
	b.WriteByte(w[0] | 0x20)
	for i := 1; i < len(w); i++ {
		if isASCIIUpper(w[i]) {
			b.WriteRune(CaseOpsCapNext)
		}
		b.WriteByte(w[i] | 0x20)
	}
}

func writeLower(b *strings.Builder, w string) {
	for i := 0; i < len(w); i++ {
		b.WriteByte(w[i] | 0x20)
	}
}

// ErrCaseOps is wrapped by the errors of CaseOpsDecode and
// CaseOpsByteCounts for text that no CaseOpsEncode output can be.
var ErrCaseOps = errors.New("malformed CaseOps text")

// caseOpsState is the decoder's state machine (decode_lossless_caps_v2),
// shared by decoding and byte counting.
type caseOpsState struct {
	pendingEscape bool
	pendingWord   rune // CaseOpsTitle or CaseOpsAllCaps awaiting a word, or 0
	activeAllCaps bool
	pendingCap    bool
	inWord        bool
}

// step consumes one character c (an operator, an ASCII byte, or one UTF-8
// sequence, possibly invalid) and returns what it decodes to: the text to
// write (nil for an operator) and whether to upper-case it.
func (s *caseOpsState) step(c string) (out string, upper bool, err error) {
	if s.pendingEscape {
		if s.pendingWord != 0 && !(len(c) == 1 && isASCIIAlpha(c[0])) {
			return "", false, fmt.Errorf("%w: an escaped character cannot satisfy a pending word marker", ErrCaseOps)
		}
		s.pendingEscape = false
		if len(c) == 1 && isASCIIAlpha(c[0]) {
			s.inWord = true
		} else {
			s.inWord, s.activeAllCaps = false, false
		}
		return c, false, nil
	}
	switch caseOp(c) {
	case CaseOpsEscape:
		s.pendingEscape = true
		return "", false, nil
	case CaseOpsTitle, CaseOpsAllCaps:
		if s.pendingWord != 0 || s.inWord || s.pendingCap {
			return "", false, fmt.Errorf("%w: a word marker inside a word or after another marker", ErrCaseOps)
		}
		s.pendingWord = caseOp(c)
		return "", false, nil
	case CaseOpsCapNext:
		if s.pendingCap {
			return "", false, fmt.Errorf("%w: two capital-next markers in a row", ErrCaseOps)
		}
		s.pendingCap = true
		return "", false, nil
	}
	if len(c) == 1 && isASCIIAlpha(c[0]) {
		if !s.inWord {
			upper = s.pendingWord != 0 || s.pendingCap
			s.activeAllCaps = s.pendingWord == CaseOpsAllCaps
			s.pendingWord, s.pendingCap, s.inWord = 0, false, true
			return c, upper, nil
		}
		if s.pendingWord != 0 {
			return "", false, fmt.Errorf("%w: a word marker inside a word", ErrCaseOps)
		}
		upper = s.activeAllCaps || s.pendingCap
		s.pendingCap = false
		return c, upper, nil
	}
	if s.pendingWord != 0 || s.pendingCap {
		return "", false, fmt.Errorf("%w: a capitalization marker not followed by an ASCII letter", ErrCaseOps)
	}
	s.inWord, s.activeAllCaps = false, false
	return c, false, nil
}

func (s *caseOpsState) finish() error {
	switch {
	case s.pendingEscape:
		return fmt.Errorf("%w: a dangling escape marker at the end", ErrCaseOps)
	case s.pendingWord != 0 || s.pendingCap:
		return fmt.Errorf("%w: a dangling capitalization marker at the end", ErrCaseOps)
	}
	return nil
}

// nextCaseOpsChar returns the length of the character at the start of s:
// 3 for an operator, else one UTF-8 sequence (1 for an invalid byte).
func nextCaseOpsChar(s string) int {
	if caseOp(s) != 0 {
		return 3
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// CaseOpsDecode inverts CaseOpsEncode: CaseOpsDecode(CaseOpsEncode(s)) == s
// for every string s. Text that CaseOpsEncode cannot have produced (a
// marker before a non-letter, inside a word, or at the end) is an error
// wrapping ErrCaseOps, as in the reference decoder.
func CaseOpsDecode(text string) (string, error) {
	var b strings.Builder
	b.Grow(len(text))
	var st caseOpsState
	for i := 0; i < len(text); {
		n := nextCaseOpsChar(text[i:])
		out, upper, err := st.step(text[i : i+n])
		if err != nil {
			return "", fmt.Errorf("tokenizer: CaseOps decode at byte %d: %w", i, err)
		}
		if upper {
			b.WriteByte(out[0] &^ 0x20)
		} else {
			b.WriteString(out)
		}
		i += n
	}
	if err := st.finish(); err != nil {
		return "", fmt.Errorf("tokenizer: CaseOps decode: %w", err)
	}
	return b.String(), nil
}

// CaseOpsByteCounts returns, for each surface (the consecutive pieces of a
// CaseOps-transformed text, as the tokenizer cut it), the UTF-8 bytes of
// the original text it stands for: 0 for operators, 1 for each letter, the
// UTF-8 length of any other character (an escaped operator counts its 3
// bytes, its escape 0). This is the record's
// surface_piece_original_byte_counts; the counts add up to the length of
// the original text that the surfaces cover. The state carries across
// surfaces, so a marker may end one piece and its letter start the next.
func CaseOpsByteCounts(surfaces []string) ([]int, error) {
	counts := make([]int, len(surfaces))
	var st caseOpsState
	for k, s := range surfaces {
		n := 0
		for i := 0; i < len(s); {
			l := nextCaseOpsChar(s[i:])
			out, _, err := st.step(s[i : i+l])
			if err != nil {
				return nil, fmt.Errorf("tokenizer: CaseOps byte counts: piece %d %q: %w", k, s, err)
			}
			n += len(out)
			i += l
		}
		counts[k] = n
	}
	if err := st.finish(); err != nil {
		return nil, fmt.Errorf("tokenizer: CaseOps byte counts: %w", err)
	}
	return counts, nil
}
