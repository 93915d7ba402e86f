package data

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func collect(t *testing.T, inputs []Input, opt ReadOptions) ([]string, error) {
	t.Helper()
	var out []string
	for d, err := range ReadDocuments(inputs, opt) {
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func TestReadDocuments(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("one\r\ntwo\n\nthree"))
	zw.Close()
	text := Input{Name: "a.txt.gz", R: bytes.NewReader(gz.Bytes())}
	jsonl := `{"text":"x\ny"}` + "\n\n" + `{"text":"z"}` + "\n"
	for _, c := range []struct {
		name   string
		inputs []Input
		opt    ReadOptions
		want   []string
	}{
		{"lines as getline", []Input{text}, ReadOptions{Lines: true}, []string{"one\r", "two", "", "three"}},
		{"whole file", []Input{{Name: "b.txt", R: strings.NewReader("p\n\nq\n")}}, ReadOptions{}, []string{"p\n\nq\n"}},
		{"blocks", []Input{{Name: "b.txt", R: strings.NewReader("p\n\nq\n")}}, ReadOptions{BlankLineDocs: true}, []string{"p", "q"}},
		{"jsonl docs", []Input{{Name: "c.jsonl", R: strings.NewReader(jsonl)}}, ReadOptions{}, []string{"x\ny", "z"}},
		{"jsonl lines", []Input{{Name: "c.jsonl", R: strings.NewReader(jsonl)}}, ReadOptions{Lines: true}, []string{"x", "y", "z"}},
	} {
		got, err := collect(t, c.inputs, c.opt)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	_, err := collect(t, []Input{{Name: "bad.jsonl", R: strings.NewReader("{\"text\":1}\n")}}, ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl: line 1") {
		t.Errorf("bad JSONL: %v", err)
	}
	_, err = collect(t, []Input{{Name: "/nonexistent/file.txt"}}, ReadOptions{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/file.txt") {
		t.Errorf("missing file: %v", err)
	}
}
