package tokenizer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestEncodeAll(t *testing.T) {
	texts, err := corpusTexts()
	if err != nil {
		t.Fatal(err)
	}
	texts = append(slices.Clone(texts[:20]), "", " ", "x")
	m := Default()
	all, err := m.EncodeAll(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if !slices.Equal(all[i], m.Encode(text)) {
			t.Fatalf("document %d differs from Encode", i)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.EncodeAll(ctx, texts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if got, err := m.EncodeAll(context.Background(), nil); err != nil || len(got) != 0 {
		t.Fatalf("no documents: %v %v", got, err)
	}
}

// encodeLinesWant is what EncodeLines must write: each line's ids, the line
// being the text up to "\n" as spm_encode reads it.
func encodeLinesWant(m *Model, input string) string {
	var sb strings.Builder
	lines := strings.SplitAfter(input, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		sb.WriteString(idsText(m.Encode(strings.TrimSuffix(l, "\n"))) + "\n")
	}
	return sb.String()
}

func TestEncodeLines(t *testing.T) {
	var long strings.Builder
	for i := range 40_000 { // one line of ~300 kB, longer than the reader's buffer
		long.WriteString("word")
		long.WriteByte(byte('a' + i%26))
		long.WriteString(" ")
	}
	ms := map[string]*Model{}
	for _, tm := range testModels(t) {
		ms[tm.name] = tm.m
	}
	for _, c := range []struct{ name, model, input string }{
		{"plain", "sp1024", "Hello world\nsecond line\n"},
		{"no final newline", "sp1024", "a\nb"},
		{"blank lines", "sp1024", "\n\n \n"},
		{"empty", "sp1024", ""},
		// With whitespace kept, the "\r" of a CRLF line is part of the text.
		{"crlf kept", "suffix", "a b\r\nc\r\n\r\n"},
		{"long line", "sp8192", "start\n" + long.String() + "\nend\n"},
	} {
		m := ms[c.model]
		want := encodeLinesWant(m, c.input)
		for _, workers := range []int{1, 3} {
			var out bytes.Buffer
			st, err := m.EncodeLines(context.Background(), &out, strings.NewReader(c.input), LinesOptions{Workers: workers})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if out.String() != want {
				t.Errorf("%s (%d workers): got %.200q, want %.200q", c.name, workers, out.String(), want)
			}
			if st.Bytes != int64(len(c.input)) || st.Docs != int64(strings.Count(want, "\n")) {
				t.Errorf("%s: stats %+v for %d bytes", c.name, st, len(c.input))
			}
		}
	}
	if strings.Contains(encodeLinesWant(ms["suffix"], "a\r\n"), encodeLinesWant(ms["suffix"], "a\n")) {
		t.Error("the suffix model does not see the \\r: the CRLF case tests nothing")
	}
}

func TestEncodeLinesJSONLAndPieces(t *testing.T) {
	m := Default()
	in := `{"text":"Hello\nworld"}` + "\n   \n" + `{"text":"x²","id":3}` + "\n"
	var out bytes.Buffer
	st, err := m.EncodeLines(context.Background(), &out, strings.NewReader(in), LinesOptions{JSONL: true, Pieces: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "H ell o ▁wor ld\nx 2\n"; out.String() != want || st.Docs != 2 || st.Tokens != 7 {
		t.Fatalf("got %q (%+v), want %q", out.String(), st, want)
	}
	out.Reset()
	_, err = m.EncodeLines(context.Background(), &out, strings.NewReader(in+"[1,2]\n"), LinesOptions{JSONL: true, Name: "docs.jsonl"})
	if err == nil || !strings.Contains(err.Error(), "docs.jsonl: line 4: not a JSON object") {
		t.Fatalf("error %v", err)
	}
	// The key is exactly "text", as golf data build reads it.
	_, err = m.EncodeLines(context.Background(), io.Discard, strings.NewReader(`{"Text":"capitalised"}`+"\n"), LinesOptions{JSONL: true})
	if err == nil || !strings.Contains(err.Error(), `no "text" field`) {
		t.Fatalf(`{"Text": ...}: %v, want the same refusal as golf data build`, err)
	}
	if out.String() != "981 465 943 458 401\n974 976\n" {
		t.Fatalf("output before the bad line: %q", out.String())
	}
}

// failingWriter fails after n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// endlessReader yields the same line for ever.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "the state of the union\n"[i%23]
	}
	return len(p), nil
}

func TestEncodeLinesStops(t *testing.T) {
	m := Default()
	// A write error ends the work, even on endless input.
	_, err := m.EncodeLines(context.Background(), &failingWriter{n: 1 << 20}, endlessReader{}, LinesOptions{Name: "endless"})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error: %v", err)
	}
	// So does cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelAfter{n: 1 << 20, cancel: cancel}
	_, err = m.EncodeLines(ctx, w, endlessReader{}, LinesOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// A read error is reported with the line it happened on.
	_, err = m.EncodeLines(context.Background(), io.Discard, io.MultiReader(strings.NewReader("a\nb\n"), errReader{}), LinesOptions{Name: "pipe"})
	if err == nil || !strings.Contains(err.Error(), "pipe: reading line 3: broken pipe") {
		t.Fatalf("read error: %v", err)
	}
}

type cancelAfter struct {
	n      int
	cancel func()
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	w.n -= len(p)
	if w.n < 0 {
		w.cancel()
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken pipe") }
