package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestByteTableHandCases checks the byte rule on hand-computed cases with
// sp1024's pieces.
func TestByteTableHandCases(t *testing.T) {
	m := Default()
	bt := m.ByteTable()
	id := func(piece string) int {
		t.Helper()
		i := m.PieceID(piece)
		if i == m.UNK() && piece != "<unk>" {
			t.Fatalf("sp1024 has no piece %q", piece)
		}
		return i
	}
	bos, eos, pad, unk := m.BOS(), m.EOS(), m.PAD(), m.UNK()
	the, in, space := id("▁the"), id("in"), id("▁")
	quote, dotQuote := id("▁“"), id(".”") // “ and ” are 3 bytes each in UTF-8
	byteA, byteE2 := id("<0x41>"), id("<0xE2>")
	const beyond = 1024 // first id past sp1024's vocabulary

	for _, c := range []struct {
		name      string
		prev, tok int
		want      int
	}{
		{"space piece after BOS: the space is dropped", bos, the, 3},
		{"space piece after a word: the space counts", in, the, 4},
		{"plain piece", the, in, 2},
		{"lone space mark after a word", in, space, 1},
		{"lone space mark after BOS", bos, space, 0},
		{"multi-byte piece with space", in, quote, 1 + 3},
		{"multi-byte piece with space after BOS", bos, quote, 3},
		{"multi-byte piece without space", the, dotQuote, 1 + 3},
		{"byte piece", the, byteA, 1},
		{"byte piece of a multi-byte character", bos, byteE2, 1},
		{"space piece after a byte piece", byteA, the, 4},
		{"BOS as target", the, bos, 0},
		{"EOS as target", the, eos, 0},
		{"PAD as target", the, pad, 0},
		{"UNK as target", the, unk, 0},
		{"after UNK: a boundary", unk, the, 3},
		{"after EOS: a boundary", eos, the, 3},
		{"after PAD: a boundary", pad, the, 3},
		{"after an id beyond the vocabulary: a boundary", beyond, the, 3},
		{"after no token", -1, the, 3},
		{"target beyond the vocabulary", the, beyond, 0},
		{"target far beyond the vocabulary", the, 65535, 0},
		{"negative target", the, -1, 0},
	} {
		if got := bt.TokenBytes(c.prev, c.tok); got != c.want {
			t.Errorf("%s: TokenBytes(%d, %d) = %d, want %d", c.name, c.prev, c.tok, got, c.want)
		}
	}

	u16 := func(ids ...int) []uint16 {
		out := make([]uint16, len(ids))
		for i, v := range ids {
			out[i] = uint16(v)
		}
		return out
	}
	for _, c := range []struct {
		tokens []uint16
		want   int64
	}{
		{nil, 0},
		{u16(the), 0}, // no targets
		{u16(bos, the, in), 3 + 2},
		{u16(in, the, in), 4 + 2},
		{u16(bos, the, bos, the), 3 + 0 + 3},
		{u16(bos, byteE2, the, beyond, the), 1 + 4 + 0 + 3},
	} {
		if got := bt.CountTargets(c.tokens); got != c.want {
			t.Errorf("CountTargets(%v) = %d, want %d", c.tokens, got, c.want)
		}
	}
}

// TestByteTableMatchesText checks the invariant behind val_bpb: for a
// document encoded after BOS, the bytes of all its tokens equal the UTF-8
// length of its decoded text, which is its normalized text with each U+2581
// written as one space (the normalized text never starts with U+2581 for
// these models, so no space is dropped).
func TestByteTableMatchesText(t *testing.T) {
	texts, err := corpusTexts()
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{"", "  leading and trailing  ", "ﬁ x² émoji 😀 \xff\xfe bytes", "日本語 text\n\nnew line", "<s> literal ▁ marks ▁▁"}
	for _, tm := range testModels(t)[:2] { // sp1024 and sp8192
		bt := tm.m.ByteTable()
		for i, text := range append(extra, texts...) {
			ids := tm.m.Encode(text)
			norm := tm.m.Normalize(text)
			if strings.HasPrefix(norm, spaceSymbol) {
				t.Fatalf("%s: text %d: normalized text starts with U+2581", tm.name, i)
			}
			want := normalizedBytes(tm.m, text)
			got := bt.CountTargets(withBOS(tm.m, ids))
			if got != want {
				t.Errorf("%s: text %d: %d bytes counted, normalized text has %d", tm.name, i, got, want)
			}
			if dec := int64(len(tm.m.Decode(ids))); dec != want {
				t.Errorf("%s: text %d: decoded text has %d bytes, normalized %d", tm.name, i, dec, want)
			}
		}
	}
}

