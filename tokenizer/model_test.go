package tokenizer

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// A hand-written protobuf encoder for building test models.

func pbKey(num, typ int) []byte { return binary.AppendUvarint(nil, uint64(num)<<3|uint64(typ)) }

func pbVarint(num int, v int64) []byte {
	return binary.AppendUvarint(pbKey(num, wireVarint), uint64(v))
}

func pbBytes(num int, b ...[]byte) []byte {
	body := slices.Concat(b...)
	return slices.Concat(pbKey(num, wireBytes), binary.AppendUvarint(nil, uint64(len(body))), body)
}

func pbString(num int, s string) []byte { return pbBytes(num, []byte(s)) }

func pbFloat(num int, f float32) []byte {
	return binary.LittleEndian.AppendUint32(pbKey(num, wireFixed32), math.Float32bits(f))
}

type testPiece struct {
	piece string
	score float32
	typ   PieceType
}

// buildModel serializes a ModelProto with the given pieces, trainer_spec
// fields and normalizer_spec fields (each already encoded).
func buildModel(pieces []testPiece, trainer, normalizer [][]byte, extra ...[]byte) []byte {
	var out []byte
	for _, p := range pieces {
		out = append(out, pbBytes(1, pbString(1, p.piece), pbFloat(2, p.score), pbVarint(3, int64(p.typ)))...)
	}
	out = append(out, pbBytes(2, append([][]byte{pbVarint(3, int64(BPE))}, trainer...)...)...)
	out = append(out, pbBytes(3, normalizer...)...)
	for _, e := range extra {
		out = append(out, e...)
	}
	return out
}

// identityNorm is a normalizer_spec without rules: only whitespace handling.
var identityNorm = [][]byte{pbString(1, "identity"), pbVarint(3, 0)}

// tinyPieces is a small vocabulary for hand-computed encodings: merges
// "ab" and "bc" tie, "abc" is reachable only through "ab".
func tinyPieces() []testPiece {
	return []testPiece{
		{"<unk>", 0, Unknown}, {"<s>", 0, Control}, {"</s>", 0, Control},
		{"ab", -1, Normal}, {"bc", -1, Normal}, {"abc", -3, Normal}, {"▁a", -4, Normal},
		{"a", -10, Normal}, {"b", -10, Normal}, {"c", -10, Normal}, {"▁", -10, Normal},
	}
}

