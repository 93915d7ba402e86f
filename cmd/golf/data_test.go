package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
)

// The reference export of data/testdata/docs.jsonl (see
// data/testdata/gen_reference.py): 7 validation documents, 700-token shards.
const (
	refDocsJSONL = "../../data/testdata/docs.jsonl"
	refSP1024    = "../../data/testdata/ref_sp1024"
	refSP8192    = "../../data/testdata/ref_sp8192"
	sp8192Model  = "../../tokenizer/testdata/fineweb_8192_bpe.model"
)

// dataCLI runs golf in-process with stdin as its standard input.
func dataCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// sameFiles fails unless dirs a and b hold the same fineweb_* files, byte
// for byte.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	list := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "fineweb_") {
				names = append(names, e.Name())
			}
		}
		return names
	}
	na, nb := list(a), list(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("%s holds %v, %s holds %v", a, na, b, nb)
	}
	for _, n := range na {
		x, _ := os.ReadFile(filepath.Join(a, n))
		y, _ := os.ReadFile(filepath.Join(b, n))
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs", n)
		}
	}
}

// tableHasRow reports whether some line of table starts with the
// whitespace-separated fields of row.
func tableHasRow(table, row string) bool {
	want := strings.Fields(row)
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) >= len(want) && slices.Equal(f[:len(want)], want) {
			return true
		}
	}
	return false
}

func TestDataBuildMatchesReference(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sp1024")
	code, stdout, stderr := dataCLI(t, "", "data", "build", "--out", out, "--val-docs", "7", "--shard-tokens", "700", refDocsJSONL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sameFiles(t, out, refSP1024)
	for _, want := range []string{"val 7 3407 5 9207 9204", "train 33 13335 20 36143 36121", "total 40 16742 25 45350 45325"} {
		if !tableHasRow(stdout, want) {
			t.Errorf("table lacks the row %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "data build:") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	// sp8192 from a model file: the manifest records the file's digest.
	out = filepath.Join(t.TempDir(), "sp8192")
	code, stdout, stderr = dataCLI(t, "", "data", "build", "--quiet", "--json", "--model", sp8192Model, "--out", out, "--val-docs", "7", "--shard-tokens", "700", refDocsJSONL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("--quiet printed %q", stderr)
	}
	sameFiles(t, out, refSP8192)
	var man data.Manifest
	if err := json.Unmarshal([]byte(stdout), &man); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	raw, _ := os.ReadFile(sp8192Model)
	sum := sha256.Sum256(raw)
	if man.Tokenizer.SHA256 != hex.EncodeToString(sum[:]) || man.Tokenizer.VocabSize != 8192 || man.Docs != 40 {
		t.Errorf("manifest tokenizer %+v, docs %d", man.Tokenizer, man.Docs)
	}
	disk, err := data.ReadManifest(filepath.Join(out, data.ManifestName))
	if err != nil || disk.Tokens != man.Tokens || len(disk.Train.Shards) != len(man.Train.Shards) {
		t.Errorf("manifest.json: %+v, %v", disk, err)
	}
}

func TestDataBuildStdinAndEmbedded(t *testing.T) {
	m := tokenizer.Default()
	out := filepath.Join(t.TempDir(), "stdin")
	in := "first document\nline two\n\n\nsecond document\n  \nthird\n"
	code, stdout, stderr := dataCLI(t, in, "data", "build", "--json", "--blank-line-docs", "--val-docs", "1", "--out", out, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var man data.Manifest
	if err := json.Unmarshal([]byte(stdout), &man); err != nil {
		t.Fatal(err)
	}
	if man.Val.Docs != 1 || man.Train.Docs != 2 || man.Inputs[0].Name != "-" || man.Inputs[0].Format != "text-blocks" {
		t.Errorf("manifest %+v", man)
	}
	train, err := data.ReadShard(filepath.Join(out, "fineweb_train_000000.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var want []uint16
	for _, doc := range []string{"second document", "third"} {
		want = append(want, 1)
		for _, id := range m.Encode(doc) {
			want = append(want, uint16(id))
		}
	}
	if !slices.Equal(train, want) {
		t.Errorf("train shard %v, want %v", train, want)
	}

	// No INPUT: the embedded corpus with its own validation split.
	out = filepath.Join(t.TempDir(), "embedded")
	code, stdout, stderr = dataCLI(t, "", "data", "build", "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Token counts from SentencePiece 0.1.97's Python encoder over the same
	// documents: sum of 1 + len(encode(text)) per split.
	if !tableHasRow(stdout, "val 24 417310 1") || !tableHasRow(stdout, "train 209 3581954 1") {
		t.Errorf("embedded build table:\n%s", stdout)
	}
	// Rebuilding needs --force.
	code, _, stderr = dataCLI(t, "", "data", "build", "--quiet", "--out", out)
	if code != 1 || !strings.Contains(stderr, "already holds a build") {
		t.Errorf("rebuild without --force: exit %d, %s", code, stderr)
	}
	code, _, stderr = dataCLI(t, "", "data", "build", "--quiet", "--force", "--shard-tokens", "1000000", "--out", out)
	if code != 0 {
		t.Fatalf("rebuild with --force: exit %d, %s", code, stderr)
	}
	if files, _ := data.TrainFiles(out); len(files) != 4 {
		t.Errorf("rebuild into 1M-token shards left %d train shards, want 4", len(files))
	}
}

func TestDataBuildErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"text\": \"ok\"}\n{\"text\": 3}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"data", "build", "x.txt"}, 2, "--out DIR is required"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o1"), "--shard-tokens", "0", "x"}, 2, "--shard-tokens 0"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o2"), "--val-docs", "-1", "x"}, 2, "--val-docs -1"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o3"), "-", "-"}, 2, "given twice"},
		{[]string{"data", "build", "--bogus"}, 2, "bogus"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o4"), "--val-docs", "0", filepath.Join(dir, "missing.txt")}, 1, "missing.txt"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o5"), "--val-docs", "1", bad}, 1, "bad.jsonl: line 2"},
		{[]string{"data", "build", "--out", filepath.Join(dir, "o6"), refDocsJSONL}, 1, "fewer than the 50000 validation documents"},
		{[]string{"data", "build", "--model", filepath.Join(dir, "none.model"), "--out", filepath.Join(dir, "o7")}, 1, "none.model"},
	} {
		code, stdout, stderr := dataCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, stderr, stdout, c.code, c.want)
		}
	}
	for _, o := range []string{"o4", "o5", "o6"} {
		if _, err := os.Stat(filepath.Join(dir, o)); !os.IsNotExist(err) {
			t.Errorf("a failed build left %s behind", o)
		}
	}
}

