package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// What a new user does with their own sp8192 data, with no flag beyond
// the ones that say what to do: build shards, look at them, train on them
// with --data alone, fail to overwrite the run, resume it with --resume
// alone, evaluate and sample its checkpoint.
func TestWorkflowOwnSP8192Data(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small model")
	}
	work := t.TempDir()
	// A copy of the tokenizer in a folder of the user's.
	model := filepath.Join(work, "fineweb_8192_bpe.model")
	raw, err := os.ReadFile(sp8192Model)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(model, raw, 0o644)
	shards := filepath.Join(work, "shards")
	if code, _, stderr := runGolf(t, "data", "build", "--quiet", "--model", model, "--out", shards, "--val-docs", "7", refDocsJSONL); code != 0 {
		t.Fatalf("data build: %s", stderr)
	}

	// data inspect --show: the manifest's tokenizer decodes the documents.
	code, stdout, stderr := runGolf(t, "data", "inspect", "--json", "--show", "2", shards)
	if code != 0 {
		t.Fatalf("data inspect: %s", stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	docs := refDocTexts(t)
	sp, err := tokenizer.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	// What a document reads as after encoding (normalization trims and
	// folds whitespace).
	roundTrip := func(s string) string { return sp.Decode(sp.Encode(s)) }
	if rep.VocabSize != 8192 || len(rep.Documents) < 2 || rep.Documents[0].Text != roundTrip(docs[0]) || rep.Documents[1].Text != roundTrip(docs[1]) {
		t.Fatalf("inspect: vocabulary %d, documents %.200v; want sp8192 and %.80q, %.80q", rep.VocabSize, rep.Documents, docs[0], docs[1])
	}

	// golf train --data DIR: the model's vocabulary is the tokenizer's.
	run := filepath.Join(work, "run")
	flags := []string{"--backend", "go", "--batch-tokens", "512", "--seq-len", "64", "--max-seconds", "0",
		"--warmdown", "1", "--warmup-steps", "0", "--val-every", "0", "--quiet"}
	code, stdout, stderr = runGolf(t, append([]string{"train", "--data", shards, "--out", run, "--iterations", "2", "--json"}, flags...)...)
	if code != 0 {
		t.Fatalf("train --data: %s", stderr)
	}
	var res train.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Model.VocabSize != 8192 {
		t.Fatalf("train: vocabulary %d (%v), want 8192", res.Model.VocabSize, err)
	}
	if !strings.Contains(stderr, "tokenizer:"+model) {
		t.Errorf("the log does not name the manifest's tokenizer:\n%s", stderr)
	}

	// The same --out again is refused, naming what to do.
	code, _, stderr = runGolf(t, append([]string{"train", "--data", shards, "--out", run, "--iterations", "2"}, flags...)...)
	if code == 0 || !strings.Contains(stderr, "already holds a run") {
		t.Fatalf("second train into %s: exit %d: %s", run, code, stderr)
	}

	// --resume alone continues on the run's own data and tokenizer; other
	// data is refused without --allow-data-change.
	ckpt := filepath.Join(run, "checkpoint")
	code, _, stderr = runGolf(t, "train", "--resume", ckpt, "--iterations", "3", "--backend", "go", "--quiet")
	if code != 0 {
		t.Fatalf("train --resume: %s", stderr)
	}
	code, _, stderr = runGolf(t, "train", "--resume", ckpt, "--iterations", "4", "--data", refSP1024, "--backend", "go", "--quiet")
	if code == 0 || !strings.Contains(stderr, "--allow-data-change") {
		t.Fatalf("resume on other data: exit %d: %s", code, stderr)
	}
	log, _ := os.ReadFile(filepath.Join(run, "train.log"))
	abs, _ := filepath.Abs(shards)
	if strings.Count(string(log), "data:"+abs+" ") != 2 || !strings.Contains(string(log), "step:3/3 val_loss:") {
		t.Fatalf("train.log of the run and its resume:\n%s", log)
	}

	// golf eval --checkpoint alone: the run's data and tokenizer.
	code, stdout, stderr = runGolf(t, "eval", "--checkpoint", ckpt, "--backend", "go", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("eval: %s", stderr)
	}
	var ev evalOutput
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil || ev.Data != abs || ev.ValBPB <= 0 {
		t.Fatalf("eval: %+v %v", ev, err)
	}

	// golf sample: greedy text is the same twice; seeded text repeats with
	// its seed.
	sample := func(args ...string) sampleOutput {
		t.Helper()
		code, stdout, stderr := runGolf(t, append([]string{"sample", "--checkpoint", ckpt, "--backend", "go", "--json", "--tokens", "8"}, args...)...)
		if code != 0 {
			t.Fatalf("sample %v: %s", args, stderr)
		}
		var s sampleOutput
		if err := json.Unmarshal([]byte(stdout), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	g1, g2 := sample("--temperature", "0", "--prompt", "The"), sample("--temperature", "0", "--prompt", "The")
	if g1.Text != g2.Text || !strings.HasPrefix(g1.Text, "The") || len(g1.Tokens) == 0 || g1.Tokenizer != model {
		t.Fatalf("greedy samples %+v, %+v", g1, g2)
	}
	s1, s2 := sample("--seed", "4"), sample("--seed", "4")
	if s1.Text != s2.Text || len(s1.Tokens) == 0 {
		t.Fatalf("seeded samples %q, %q", s1.Text, s2.Text)
	}
	code, stdout, _ = runGolf(t, "sample", "--checkpoint", ckpt, "--backend", "go", "--tokens", "4", "--quiet", "--prompt", "Congress")
	if code != 0 || !strings.HasPrefix(stdout, "Congress") {
		t.Fatalf("sample text: exit %d %q", code, stdout)
	}
}

// refDocTexts returns the texts of data/testdata/docs.jsonl.
func refDocTexts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(refDocsJSONL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Text)
	}
	return out
}
