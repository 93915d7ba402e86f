package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/paramgolf/golf/tokenizer"
)

// golfIn runs golf in-process with stdin as its standard input.
func golfIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// tokenizeInput exercises line handling: CRLF, an empty line, a line of
// whitespace, text that looks like special pieces, NFKC-changing characters,
// malformed UTF-8, an emoji, and a last line without a newline.
const tokenizeInput = "Hello world\r\n\nThe  quick\tbrown fox.\n   \n" +
	"<s> <unk> \u2581x \ufb01 x\u00b2 \xff\xfe caf\u00e9 \U0001F600 12345\n" +
	"last line without newline"

// The output of the reference, `spm_encode --model fineweb_1024_bpe.model
// --output_format=id` (and =piece) from SentencePiece 0.1.97, on tokenizeInput.
const (
	spmIDs = "981 465 943 458 401\n\n" +
		"896 587 546 281 307 657 277 943 974 960\n\n" +
		"64 946 66 939 64 358 963 66 939 974 277 944 939 974 976 939 243 195 193 243 195 193 274 942 956 199 173 939 244 163 156 132 939 972 976 994 998 995\n" +
		"949 451 304 469 345 365 569 882\n"
	spmPieces = "H ell o ▁wor ld\n\nThe ▁qu ick ▁b ro wn ▁f o x .\n\n" +
		"<0x3C> s <0x3E> ▁ <0x3C> un k <0x3E> ▁ x ▁f i ▁ x 2 ▁ <0xEF> <0xBF> <0xBD> <0xEF> <0xBF> <0xBD> ▁c a f <0xC3> <0xA9> ▁ <0xF0> <0x9F> <0x98> <0x80> ▁ 1 2 3 4 5\n" +
		"l ast ▁l ine ▁with out ▁new line\n"
)

func TestTokenizeMatchesSPMEncode(t *testing.T) {
	code, out, errs := golfIn(t, tokenizeInput, "tokenize")
	if code != 0 || out != spmIDs {
		t.Fatalf("stdin: exit %d, stderr %q\n got %q\nwant %q", code, errs, out, spmIDs)
	}
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte(tokenizeInput), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = golfIn(t, "", "tokenize", "--pieces", path)
	if code != 0 || out != spmPieces {
		t.Fatalf("--pieces FILE: exit %d, stderr %q\n got %q\nwant %q", code, errs, out, spmPieces)
	}
	code, out, _ = golfIn(t, tokenizeInput, "tokenize", "--model", "../../tokenizer/models/fineweb_1024_bpe.model", "-")
	if code != 0 || out != spmIDs {
		t.Fatalf("--model FILE -: exit %d, output %q", code, out)
	}
	if code, out, _ = golfIn(t, "", "tokenize"); code != 0 || out != "" {
		t.Fatalf("empty input: exit %d, output %q", code, out)
	}
}

func TestTokenizeJSONL(t *testing.T) {
	in := `{"text": "Hello\nworld", "id": 7}` + "\n\n" + `{"text": "", "url": "x"}` + "\n" + `{"text":"caf\u00e9 \ud83d\ude00"}`
	code, out, errs := golfIn(t, in, "tokenize", "--jsonl")
	m := tokenizer.Default()
	want := idsLine(m.Encode("Hello\nworld")) + "\n" + "\n" + idsLine(m.Encode("café 😀")) + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q\n got %q\nwant %q", code, errs, out, want)
	}
	// "Hello\nworld" -> H ell o ▁wor ld, as the reference encodes it.
	if !strings.HasPrefix(out, "981 465 943 458 401\n") {
		t.Errorf("first record: %q", out)
	}
}

