package tokenizer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

// caseOpsRef is testdata/train/caseops.json.gz: outputs of the record's
// lossless_caps.py (see spmtrain/testdata/gen_train_reference.py).
type caseOpsRef struct {
	TransformName string            `json:"transform_name"`
	Corpus        []string          `json:"corpus"`      // SHA-256 of each document's transform
	CorpusFull    map[string]string `json:"corpus_full"` // document index -> transform
	Strings       []struct {
		Text, Encoded, Decoded string
	} `json:"strings"`
	Malformed []struct {
		Text    string `json:"text"`
		Decoded string `json:"decoded"`
		Error   string `json:"error"`
	} `json:"malformed"`
	ModelCase string `json:"model_case"`
	Val       []struct {
		IDs    string `json:"ids_sha256"`
		Counts string `json:"counts_sha256"`
		Total  int    `json:"total"`
		UTF8   int    `json:"utf8"`
		Full   []int  `json:"counts"`
	} `json:"val"`
	StringCounts []struct {
		Text   string   `json:"text"`
		IDs    []int    `json:"ids"`
		Counts []int    `json:"counts"`
		Spans  [][2]int `json:"spans"`
	} `json:"string_counts"`
}

var caseOpsReference = sync.OnceValues(func() (*caseOpsRef, error) {
	var r caseOpsRef
	err := loadGzipJSON("testdata/train/caseops.json.gz", &r)
	return &r, err
})

func loadCaseOpsRef(t *testing.T) *caseOpsRef {
	t.Helper()
	r, err := caseOpsReference()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Corpus) == 0 {
		t.Fatal("testdata/train/caseops.json.gz: no data")
	}
	return r
}

// TestCaseOpsParity compares the transform and its inverse with the
// record's lossless_caps.py on every corpus document, adversarial strings
// and malformed input.
func TestCaseOpsParity(t *testing.T) {
	r := loadCaseOpsRef(t)
	if r.TransformName != tokenizer.CaseOpsTransformName {
		t.Errorf("transform name %q, reference %q", tokenizer.CaseOpsTransformName, r.TransformName)
	}
	texts, err := corpusDocs()
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != len(r.Corpus) {
		t.Fatalf("%d corpus documents, reference %d", len(texts), len(r.Corpus))
	}
	for i, text := range texts {
		enc := tokenizer.CaseOpsEncode(text)
		if got := sha256Hex([]byte(enc)); got != r.Corpus[i] {
			t.Errorf("document %d: transform differs from the reference", i)
		}
		if dec, err := tokenizer.CaseOpsDecode(enc); err != nil || dec != text {
			t.Errorf("document %d: does not round-trip (%v)", i, err)
		}
	}
	for k, want := range r.CorpusFull {
		var i int
		for j := range k {
			i = i*10 + int(k[j]-'0')
		}
		if got := tokenizer.CaseOpsEncode(texts[i]); got != want {
			t.Errorf("document %d: transform differs", i)
		}
	}
	for _, s := range r.Strings {
		if got := tokenizer.CaseOpsEncode(s.Text); got != s.Encoded {
			t.Errorf("CaseOpsEncode(%q) = %q, reference %q", s.Text, got, s.Encoded)
		}
		if got, err := tokenizer.CaseOpsDecode(s.Encoded); err != nil || got != s.Decoded {
			t.Errorf("CaseOpsDecode(%q) = %q, %v; reference %q", s.Encoded, got, err, s.Decoded)
		}
	}
	for _, m := range r.Malformed {
		got, err := tokenizer.CaseOpsDecode(m.Text)
		switch {
		case m.Error != "" && err == nil:
			t.Errorf("CaseOpsDecode(%q) = %q; the reference fails: %s", m.Text, got, m.Error)
		case m.Error != "" && !errors.Is(err, tokenizer.ErrCaseOps):
			t.Errorf("CaseOpsDecode(%q): error %v does not wrap ErrCaseOps", m.Text, err)
		case m.Error == "" && (err != nil || got != m.Decoded):
			t.Errorf("CaseOpsDecode(%q) = %q, %v; reference %q", m.Text, got, err, m.Decoded)
		}
	}
}

// caseOpsModel trains the reference's CaseOps model (the case
// caseops_corpus_8192, byte-identical to spm_train's as spmtrain's
// TestTrainParity checks) once.
var caseOpsModel = sync.OnceValues(func() (*tokenizer.Model, error) {
	texts, err := corpusDocs()
	if err != nil {
		return nil, err
	}
	var sentences []string
	for _, d := range texts[corpus.ValDocs:] {
		sentences = append(sentences, tokenizer.CaseOpsEncode(d))
	}
	o := spmtrain.DefaultOptions(8192)
	o.UserDefinedSymbols = tokenizer.CaseOpsSymbols
	o.MaxSentenceLength = 300000
	return spmtrain.Train(context.Background(), sentences, o)
})

// trimmedLen is the UTF-8 length of text without the whitespace that the
// model's normalization drops at both ends: what a document's token bytes
// add up to.
func trimmedLen(m *tokenizer.Model, text string) int {
	_, spans := m.EncodeSpans(text)
	if len(spans) == 0 {
		return 0
	}
	return spans[len(spans)-1].End - spans[0].Begin
}

