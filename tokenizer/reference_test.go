package tokenizer

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/paramgolf/golf/data/corpus"
)

// The reference data comes from SentencePiece 0.1.97 through
// testdata/gen_reference.py (see there for how to rerun it).

type referenceCase struct {
	Name       string   `json:"name"`
	InputHex   string   `json:"input_hex"`
	IDs        []int    `json:"ids"`
	Pieces     []string `json:"pieces"`
	Normalized string   `json:"normalized"`
	Decoded    string   `json:"decoded"`
	BPBBytes   int64    `json:"bpb_bytes"`
}

type reference struct {
	Model     string          `json:"model"`
	VocabSize int             `json:"vocab_size"`
	Cases     []referenceCase `json:"cases"`
	Sweep     []struct {
		Start  int    `json:"start"`
		Sep    string `json:"sep"`
		Tokens int    `json:"tokens"`
		SHA16  string `json:"sha256_16"`
	} `json:"sweep"`
	Corpus []struct {
		Doc      int    `json:"doc"`
		Tokens   int    `json:"tokens"`
		SHA256   string `json:"sha256"`
		BPBBytes int64  `json:"bpb_bytes"`
		IDs      []int  `json:"ids"`
	} `json:"corpus"`
	Decode []struct {
		IDs  []int  `json:"ids"`
		Text string `json:"text"`
	} `json:"decode"`
}

var long = flag.Bool("long", false, "run the slow parity checks on the whole corpus")

// testModel pairs a model with its reference data.
type testModel struct {
	name, path string
	m          *Model
	ref        *reference
}

// testModelFiles are the models with reference data: the challenge's two
// and the small variants of testdata/variants, which use the settings the
// two do not (see gen_reference.py).
var testModelFiles = []struct{ name, path, ref string }{
	{"sp1024", "models/fineweb_1024_bpe.model", "testdata/reference_1024.json.gz"},
	{"sp8192", "testdata/fineweb_8192_bpe.model", "testdata/reference_8192.json.gz"},
	{"nobytes", "testdata/variants/nobytes.model", "testdata/reference_nobytes.json.gz"},
	{"suffix", "testdata/variants/suffix.model", "testdata/reference_suffix.json.gz"},
	{"spans", "testdata/variants/spans.model", "testdata/reference_spans.json.gz"},
	{"unused", "testdata/variants/unused.model", "testdata/reference_unused.json.gz"},
}

var loadTestModels = sync.OnceValues(func() ([]testModel, error) {
	var out []testModel
	for _, f := range testModelFiles {
		m := Default()
		if f.name != "sp1024" {
			var err error
			if m, err = Load(f.path); err != nil {
				return nil, err
			}
		}
		ref, err := readReference(f.ref)
		if err != nil {
			return nil, err
		}
		out = append(out, testModel{f.name, f.path, m, ref})
	}
	return out, nil
})

func readReference(path string) (*reference, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var ref reference
	if err := json.NewDecoder(zr).Decode(&ref); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &ref, nil
}

