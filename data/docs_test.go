package data

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// readAllDocs drains a docReader.
func readAllDocs(name string, input []byte, format Format, blocks bool) ([]string, []int64, error) {
	r, _, closeFn, err := decompress(bytes.NewReader(input))
	if err != nil {
		return nil, nil, err
	}
	defer closeFn()
	d := newDocReader(name, r, format, blocks)
	var docs []string
	var lines []int64
	for {
		text, line, err := d.next()
		if errors.Is(err, io.EOF) {
			return docs, lines, nil
		}
		if err != nil {
			return docs, lines, err
		}
		if format == FormatJSONL {
			if text, err = decodeJSONL(name, line, text); err != nil {
				return docs, lines, err
			}
		}
		docs = append(docs, text)
		lines = append(lines, line)
	}
}

func TestBlankLineDocs(t *testing.T) {
	long := strings.Repeat("x", 700_000) // longer than the reader's buffer
	cases := []struct {
		in    string
		docs  []string
		lines []int64
	}{
		{"", nil, nil},
		{"\n \n\t\n", nil, nil},
		{"one", []string{"one"}, []int64{1}},
		{"a\nb\n\nc", []string{"a\nb", "c"}, []int64{1, 4}},
		{"\n\n a \n  \n\t\nb\r\n\r\nc\n", []string{" a ", "b", "c"}, []int64{3, 6, 8}},
		{"p1 l1\r\np1 l2\r\n\r\n\r\np2\n\n", []string{"p1 l1\r\np1 l2", "p2"}, []int64{1, 5}},
		{long + "\n\n" + long, []string{long, long}, []int64{1, 3}},
		{"x\n\u00a0\ny", []string{"x", "y"}, []int64{1, 3}}, // NBSP is whitespace too
	}
	for _, c := range cases {
		docs, lines, err := readAllDocs("in.txt", []byte(c.in), FormatText, true)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(docs, c.docs) || !slices.Equal(lines, c.lines) {
			t.Errorf("%.40q: docs %.60q at lines %v, want %.60q at %v", c.in, docs, lines, c.docs, c.lines)
		}
	}
}

func TestWholeFileDoc(t *testing.T) {
	for _, in := range []string{"", "\n\n", "a\n\nb\n"} {
		docs, lines, err := readAllDocs("in.txt", []byte(in), FormatText, false)
		if err != nil || !slices.Equal(docs, []string{in}) || !slices.Equal(lines, []int64{0}) {
			t.Errorf("%q: %q %v %v", in, docs, lines, err)
		}
	}
}