func mustParse(t *testing.T, data []byte) *Model {
	t.Helper()
	m, err := Parse("test.model", data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEncodeHandComputed(t *testing.T) {
	m := mustParse(t, buildModel(tinyPieces(), nil, identityNorm))
	for _, c := range []struct {
		text string
		want []string
	}{
		// "ab" and "bc" tie: the leftmost pair merges first, then ab+c.
		{"abc", []string{"abc"}},
		{"bcab", []string{"bc", "ab"}},
		// After "ab", nothing merges with the second b's c except "bc".
		{"abbc", []string{"ab", "bc"}},
		{"cab", []string{"c", "ab"}},
		// Runs of characters outside the vocabulary are one unknown piece
		// (shown as their text) when there is no byte fallback.
		{"axyzb", []string{"a", "xyz", "b"}},
		{"a b", []string{"a", "▁", "b"}},
		{"  a  a  ", []string{"a", "▁a"}},
		{"", nil},
	} {
		got := m.EncodePieces(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("EncodePieces(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	if got := m.Encode("axyzb"); !slices.Equal(got, []int{7, 0, 8}) {
		t.Errorf("Encode(axyzb) = %v, want [7 0 8]", got)
	}
	// Without "abc", the tie decides: ab + c; raising bc above ab: a + bc.
	p := slices.Delete(tinyPieces(), 5, 6)
	if got := mustParse(t, buildModel(p, nil, identityNorm)).EncodePieces("abc"); !slices.Equal(got, []string{"ab", "c"}) {
		t.Errorf("tie: %q, want [ab c]", got)
	}
	p[4].score = -0.5
	if got := mustParse(t, buildModel(p, nil, identityNorm)).EncodePieces("abc"); !slices.Equal(got, []string{"a", "bc"}) {
		t.Errorf("with bc first: %q, want [a bc]", got)
	}
	if m.BOS() != 1 || m.EOS() != 2 || m.UNK() != 0 || m.PAD() != -1 || m.VocabSize() != 11 {
		t.Errorf("special ids bos %d eos %d unk %d pad %d, vocab %d", m.BOS(), m.EOS(), m.UNK(), m.PAD(), m.VocabSize())
	}
	if d := m.Decode([]int{1, 6, 0, 10, 5, 2}); d != "a ⁇  abc" {
		t.Errorf("Decode = %q", d)
	}
}

func TestByteFallbackAndUnused(t *testing.T) {
	p := tinyPieces()
	p[3].typ = Unused // "ab" may still be merged through, but is never output
	for b := range 256 {
		p = append(p, testPiece{spm.BytePiece(byte(b)), 0, Byte})
	}
	m := mustParse(t, buildModel(p, [][]byte{pbVarint(35, 1)}, identityNorm))
	for _, c := range []struct {
		text string
		want []string
	}{
		{"abc", []string{"abc"}},
		{"ab", []string{"a", "b"}},
		{"é", []string{"<0xC3>", "<0xA9>"}},
		{"a\xffb", []string{"a", "<0xEF>", "<0xBF>", "<0xBD>", "b"}},
	} {
		if got := m.EncodePieces(c.text); !slices.Equal(got, c.want) {
			t.Errorf("EncodePieces(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	if d := m.Decode(m.Encode("é a\xff")); d != "é a\uFFFD" {
		t.Errorf("round trip: %q", d)
	}
	// Byte pieces that do not form UTF-8 decode to U+FFFD each.
	if d := m.Decode([]int{m.PieceID("<0xC3>"), m.PieceID("c"), m.PieceID("<0xFF>"), m.PieceID("<0x41>")}); d != "\uFFFDc\uFFFDA" {
		t.Errorf("broken bytes decode to %q", d)
	}
}

func TestUserDefinedPieces(t *testing.T) {
	p := append(tinyPieces(), testPiece{"<sep>", 0, UserDefined}, testPiece{"ﬁ", 0, UserDefined})
	m := mustParse(t, buildModel(p, nil, [][]byte{pbString(1, "nmt_nfkc"), pbBytes(2, Default().normSpec.PrecompiledCharsmap), pbVarint(3, 0)}))
	// User-defined pieces are matched before normalization and never merge;
	// "ﬁ" elsewhere would become "fi" under NFKC.
	if got := m.EncodePieces("ab<sep>cﬁ"); !slices.Equal(got, []string{"ab", "<sep>", "c", "ﬁ"}) {
		t.Errorf("got %q", got)
	}
	if got := m.Normalize("x²ﬁ"); got != "x2ﬁ" {
		t.Errorf("Normalize = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	base := tinyPieces()
	withBytes := func(skip int) []testPiece {
		p := slices.Clone(base)
		for b := range 256 {
			if b != skip {
				p = append(p, testPiece{spm.BytePiece(byte(b)), 0, Byte})
			}
		}
		return p
	}
	valid := buildModel(base, nil, identityNorm)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "the file is empty"},
		{"text file", []byte("hello, world\n"), "not a valid SentencePiece model"},
		{"truncated", valid[:len(valid)-3], "runs past the end"},
		{"bad wire type", append(slices.Clone(valid), 0x0f), "invalid wire type"},
		{"unigram", buildModel(base, [][]byte{pbVarint(3, int64(Unigram))}, identityNorm), "model type is UNIGRAM; only BPE"},
		{"no pieces", buildModel(nil, nil, identityNorm), "vocabulary is empty"},
		{"empty piece", buildModel(append(slices.Clone(base), testPiece{"", 0, Normal}), nil, identityNorm), "piece 11 is empty"},
		{"duplicate piece", buildModel(append(slices.Clone(base), testPiece{"ab", 0, Normal}), nil, identityNorm), `"ab" (NORMAL) is already defined as piece 3`},
		{"no unknown", buildModel(base[1:], nil, identityNorm), "no unknown piece"},
		{"two unknown", buildModel(append(slices.Clone(base), testPiece{"<unk2>", 0, Unknown}), nil, identityNorm), "a second unknown piece"},
		{"byte piece without fallback", buildModel(withBytes(-1), nil, identityNorm), "although byte_fallback is off"},
		{"malformed byte piece", buildModel(append(slices.Clone(base), testPiece{"<0x4g>", 0, Byte}), [][]byte{pbVarint(35, 1)}, identityNorm), `"<0x4g>" is not of the form <0xNN>`},
		{"missing byte piece", buildModel(withBytes(0x80), [][]byte{pbVarint(35, 1)}, identityNorm), "the byte piece <0x80> is missing"},
		{"short charsmap", buildModel(base, nil, [][]byte{pbString(2, "abc")}), "charsmap of 3 bytes is too short"},
		{"charsmap size", buildModel(base, nil, [][]byte{pbString(2, "\xff\x00\x00\x00abcd")}), "trie size 255 exceeds"},
		{"self-test", buildModel(base, nil, identityNorm, pbBytes(4, pbBytes(1, pbString(1, "abc"), pbString(2, "a bc")))), `"abc" encodes to "abc", the model expects "a bc"`},
	} {
		m, err := Parse("bad.model", c.data)
		if err == nil {
			t.Errorf("%s: parsed (%d pieces), want an error", c.name, m.VocabSize())
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "bad.model") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want the file name and %q", c.name, msg, c.want)
		}
	}
	// A self-test that passes is accepted.
	if _, err := Parse("ok.model", buildModel(base, nil, identityNorm, pbBytes(4, pbBytes(1, pbString(1, "abc bc"), pbString(2, "abc ▁ bc"))))); err != nil {
		t.Errorf("passing self-test: %v", err)
	}
}

// TestParseTruncated cuts the real model at many points: every cut must
// fail cleanly, naming the file.
func TestParseTruncated(t *testing.T) {
	data := defaultModelData
	for _, n := range []int{1, 2, 5, 100, 1000, 10_000, 13_000, 14_000, 200_000, len(data) - 1} {
		if _, err := Parse("cut.model", data[:n]); err == nil || !strings.Contains(err.Error(), "cut.model") {
			t.Errorf("cut at %d: error %v", n, err)
		}
	}
}

func TestLoad(t *testing.T) {
	m, err := Load("models/fineweb_1024_bpe.model")
	if err != nil {
		t.Fatal(err)
	}
	if m.VocabSize() != 1024 || !slices.Equal(m.Encode("Hello world"), Default().Encode("Hello world")) {
		t.Errorf("loaded model differs from the embedded one")
	}
	missing := filepath.Join(t.TempDir(), "missing.model")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestDefaultModelFacts(t *testing.T) {
	m := Default()
	if m != Default() {
		t.Error("Default returns different models")
	}
	// The challenge's sp1024: pad 0, bos 1, eos 2, unk 3, byte pieces 4-259,
	// a standalone "▁" (id 939), byte fallback, nmt_nfkc, no dummy prefix.
	if m.VocabSize() != 1024 || m.PAD() != 0 || m.BOS() != 1 || m.EOS() != 2 || m.UNK() != 3 {
		t.Errorf("ids: vocab %d pad %d bos %d eos %d unk %d", m.VocabSize(), m.PAD(), m.BOS(), m.EOS(), m.UNK())
	}
	if !m.IsByte(4) || m.Piece(4) != "<0x00>" || !m.IsByte(259) || m.Piece(259) != "<0xFF>" || m.IsByte(260) {
		t.Error("byte pieces are not ids 4-259")
	}
	if m.PieceID("▁") != 939 || !m.IsControl(1) || !m.IsUnknown(3) || m.PieceType(5000) != 0 || m.Piece(-1) != "" {
		t.Error("piece lookups")
	}
	ts, ns := m.TrainerSpec(), m.NormalizerSpec()
	if ts.ModelType != BPE || !ts.ByteFallback || !ts.SplitDigits || ns.Name != "nmt_nfkc" || ns.AddDummyPrefix || !ns.RemoveExtraWhitespaces {
		t.Errorf("specs %+v %+v", ts, ns)
	}
	// The measured reference facts of the brief.
	for text, want := range map[string]string{"Hello\nworld": "H ell o ▁wor ld", "ﬁ": "f i", "x²": "x 2"} {
		if got := strings.Join(m.EncodePieces(text), " "); got != want {
			t.Errorf("%q -> %q, want %q", text, got, want)
		}
	}
}

func TestSHA256IsTheModelFileDigest(t *testing.T) {
	raw, err := os.ReadFile("models/fineweb_1024_bpe.model")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(raw)); Default().SHA256() != want {
		t.Errorf("Default().SHA256() = %s, want %s", Default().SHA256(), want)
	}
}

// An empty or vocabulary-less file is reported as such, not as a model of
// the wrong type.
func TestParseEmptyFile(t *testing.T) {
	for _, data := range [][]byte{nil, {}} {
		_, err := Parse("empty.model", data)
		if err == nil || strings.Contains(err.Error(), "UNIGRAM") || !strings.Contains(err.Error(), "empty.model") ||
			!strings.Contains(err.Error(), "empty") {
			t.Errorf("%x: %v", data, err)
		}
	}
}