func testModels(t testing.TB) []testModel {
	t.Helper()
	ms, err := loadTestModels()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// idsText writes ids as the reference data hashes them: decimal, one space apart.
func idsText(ids []int) string {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	return sb.String()
}

func idsSHA(ids []int) string {
	sum := sha256.Sum256([]byte(idsText(ids)))
	return hex.EncodeToString(sum[:])
}

func withBOS(m *Model, ids []int) []uint16 {
	out := []uint16{uint16(m.BOS())}
	for _, id := range ids {
		out = append(out, uint16(id))
	}
	return out
}

// variants returns the model as used normally plus copies that take the
// other code paths: no word cache (whole text segmented at once) and the
// priority queue for every segment. All must agree with the reference.
func variants(t testing.TB, tm testModel) map[string]*Model {
	t.Helper()
	path := tm.path
	noCache, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	noCache.split = splitNone
	queue, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	queue.split, queue.scanLimit = splitNone, 0
	return map[string]*Model{"cached": tm.m, "whole-text": noCache, "queue": queue}
}

func TestParityAdversarial(t *testing.T) {
	for _, tm := range testModels(t) {
		if len(tm.ref.Cases) < 500 {
			t.Fatalf("%s: only %d reference cases", tm.name, len(tm.ref.Cases))
		}
		for vname, m := range variants(t, tm) {
			failures := 0
			for _, c := range tm.ref.Cases {
				in, err := hex.DecodeString(c.InputHex)
				if err != nil {
					t.Fatal(err)
				}
				got := m.Encode(string(in))
				if !slices.Equal(got, c.IDs) {
					failures++
					if failures <= 5 {
						t.Errorf("%s/%s: %s %q:\n got %v\nwant %v", tm.name, vname, c.Name, trim(in), trimIDs(got), trimIDs(c.IDs))
					}
					continue
				}
				if vname != "cached" {
					continue
				}
				if p := m.EncodePieces(string(in)); !slices.Equal(p, c.Pieces) {
					t.Errorf("%s: %s: pieces %q, want %q", tm.name, c.Name, p, c.Pieces)
				}
				if n := m.Normalize(string(in)); n != c.Normalized {
					t.Errorf("%s: %s: Normalize = %q, want %q", tm.name, c.Name, n, c.Normalized)
				}
				if d := m.Decode(c.IDs); d != c.Decoded {
					t.Errorf("%s: %s: Decode = %q, want %q", tm.name, c.Name, d, c.Decoded)
				}
				if b := m.ByteTable().CountTargets(withBOS(m, c.IDs)); b != c.BPBBytes {
					t.Errorf("%s: %s: CountTargets = %d, reference LUT %d", tm.name, c.Name, b, c.BPBBytes)
				}
			}
			if failures > 0 {
				t.Errorf("%s/%s: %d of %d cases differ from the reference", tm.name, vname, failures, len(tm.ref.Cases))
			}
		}
	}
}

func trim(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func trimIDs(ids []int) []int {
	if len(ids) > 40 {
		return ids[:40]
	}
	return ids
}

// TestParityCodepointSweep encodes every code point (in blocks of 128,
// concatenated and space-separated) and compares with the reference.
func TestParityCodepointSweep(t *testing.T) {
	for _, tm := range testModels(t) {
		if len(tm.ref.Sweep) == 0 && (tm.name == "nobytes" || tm.name == "spans" || tm.name == "sp1024") {
			t.Fatalf("%s: no sweep blocks", tm.name)
		}
		if len(tm.ref.Sweep) > 0 && len(tm.ref.Sweep) < 3000 {
			t.Fatalf("%s: only %d sweep blocks", tm.name, len(tm.ref.Sweep))
		}
		failures := 0
		for _, s := range tm.ref.Sweep {
			chars := sweepChars(s.Start)
			ids := tm.m.Encode(strings.Join(chars, s.Sep))
			if len(ids) != s.Tokens || idsSHA(ids)[:16] != s.SHA16 {
				failures++
				if failures <= 5 {
					t.Errorf("%s: block U+%04X sep %q: %d tokens (sha %s), reference %d (%s)", tm.name, s.Start, s.Sep, len(ids), idsSHA(ids)[:16], s.Tokens, s.SHA16)
				}
			}
		}
		if failures > 0 {
			t.Errorf("%s: %d of %d sweep blocks differ", tm.name, failures, len(tm.ref.Sweep))
		}
	}
}

// sweepRanges are the code point ranges of the reference's sweep.
var sweepRanges = [][2]int{{0, 0xD800}, {0xE000, 0x323B0}, {0xE0000, 0xE01F0}, {0xF0000, 0xF0100}, {0x10FF00, 0x110000}}

// sweepChars returns the code points of the sweep block at start.
func sweepChars(start int) []string {
	var chars []string
	for _, r := range sweepRanges {
		if start >= r[0] && start < r[1] {
			for c := start; c < min(start+128, r[1]); c++ {
				chars = append(chars, string(rune(c)))
			}
		}
	}
	return chars
}

var corpusTexts = sync.OnceValues(func() ([]string, error) {
	docs, err := corpus.Documents()
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.Text
	}
	return texts, nil
})

// TestParityCorpus encodes every document of the embedded corpus with both
// models and compares token counts, id hashes and bpb byte counts.
func TestParityCorpus(t *testing.T) {
	texts, err := corpusTexts()
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range testModels(t) {
		n := len(tm.ref.Corpus)
		if ((tm.name == "sp1024" || tm.name == "sp8192") && n != len(texts)) || n < 40 {
			t.Fatalf("%s: reference has %d documents, corpus %d", tm.name, n, len(texts))
		}
		all, err := tm.m.EncodeAll(context.Background(), texts[:n])
		if err != nil {
			t.Fatal(err)
		}
		bt := tm.m.ByteTable()
		full := 0
		for i, ids := range all {
			r := tm.ref.Corpus[i]
			if r.IDs != nil {
				full++
				if !slices.Equal(ids, r.IDs) {
					j := 0
					for j < min(len(ids), len(r.IDs)) && ids[j] == r.IDs[j] {
						j++
					}
					t.Errorf("%s: doc %d first differs at token %d: got %v, want %v", tm.name, i, j, ids[j:min(j+10, len(ids))], r.IDs[j:min(j+10, len(r.IDs))])
				}
			}
			if len(ids) != r.Tokens || idsSHA(ids) != r.SHA256 {
				t.Errorf("%s: doc %d: %d tokens, reference %d (hash differs: %v)", tm.name, i, len(ids), r.Tokens, idsSHA(ids) != r.SHA256)
			}
			if b := bt.CountTargets(withBOS(tm.m, ids)); b != r.BPBBytes {
				t.Errorf("%s: doc %d: CountTargets = %d, reference LUT %d", tm.name, i, b, r.BPBBytes)
			}
		}
		if full == 0 {
			t.Errorf("%s: reference stores no full ids", tm.name)
		}
	}
}

// TestParityCorpusWholeText checks the uncached path on part of the corpus
// (the whole corpus with -long).
func TestParityCorpusWholeText(t *testing.T) {
	texts, err := corpusTexts()
	if err != nil {
		t.Fatal(err)
	}
	n := 12
	if *long {
		n = len(texts)
	}
	for _, tm := range testModels(t) {
		m := variants(t, tm)["whole-text"]
		for i := range min(n, len(tm.ref.Corpus)) {
			ids := m.Encode(texts[i])
			if r := tm.ref.Corpus[i]; len(ids) != r.Tokens || idsSHA(ids) != r.SHA256 {
				t.Errorf("%s whole-text: doc %d: %d tokens, reference %d", tm.name, i, len(ids), r.Tokens)
			}
		}
	}
}

func TestParityDecode(t *testing.T) {
	for _, tm := range testModels(t) {
		if len(tm.ref.Decode) < 400 {
			t.Fatalf("%s: only %d decode cases", tm.name, len(tm.ref.Decode))
		}
		for _, c := range tm.ref.Decode {
			if got := tm.m.Decode(c.IDs); got != c.Text {
				t.Errorf("%s: Decode(%v) = %q, reference %q", tm.name, c.IDs, got, c.Text)
			}
		}
	}
}

// TestVariantsCoverSettings checks that the variant models have the settings
// they were trained for, so that their parity tests cover what gen_reference.py
// says they do.
func TestVariantsCoverSettings(t *testing.T) {
	ms := map[string]*Model{}
	for _, tm := range testModels(t) {
		ms[tm.name] = tm.m
	}
	check := func(name, what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: expected %s", name, what)
		}
	}
	innerSpace := func(m *Model) bool {
		for id, p := range m.pieces {
			if i := strings.Index(p, spaceSymbol); i > 0 && i < len(p)-len(spaceSymbol) && m.types[id] == Normal {
				return true
			}
		}
		return false
	}
	data, err := os.ReadFile("testdata/variants/nobytes.model")
	if err != nil {
		t.Fatal(err)
	}
	mp, err := parseModelProto(data)
	if err != nil {
		t.Fatal(err)
	}

	m := ms["nobytes"]
	check("nobytes", "no byte fallback", !m.trainer.ByteFallback)
	check("nobytes", "a dummy prefix", m.normSpec.AddDummyPrefix)
	check("nobytes", `unk surface "<?>"`, m.trainer.UnkSurface == "<?>")
	check("nobytes", "self-test samples", len(mp.selfTests) >= 10)
	check("nobytes", "word split before spaces", m.split == splitBeforeSpace)

	m = ms["suffix"]
	check("suffix", "whitespace as suffix", m.trainer.TreatWhitespaceAsSuffix)
	check("suffix", "extra whitespace kept", !m.normSpec.RemoveExtraWhitespaces)
	check("suffix", "identity normalization", len(m.normSpec.PrecompiledCharsmap) == 0)
	check("suffix", "user-defined pieces", m.matcher != nil && m.PieceType(m.PieceID("<sep>")) == UserDefined)
	check("suffix", "no BOS", m.BOS() == -1 && m.UNK() == 0 && m.EOS() == 1 && m.PAD() == 2)
	check("suffix", "a denormalizer", m.denorm != nil)
	check("suffix", "word split after spaces", m.split == splitAfterSpace)

	m = ms["spans"]
	check("spans", "pieces with inner spaces", innerSpace(m))
	check("spans", "no word split", m.split == splitNone)
	check("spans", "case folding", m.normSpec.Name == "nmt_nfkc_cf" && m.Normalize("ABC") == "abc")

	m = ms["unused"]
	unused := 0
	for id := range m.VocabSize() {
		if m.IsUnused(id) {
			unused++
		}
	}
	check("unused", "unused pieces", m.hasUnused && unused >= 50)
	check("unused", "unescaped spaces", !m.normSpec.EscapeWhitespaces && m.Normalize("a  b") == " a b")
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