func TestJSONLDocs(t *testing.T) {
	long := strings.Repeat("\u00e9", 400_000)
	in := `{"text": "a", "id": 1}` + "\n\n  \n" +
		`{"id": [1, {"text": "nested"}], "text": "b\u00e9\ud83c\udf89\n"}` + "\r\n" +
		`{"text": ""}` + "\n" +
		`{"text": "first", "text": "last"}` + "\n" +
		`{"text": "` + long + `"}`
	docs, lines, err := readAllDocs("in.jsonl", []byte(in), FormatJSONL, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b\u00e9\U0001f389\n", "", "last", long}
	if !slices.Equal(docs, want) || !slices.Equal(lines, []int64{1, 4, 5, 6, 7}) {
		t.Errorf("docs %.80q at %v", docs, lines)
	}
	for _, c := range []struct{ in, want string }{
		{"{\"text\":\"ok\"}\n{\"text\": 5}\n", `in.jsonl: line 2: the "text" field is a number, not a string`},
		{"\n{\"text\": null}", `line 2: the "text" field is null`},
		{"{\"text\": [\"a\"]}", "an array"},
		{"{\"text\": {}}", "an object"},
		{"{\"text\": true}", "a boolean"},
		{"{\"Text\": \"x\"}", `line 1: the record has no "text" field`},
		{"[1, 2]", "line 1: not a JSON object"},
		{"{\"text\": \"a\"} {\"text\": \"b\"}", "line 1: not a JSON object"},
		{"\n\n{\"text\": \"a\\x\"}", "line 3: not a JSON object"},
		{"plain text", "line 1: not a JSON object"},
	} {
		_, _, err := readAllDocs("in.jsonl", []byte(c.in), FormatJSONL, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
}

func TestDecompressDetection(t *testing.T) {
	plain := []byte("{\"text\": \"compressed\"}\n")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain)
	w.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)
	for _, c := range []struct {
		name, kind string
		data       []byte
	}{{"plain", "", plain}, {"gzip", "gzip", gz.Bytes()}, {"zstd", "zstd", zs}, {"short", "", []byte{0x1f}}, {"empty", "", nil}} {
		r, kind, closeFn, err := decompress(bytes.NewReader(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(r)
		closeFn()
		want := c.data
		if c.kind != "" {
			want = plain
		}
		if err != nil || kind != c.kind || !bytes.Equal(got, want) {
			t.Errorf("%s: kind %q, %q, %v", c.name, kind, got, err)
		}
	}
	// A corrupt gzip stream fails when read, with the input named.
	bad := append([]byte{}, gz.Bytes()...)
	bad[len(bad)-5] ^= 0xff
	if _, _, err := readAllDocs("bad.jsonl.gz", bad, FormatJSONL, false); err == nil || !strings.Contains(err.Error(), "bad.jsonl.gz") {
		t.Errorf("corrupt gzip: %v", err)
	}
}

func TestFormatFor(t *testing.T) {
	for name, want := range map[string]Format{
		"a.jsonl": FormatJSONL, "a.JSONL.gz": FormatJSONL, "dir/x.jsonl.zst": FormatJSONL,
		"a.txt": FormatText, "a.json": FormatText, "-": FormatText, "a.jsonl.txt": FormatText,
	} {
		if got := formatFor(FormatAuto, name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if formatFor(FormatJSONL, "a.txt") != FormatJSONL || formatFor(FormatText, "a.jsonl") != FormatText {
		t.Error("an explicit format must win")
	}
}

func looksCompressed(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0x1f, 0x8b}) || bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// FuzzBlankLineDocs checks the blank-line splitter's invariants on any
// input: the documents, in order, hold exactly the input's non-blank lines;
// none is blank or holds a blank line; and each starts on the line reported.
func FuzzBlankLineDocs(f *testing.F) {
	for _, s := range []string{"", "a", "a\n\nb", "\r\n\r\n x\r\n", "a\n \nb\n\t\n\nc\n", "\u00a0\n\u2028x", "x\n\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if looksCompressed(in) {
			return // read as a gzip or zstd stream
		}
		docs, starts, err := readAllDocs("fuzz.txt", in, FormatText, true)
		if err != nil {
			t.Fatal(err)
		}
		// The reference: the input's lines, the blank ones dropped.
		inLines := strings.SplitAfter(string(in), "\n")
		var want []string
		var wantStarts []int64
		prevBlank := true
		for i, l := range inLines {
			if l == "" {
				continue
			}
			if isBlank([]byte(l)) {
				prevBlank = true
				continue
			}
			want = append(want, string(trimNewline([]byte(l))))
			if prevBlank {
				wantStarts = append(wantStarts, int64(i+1))
			}
			prevBlank = false
		}
		var got []string
		for _, d := range docs {
			if isBlank([]byte(d)) {
				t.Fatalf("blank document %q", d)
			}
			ls := strings.SplitAfter(d, "\n")
			for i, l := range ls {
				if isBlank([]byte(l)) {
					t.Fatalf("document %q holds a blank line", d)
				}
				if i < len(ls)-1 { // the last line's newline is already gone
					l = string(trimNewline([]byte(l)))
				}
				got = append(got, l)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("lines %q, want %q", got, want)
		}
		if !slices.Equal(starts, wantStarts) {
			t.Fatalf("documents start on lines %v, want %v", starts, wantStarts)
		}
	})
}

// FuzzJSONLDocs checks the JSONL splitter against a line-by-line decoding
// with encoding/json into an untyped value: the same documents, or an error
// exactly when some non-blank line is not an object with a string "text".
func FuzzJSONLDocs(f *testing.F) {
	for _, s := range []string{
		`{"text": "a"}`, "{\"text\": \"a\"}\n\n{\"text\": \"b\\u00e9\"}\r\n", `{"text": 1}`, `{"Text": "a"}`,
		`{"text": "a", "text": "b"}`, "{\"text\": \"\\ud800\"}", "{\"text\": \"\xff\"}", "[]", "\n \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if looksCompressed(in) {
			return // read as a gzip or zstd stream
		}
		docs, _, err := readAllDocs("fuzz.jsonl", in, FormatJSONL, false)
		var want []string
		var wantErr bool
		for _, l := range strings.SplitAfter(string(in), "\n") {
			if isBlank([]byte(l)) {
				continue
			}
			var v any
			if json.Unmarshal([]byte(l), &v) != nil {
				wantErr = true
				break
			}
			obj, ok := v.(map[string]any)
			if !ok {
				wantErr = true
				break
			}
			text, ok := obj["text"].(string)
			if !ok {
				wantErr = true
				break
			}
			want = append(want, text)
		}
		if wantErr != (err != nil) {
			t.Fatalf("error %v, reference error %v", err, wantErr)
		}
		if !wantErr && !slices.Equal(docs, want) {
			t.Fatalf("docs %q, want %q", docs, want)
		}
		for _, d := range docs {
			if !utf8.ValidString(d) {
				t.Fatalf("invalid UTF-8 in %q", d)
			}
		}
	})
}