func idsLine(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

// TestTokenizeOrderAcrossBatches encodes an input of many batches (several
// MB) and checks every line against Encode, in order.
func TestTokenizeOrderAcrossBatches(t *testing.T) {
	var in, want strings.Builder
	m := tokenizer.Default()
	for i := range 30000 {
		line := fmt.Sprintf("Line %d: the number %d is %s; fellow citizens of the United States.", i, i*7919, strings.Repeat("x", i%37))
		in.WriteString(line + "\n")
		want.WriteString(idsLine(m.Encode(line)) + "\n")
	}
	code, out, errs := golfIn(t, in.String(), "tokenize")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out != want.String() {
		gotLines, wantLines := strings.Split(out, "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(gotLines), len(wantLines)) {
			if gotLines[i] != wantLines[i] {
				t.Fatalf("line %d of %d differs: %q, want %q", i+1, len(wantLines), gotLines[i], wantLines[i])
			}
		}
		t.Fatalf("%d output lines, want %d", len(gotLines), len(wantLines))
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.model")
	if err := os.WriteFile(corrupt, []byte("\x0a\xff\xff\xff\x0fnot a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.txt")
	for _, c := range []struct {
		name, stdin string
		args        []string
		code        int
		stderr      []string
		stdout      string
	}{
		{"missing file", "", []string{"tokenize", missing}, 1, []string{missing, "no such file"}, ""},
		{"corrupt model", "a\n", []string{"tokenize", "--model", corrupt}, 1, []string{corrupt, "not a valid SentencePiece model"}, ""},
		{"missing model", "a\n", []string{"tokenize", "--model", missing}, 1, []string{missing}, ""},
		{"two files", "", []string{"tokenize", "a", "b"}, 2, []string{"at most one input file"}, ""},
		{"bad flag", "", []string{"tokenize", "--bogus"}, 2, []string{"bogus"}, ""},
		// The records before the bad line are written; the error names the line.
		{"bad JSON", `{"text":"a"}` + "\n" + `{"text":"b"}` + "\n" + `{"text": oops}` + "\n" + `{"text":"c"}` + "\n",
			[]string{"tokenize", "--jsonl"}, 1, []string{"standard input", "line 3", "not a JSON object"}, "942\n959\n"},
		{"no text field", `{"body":"a"}`, []string{"tokenize", "--jsonl"}, 1, []string{"line 1", `no "text" field`}, ""},
		{"text not a string", `{"text": 5}`, []string{"tokenize", "--jsonl"}, 1, []string{"line 1"}, ""},
	} {
		code, out, errs := golfIn(t, c.stdin, c.args...)
		if code != c.code || out != c.stdout {
			t.Errorf("%s: exit %d, stdout %q; want exit %d, stdout %q (stderr %q)", c.name, code, out, c.code, c.stdout, errs)
		}
		for _, w := range c.stderr {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q lacks %q", c.name, errs, w)
			}
		}
	}
}

func TestBenchTokenize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat(tokenizeInput+"\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := golfIn(t, "", "bench", "tokenize", "--json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res tokenizer.BenchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if res.Docs != 300 || res.InputBytes != int64(50*(len(tokenizeInput)+1)) || len(res.Runs) == 0 || res.Runs[0].MBps <= 0 ||
		res.Runs[0].Tokens != 50*int64(strings.Count(spmIDs, " ")+4) {
		t.Fatalf("result %+v", res)
	}
	if _, err := exec.LookPath("spm_encode"); err == nil {
		if res.Reference == nil || !res.Identical || res.Ratio <= 0 {
			t.Fatalf("spm_encode is installed but the result is %+v", res)
		}
	} else if res.Reference != nil {
		t.Fatalf("no spm_encode, but a reference result %+v", res.Reference)
	}

	code, out, errs = golfIn(t, "", "bench", "tokenize", "--spm-encode", "/nonexistent/spm_encode", path)
	if code != 1 || !strings.Contains(errs, "/nonexistent/spm_encode") {
		t.Fatalf("missing explicit reference: exit %d, stderr %q, stdout %q", code, errs, out)
	}
	if code, _, errs = golfIn(t, "", "bench", "tokenize", "--runs", "0"); code != 2 {
		t.Fatalf("--runs 0: exit %d, stderr %q", code, errs)
	}
}
