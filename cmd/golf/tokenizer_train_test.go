package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// trainRef reads one case of tokenizer/spmtrain/testdata/train/reference.json.gz.
func trainRef(t *testing.T, name string) (modelSHA, vocabSHA string) {
	t.Helper()
	f, err := os.Open("../../tokenizer/spmtrain/testdata/train/reference.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Name  string `json:"name"`
			Model string `json:"model_sha256"`
			Vocab string `json:"vocab_sha256"`
		} `json:"cases"`
	}
	if err := json.NewDecoder(zr).Decode(&ref); err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		if c.Name == name {
			return c.Model, c.Vocab
		}
	}
	t.Fatalf("no reference case %s", name)
	return "", ""
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestTokenizerTrainMatchesSPMTrain trains on the embedded corpus's
// training documents, one per line as spm_train reads a file, and checks
// that the .model and .vocab files are spm_train's, byte for byte (the
// names spm_train recorded are given with --record-input and
// --model-prefix).
func TestTokenizerTrainMatchesSPMTrain(t *testing.T) {
	_, train, err := corpus.Split()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "corpus.txt")
	var b strings.Builder
	for _, d := range train {
		b.WriteString(d.Text + "\n")
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sp1024.model")
	code, stdout, stderr := dataCLI(t, "", "tokenizer", "train", "--vocab", "1024", "--max-sentence-length", "300000",
		"--record-input", "corpus.txt", "--model-prefix", "corpus_1024", "--out", out, "--quiet", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !tableHasRow(stdout, "merges 701") {
		t.Errorf("summary lacks the merge count:\n%s", stdout)
	}
	model, vocab := trainRef(t, "corpus_1024")
	if got := fileSHA(t, out); got != model {
		t.Errorf(".model differs from spm_train's")
	}
	if got := fileSHA(t, filepath.Join(dir, "sp1024.vocab")); got != vocab {
		t.Errorf(".vocab differs from spm_train's")
	}
	m, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.VocabSize() != 1024 || m.BOS() != 1 || m.PAD() != 0 || m.UNK() != 3 {
		t.Errorf("vocabulary %d, bos %d pad %d unk %d", m.VocabSize(), m.BOS(), m.PAD(), m.UNK())
	}
	// A second run refuses to replace the files without --force.
	if code, _, stderr := dataCLI(t, "", "tokenizer", "train", "--vocab", "1024", "--out", out, in); code == 0 || !strings.Contains(stderr, "--force") {
		t.Errorf("exit %d, stderr %q: want a refusal naming --force", code, stderr)
	}
}

// TestTokenizerTrainCaseOpsJSONL trains a CaseOps model on JSONL documents
// (one sentence each, the challenge's clean-up) and checks the operators'
// ids and that the text is transformed.
func TestTokenizerTrainCaseOpsJSONL(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "docs.jsonl")
	var b strings.Builder
	words := []string{"The", "NASA", "launch", "McDonald", "iPhone", "report", "Senate", "\x00nul", "  padded  "}
	for i := range 400 {
		line, _ := json.Marshal(map[string]string{"text": strings.Repeat(words[i%len(words)]+" ", 1+i%7) + words[(i*7)%len(words)]})
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "caseops.model")
	code, stdout, stderr := dataCLI(t, "", "tokenizer", "train", "--vocab", "400", "--caseops", "--out", out, "--json", "--quiet", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if rep.Sentences != "docs" || !rep.CaseOps || rep.Stats.Sentences != 400 {
		t.Errorf("report %+v", rep)
	}
	m, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasCaseOps() || m.PieceID(string(tokenizer.CaseOpsTitle)) != 4 || m.PieceID(string(tokenizer.CaseOpsEscape)) != 7 {
		t.Errorf("operators not at ids 4-7")
	}
	// Capitals were transformed away: no piece holds an ASCII capital.
	for id := range m.VocabSize() {
		p := m.Piece(id)
		if m.PieceType(id) == tokenizer.Normal && strings.ContainsAny(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("piece %d %q holds a capital", id, p)
		}
	}
}

func TestTokenizerTrainErrors(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "x.txt")
	os.WriteFile(in, []byte("hello world\n"), 0o644)
	long := filepath.Join(dir, "long.txt")
	os.WriteFile(long, []byte(strings.Repeat("word ", 2000)+"\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{in}, 2, "--vocab"},
		{[]string{"--vocab", "100"}, 2, "no INPUT"},
		{[]string{"--vocab", "1000", filepath.Join(dir, "missing.txt")}, 1, "missing.txt"},
		{[]string{"--vocab", "100", "--out", filepath.Join(dir, "a.model"), in}, 1, "smaller than the alphabet"},
		{[]string{"--vocab", "1000", "--out", filepath.Join(dir, "b.model"), long}, 1, "longer than the maximum sentence length"},
		{[]string{"--vocab", "1000", "--character-coverage", "0.5", in}, 1, "coverage"},
		{[]string{"--vocab", "1000", "--byte-fallback=maybe", in}, 2, "byte_fallback"},
		{[]string{"--vocab", "1000", "--sentences", "words", in}, 2, "--sentences"},
	} {
		code, _, stderr := dataCLI(t, "", append([]string{"tokenizer", "train"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, c.code, c.want)
		}
	}
	for _, name := range []string{"a.model", "a.vocab", "b.model"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("a failed run left %s", name)
		}
	}
}

func TestPythonStrip(t *testing.T) {
	for in, want := range map[string]string{
		"  a b  ": "a b", "\x1c\x1dx\x1e\x1f": "x", "\u3000\u00a0y\u2028\u205f": "y", "\u200bz\u200b": "\u200bz\u200b",
		"": "", " \t\n ": "", "\u180ek": "\u180ek",
	} {
		if got := pythonStrip(in); got != want {
			t.Errorf("pythonStrip(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCaseOpsWorkflow runs the record's data path end to end: train a
// CaseOps tokenizer, build shards with the validation byte sidecar,
// inspect them (bytes from the sidecar), and evaluate (val_bpb over the
// sidecar's bytes: the original text's).
func TestCaseOpsWorkflow(t *testing.T) {
	docs, err := corpus.Documents()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "docs.jsonl")
	var b strings.Builder
	var valText, valTrimmed int
	for i, d := range docs[:60] {
		line, _ := json.Marshal(map[string]string{"text": d.Text})
		b.Write(line)
		b.WriteByte('\n')
		if i < 10 {
			valText += len(d.Text)
			valTrimmed += len(strings.TrimSpace(d.Text))
		}
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "caseops.model")
	if code, _, stderr := dataCLI(t, "", "tokenizer", "train", "--vocab", "1024", "--caseops", "--max-sentence-length", "300000",
		"--out", model, "--quiet", in); code != 0 {
		t.Fatalf("tokenizer train: exit %d: %s", code, stderr)
	}
	shards := filepath.Join(dir, "shards")
	code, stdout, stderr := dataCLI(t, "", "data", "build", "--model", model, "--caseops", "--val-docs", "10", "--out", shards, "--json", "--quiet", in)
	if code != 0 {
		t.Fatalf("data build: exit %d: %s", code, stderr)
	}
	var man data.Manifest
	if err := json.Unmarshal([]byte(stdout), &man); err != nil {
		t.Fatal(err)
	}
	// The sidecar adds up to the validation text's UTF-8 length, less the
	// spaces that normalization drops at the ends of some documents (no
	// token stands for them, as with the byte table).
	if man.Val.TargetBytes != int64(valTrimmed) || man.Val.TextBytes != int64(valText) || len(man.Val.ByteShards) != 1 {
		t.Fatalf("val target bytes %d, text bytes %d, want %d and %d; byte shards %v", man.Val.TargetBytes, man.Val.TextBytes, valTrimmed, valText, man.Val.ByteShards)
	}
	code, stdout, stderr = dataCLI(t, "", "data", "inspect", "--model", model, shards)
	if code != 0 || !tableHasRow(stdout, "total") || !strings.Contains(stdout, "sidecar") || !strings.Contains(stdout, "come from it") {
		t.Fatalf("data inspect: exit %d:\n%s%s", code, stdout, stderr)
	}
	// Evaluate an untrained tiny model on the shards: the bytes are the
	// sidecar's over the scored targets.
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	const seqLen = 64
	ckpt := initCheckpoint(t, cfg, shards, t.TempDir(), seqLen)
	code, stdout, stderr = runGolf(t, "eval", "--checkpoint", ckpt, "--tokenizer", model, "--backend", "go", "--json")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "val_bpb:byte_sidecar:enabled") {
		t.Errorf("eval does not say it uses the sidecar: %s", stderr)
	}
	var out evalOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	files, _ := data.ValFiles(shards)
	val, err := data.LoadValidation(files, seqLen)
	if err != nil {
		t.Fatal(err)
	}
	side, err := data.LoadValidationBytes(shards, len(val))
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for p := 1; p <= int(out.Tokens); p++ {
		want += int64(side[p])
	}
	if out.ByteSource != "byte sidecar" || out.Bytes != want {
		t.Errorf("eval bytes %d from %q, the sidecar's targets hold %d", out.Bytes, out.ByteSource, want)
	}
}