// TestCaseOpsByteCounts compares the per-token original byte counts (the
// validation sidecar's values) with the record's
// surface_piece_original_byte_counts over the reference's surfaces, on the
// validation documents and adversarial strings, and checks that they add
// up to the original text's length.
func TestCaseOpsByteCounts(t *testing.T) {
	r := loadCaseOpsRef(t)
	m, err := caseOpsModel()
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasCaseOps() {
		t.Fatal("the CaseOps model lacks its operators")
	}
	for i, s := range tokenizer.CaseOpsSymbols {
		if id := m.PieceID(s); id != 4+i || m.PieceType(id) != tokenizer.UserDefined {
			t.Errorf("operator %q: id %d (%v), want %d (USER_DEFINED) as in the record", s, id, m.PieceType(id), 4+i)
		}
	}
	texts, _ := corpusDocs()
	for i, v := range r.Val {
		ids, counts, err := m.CaseOpsEncode(texts[i])
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if idsSHA(ids) != v.IDs {
			t.Errorf("document %d: ids differ from the reference", i)
		}
		if idsSHA(counts) != v.Counts {
			t.Errorf("document %d: byte counts differ from the reference", i)
			if v.Full != nil {
				for k := range min(len(counts), len(v.Full)) {
					if counts[k] != v.Full[k] {
						t.Logf("first difference at token %d: %d, reference %d", k, counts[k], v.Full[k])
						break
					}
				}
			}
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		if total != v.Total {
			t.Errorf("document %d: %d bytes, reference %d", i, total, v.Total)
		}
		if want := len(strings.TrimSpace(texts[i])); total != want || v.UTF8 != len(texts[i]) {
			t.Errorf("document %d: counts add up to %d, the text has %d bytes (%d with its ends)", i, total, want, len(texts[i]))
		}
	}
	for _, s := range r.StringCounts {
		ids, counts, err := m.CaseOpsEncode(s.Text)
		if err != nil {
			t.Errorf("%q: %v", s.Text, err)
			continue
		}
		if !slices.Equal(ids, s.IDs) || !slices.Equal(counts, s.Counts) {
			t.Errorf("%q: ids %v counts %v, reference %v %v", s.Text, ids, counts, s.IDs, s.Counts)
		}
		// Python reports the spans of a str in characters.
		transformed := tokenizer.CaseOpsEncode(s.Text)
		_, spans := m.EncodeSpans(transformed)
		got := make([][2]int, len(spans))
		for k, sp := range spans {
			got[k] = [2]int{utf8.RuneCountInString(transformed[:sp.Begin]), utf8.RuneCountInString(transformed[:sp.End])}
		}
		if !slices.Equal(got, s.Spans) {
			t.Errorf("%q: spans %v, reference %v", s.Text, got, s.Spans)
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		if want := trimmedLen(m, s.Text); total != want {
			t.Errorf("%q: counts add up to %d, the text has %d bytes between its first and last non-space", s.Text, total, want)
		}
	}
}

// TestCaseOpsRoundTripAdversarial checks the inverse on inputs the
// reference never sees: invalid UTF-8 and operators in every position.
func TestCaseOpsRoundTripAdversarial(t *testing.T) {
	for _, s := range []string{
		"", "\xff", "A\xffB", "\xee\x80", "\xee\x80\x81", "\xee\x80\x85", "AB\xee\x80\x82CD",
		"\ue001\ue002\ue003\ue004", "X\ue004", "\ue004X", "aBcD\ue003eF", strings.Repeat("Ab", 1000),
	} {
		enc := tokenizer.CaseOpsEncode(s)
		dec, err := tokenizer.CaseOpsDecode(enc)
		if err != nil || dec != s {
			t.Errorf("%q -> %q -> %q, %v", s, enc, dec, err)
		}
	}
}

// FuzzCaseOps checks that decoding inverts encoding for any string, and
// that the byte counts of a CaseOps model's tokens add up to the text.
func FuzzCaseOps(f *testing.F) {
	for _, s := range []string{"The NASA Launch", "McDonald iPhone", "\ue001x\ue004", "ÉCOLE ß", "a\x00B\xffC", "  Hi  "} {
		f.Add(s)
	}
	m := smallCaseOpsModel(f)
	f.Fuzz(func(t *testing.T, s string) {
		enc := tokenizer.CaseOpsEncode(s)
		dec, err := tokenizer.CaseOpsDecode(enc)
		if err != nil || dec != s {
			t.Fatalf("%q -> %q -> %q, %v", s, enc, dec, err)
		}
		if !utf8.ValidString(s) {
			return // the counts follow the normalizer, which writes U+FFFD for bad bytes
		}
		_, counts, err := m.CaseOpsEncode(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		total := 0
		for _, c := range counts {
			total += c
		}
		if want := trimmedLen(m, s); total != want {
			t.Fatalf("%q: counts %v add up to %d, want %d", s, counts, total, want)
		}
	})
}

// smallCaseOpsModel trains a small CaseOps model on part of the corpus.
func smallCaseOpsModel(t testing.TB) *tokenizer.Model {
	texts, err := corpusDocs()
	if err != nil {
		t.Fatal(err)
	}
	var sentences []string
	for _, d := range texts[corpus.ValDocs : corpus.ValDocs+20] {
		sentences = append(sentences, tokenizer.CaseOpsEncode(d))
	}
	o := spmtrain.DefaultOptions(700)
	o.UserDefinedSymbols = tokenizer.CaseOpsSymbols
	o.MaxSentenceLength = 300000
	m, err := spmtrain.Train(context.Background(), sentences, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