func TestDataInspect(t *testing.T) {
	m := tokenizer.Default()
	files, err := data.ValFiles(refSP1024)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := data.TrainFiles(refSP1024)
	files = append(files, train...)
	// The expected figures, from the shards and the byte table directly.
	type stats struct {
		tokens, docs, bytes int64
		maxID               int
	}
	var want []stats
	var total stats
	for _, f := range files {
		toks, err := data.ReadShard(f)
		if err != nil {
			t.Fatal(err)
		}
		s := stats{tokens: int64(len(toks)), bytes: m.ByteTable().CountTargets(toks), maxID: -1}
		for _, v := range toks {
			if v == 1 {
				s.docs++
			}
			s.maxID = max(s.maxID, int(v))
		}
		want = append(want, s)
		total.tokens += s.tokens
		total.docs += s.docs
		total.bytes += s.bytes
		total.maxID = max(total.maxID, s.maxID)
	}
	if total.docs != 40 || total.tokens != 16742 {
		t.Fatalf("reference totals %+v", total)
	}

	code, stdout, stderr := dataCLI(t, "", "data", "inspect", "--json", refSP1024)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep struct {
		Tokenizer string `json:"tokenizer"`
		VocabSize int    `json:"vocab_size"`
		Shards    []struct {
			File   string `json:"file"`
			Tokens int64  `json:"tokens"`
			Docs   int64  `json:"docs"`
			MaxID  int    `json:"max_id"`
			Bytes  int64  `json:"bytes"`
		} `json:"shards"`
		Total struct {
			Tokens, Docs, Bytes int64
			MaxID               int `json:"max_id"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(rep.Shards) != len(files) || rep.Tokenizer != "fineweb_1024_bpe.model" || rep.VocabSize != 1024 {
		t.Fatalf("report %+v", rep)
	}
	for i, s := range rep.Shards {
		w := want[i]
		if s.File != files[i] || s.Tokens != w.tokens || s.Docs != w.docs || s.Bytes != w.bytes || s.MaxID != w.maxID {
			t.Errorf("shard %d: %+v, want %+v", i, s, w)
		}
	}
	if rep.Total.Tokens != total.tokens || rep.Total.Docs != total.docs || rep.Total.Bytes != total.bytes || rep.Total.MaxID != total.maxID {
		t.Errorf("total %+v, want %+v", rep.Total, total)
	}

	// The table: one row per shard and a total row.
	code, stdout, _ = dataCLI(t, "", "data", "inspect", files[0], files[1])
	if code != 0 {
		t.Fatal(stdout)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[2], files[0]) || !strings.HasPrefix(lines[4], "total") {
		t.Fatalf("table:\n%s", stdout)
	}
	fields := strings.Fields(lines[4])
	if fields[1] != "1400" || fields[4] != strconv.FormatInt(want[0].bytes+want[1].bytes, 10) {
		t.Errorf("total row %q", lines[4])
	}
}

func TestDataInspectErrors(t *testing.T) {
	dir := t.TempDir()
	header := func(magic, version, count int32) []byte {
		b := make([]byte, 1024)
		binary.LittleEndian.PutUint32(b[0:], uint32(magic))
		binary.LittleEndian.PutUint32(b[4:], uint32(version))
		binary.LittleEndian.PutUint32(b[8:], uint32(count))
		return b
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := filepath.Join(dir, "good.bin")
	if err := data.WriteShard(good, []uint16{1, 5, 6}); err != nil {
		t.Fatal(err)
	}
	outOfVocab := filepath.Join(dir, "vocab.bin")
	data.WriteShard(outOfVocab, []uint16{1, 5, 6, 2000, 7})
	for _, c := range []struct {
		path string
		want []string
	}{
		{write("magic.bin", header(42, 1, 0)), []string{"wrong magic number 42", "20240520"}},
		{write("version.bin", header(20240520, 3, 0)), []string{"unsupported version 3"}},
		{write("truncated.bin", header(20240520, 1, 0)[:512]), []string{"truncated header", "512 bytes"}},
		{write("count.bin", append(header(20240520, 1, 10), make([]byte, 8)...)), []string{"token count 10", "1044 bytes", "1032"}},
		{write("negative.bin", header(20240520, 1, -3)), []string{"negative token count -3"}},
		{outOfVocab, []string{"token id 2000 at index 3", "1024 ids"}},
		{filepath.Join(dir, "missing.bin"), []string{"missing.bin", "no such file"}},
		{dir + "/empty-dir-that-is-not-there/", []string{"empty-dir-that-is-not-there"}},
	} {
		code, stdout, stderr := dataCLI(t, "", "data", "inspect", good, c.path)
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q", c.path, code, stdout)
		}
		for _, w := range append(c.want, filepath.Base(filepath.Clean(c.path))) {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", c.path, stderr, w)
			}
		}
	}
	// A directory without shards, and no arguments at all.
	if code, _, stderr := dataCLI(t, "", "data", "inspect", t.TempDir()); code != 1 || !strings.Contains(stderr, "holds no fineweb_val_*.bin") {
		t.Errorf("empty directory: exit %d, %s", code, stderr)
	}
	if code, _, stderr := dataCLI(t, "", "data", "inspect"); code != 2 || !strings.Contains(stderr, "no shard files") {
		t.Errorf("no arguments: exit %d, %s", code, stderr)
	}
	// With the sp8192 model the id 2000 is fine.
	if code, stdout, stderr := dataCLI(t, "", "data", "inspect", "--model", sp8192Model, outOfVocab); code != 0 || !strings.Contains(stdout, "2000") {
		t.Errorf("sp8192: exit %d, %s %s", code, stdout, stderr)
	}
}
