package tokenizer

import (
	"slices"
	"testing"
)

// spanModels are models with every whitespace setting: sp1024, a dummy
// prefix without byte fallback, whitespace as suffix without clean-up,
// user-defined and unused pieces.
func spanModels(t testing.TB) []*Model {
	ms := []*Model{Default()}
	for _, name := range []string{"nobytes", "suffix", "unused", "spans"} {
		m, err := Load("testdata/variants/" + name + ".model")
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

var spanInputs = []string{
	"", " ", "a", "  Hello  World  ", "x\u00b2 \ufb01ne\t\tend\n", "\u3000a\u3000", "caf\u00e9 \U0001f600!",
	"\xff\xfe bad", "<sep>hello<sep> 2021", "a\x00b", "\u0301lone", "\r\n\r\n", "end ",
}

// checkSpans checks the properties of EncodeSpans on one text: the ids
// are Encode's, the normalized text is Normalize's, and the spans tile
// the input in order.
func checkSpans(t *testing.T, m *Model, text string) {
	t.Helper()
	norm, n2o := m.norm.appendNormalizedAligned(nil, nil, text)
	if string(norm) != m.Normalize(text) {
		t.Fatalf("%s: aligned normalization of %q gives %q, Normalize %q", m.Name(), text, norm, m.Normalize(text))
	}
	if len(norm) > 0 && len(n2o) != len(norm)+1 {
		t.Fatalf("%s: %q: %d alignment entries for %d bytes", m.Name(), text, len(n2o), len(norm))
	}
	for i := 1; i < len(n2o); i++ {
		if n2o[i] < n2o[i-1] || n2o[i] > len(text) {
			t.Fatalf("%s: %q: alignment %v is not monotonic within the text", m.Name(), text, n2o)
		}
	}
	ids, spans := m.EncodeSpans(text)
	if want := m.Encode(text); !slices.Equal(ids, want) {
		t.Fatalf("%s: EncodeSpans(%q) ids %v, Encode %v", m.Name(), text, ids, want)
	}
	if len(spans) != len(ids) {
		t.Fatalf("%s: %q: %d spans for %d ids", m.Name(), text, len(spans), len(ids))
	}
	for i, s := range spans {
		if s.Begin > s.End || s.End > len(text) || (i > 0 && s.Begin != spans[i-1].End) {
			t.Fatalf("%s: %q: spans %v do not tile the text", m.Name(), text, spans)
		}
	}
}

func TestEncodeSpans(t *testing.T) {
	for _, m := range spanModels(t) {
		for _, text := range spanInputs {
			checkSpans(t, m, text)
		}
	}
	// Byte pieces: the last of a character's bytes holds its span.
	ids, spans := Default().EncodeSpans("a日")
	if len(ids) != 4 || spans[0] != (Span{0, 1}) || spans[1] != (Span{1, 1}) || spans[2] != (Span{1, 1}) || spans[3] != (Span{1, 4}) {
		t.Errorf(`EncodeSpans("a日") = %v %v`, ids, spans)
	}
}

func FuzzEncodeSpans(f *testing.F) {
	for _, s := range spanInputs {
		f.Add(s)
	}
	ms := spanModels(f)
	f.Fuzz(func(t *testing.T, text string) {
		for _, m := range ms {
			checkSpans(t, m, text)
		}
	})
}