// TestByteTableMultiByteAndUnused checks the UTF-8 length of non-ASCII
// pieces, a piece with two space marks, user-defined and unused pieces, on a
// hand-made model.
func TestByteTableMultiByteAndUnused(t *testing.T) {
	p := []testPiece{
		{"<unk>", 0, Unknown}, {"<s>", 0, Control}, {"▁héllo", -1, Normal}, {"日本", -2, Normal},
		{"▁▁", -3, Normal}, {"x", -4, Unused}, {"<sep>", 0, UserDefined},
	}
	bt := mustParse(t, buildModel(p, nil, identityNorm)).ByteTable()
	for _, c := range []struct{ prev, tok, want int }{
		{3, 2, 1 + 6}, // space + h é(2) l l o
		{1, 2, 6},
		{5, 2, 6}, // after an unused piece: a boundary
		{2, 3, 6},
		{2, 4, 1 + 3}, // only the first U+2581 is the leading space
		{2, 5, 0},
		{2, 6, 5},
	} {
		if got := bt.TokenBytes(c.prev, c.tok); got != c.want {
			t.Errorf("TokenBytes(%d, %d) = %d, want %d", c.prev, c.tok, got, c.want)
		}
	}
}

// TestByteTableCountsNormalizedText extends TestByteTableMatchesText to the
// adversarial inputs, some of which (a literal U+2581 first) normalize to a
// text that starts with a space mark: then the count is one less than the
// unescaped normalized text, the space the decoder drops at the start.
func TestByteTableCountsNormalizedText(t *testing.T) {
	for _, tm := range testModels(t)[:2] { // sp1024 and sp8192
		for _, c := range tm.ref.Cases {
			text := string(mustHex(t, c.InputHex))
			ids := tm.m.Encode(text)
			got := tm.m.ByteTable().CountTargets(withBOS(tm.m, ids))
			if want := normalizedBytes(tm.m, text); got != want {
				t.Errorf("%s: %s: %d bytes counted, normalized text has %d", tm.name, c.Name, got, want)
			}
		}
	}
}

// normalizedBytes is the byte count val_bpb should see for text encoded
// after BOS with the challenge's models (byte fallback, U+2581 only at the
// start of pieces): the UTF-8 length of the normalized text with U+2581 read
// as a space, less the space of a leading U+2581, which follows BOS.
func normalizedBytes(m *Model, text string) int64 {
	norm := m.Normalize(text)
	n := int64(len(strings.ReplaceAll(norm, spaceSymbol, " ")))
	if strings.HasPrefix(norm, spaceSymbol) {
		n--
	}
	return n
}

// TestDecodeReferenceInvariant checks, on the reference's own outputs, the
// relation FuzzEncode relies on: for the challenge's models, decoding the
// ids of a text gives its normalized form with spaces unescaped and the
// leading spaces dropped.
func TestDecodeReferenceInvariant(t *testing.T) {
	for _, tm := range testModels(t)[:2] {
		for _, c := range tm.ref.Cases {
			if want := decodedForm(c.Normalized); c.Decoded != want || !utf8.ValidString(c.Decoded) {
				t.Errorf("%s: %s: reference decoded %q, normalized %q", tm.name, c.Name, c.Decoded, c.Normalized)
			}
		}
	}
}

// decodedForm is what the reference's decoder gives back for the ids of a
// normalized text: U+2581 read as a space and, as the model removes extra
// whitespace, every leading space dropped (the reference drops the leading
// U+2581 of each piece until some text has been written).
func decodedForm(normalized string) string {
	return strings.TrimLeft(strings.ReplaceAll(normalized, spaceSymbol, " "), " ")
}
