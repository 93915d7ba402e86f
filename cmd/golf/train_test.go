package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/train"
)

// trainShards writes a small shard pair of synthetic tokens with bigram
// structure so that a few steps already learn something.
func trainShards(t *testing.T) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	stream := func(n int) []uint16 {
		s := make([]uint16, n)
		for i := 1; i < n; i++ {
			if rng.IntN(8) == 0 {
				s[i] = uint16(rng.IntN(1024))
			} else {
				s[i] = uint16((int(s[i-1])*5 + 3) % 1024)
			}
		}
		return s
	}
	dir := t.TempDir()
	if err := data.WriteShard(filepath.Join(dir, "fineweb_train_000000.bin"), stream(40000)); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteShard(filepath.Join(dir, "fineweb_val_000000.bin"), stream(2049)); err != nil {
		t.Fatal(err)
	}
	return dir
}

var smallTrainFlags = []string{"--backend", "go", "--batch-tokens", "512", "--seq-len", "64", "--iterations", "4", "--max-seconds", "0",
	"--warmdown", "2", "--warmup-steps", "1", "--val-every", "0", "--val-tokens", "1024", "--quiet"}

// golf train then golf eval on its checkpoint: the eval reproduces the final
// val_loss exactly, from the weights alone.
func TestTrainThenEval(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny model")
	}
	dataDir := trainShards(t)
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runGolf(t, append([]string{"train", "--data", dataDir, "--out", out, "--json"}, smallTrainFlags...)...)
	if code != 0 {
		t.Fatalf("golf train exit %d: %s", code, stderr)
	}
	var res train.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if res.Steps != 4 || res.ValBPB <= 0 || res.Preset != "tiny" || res.Settings.BatchTokens != 512 {
		t.Fatalf("result %+v", res)
	}
	for _, line := range []string{"step:4/4 train_loss:", "step:4/4 val_loss:", "backend:"} {
		if !strings.Contains(stderr, line) {
			t.Errorf("log (stderr with --json) lacks %q", line)
		}
	}
	for _, f := range []string{"results.json", "train.log", "loss.png", "checkpoint/model.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%v", err)
		}
	}

	code, stdout, stderr = runGolf(t, "eval", "--checkpoint", filepath.Join(out, "checkpoint"), "--data", dataDir, "--backend", "go", "--json")
	if code != 0 {
		t.Fatalf("golf eval exit %d: %s", code, stderr)
	}
	var ev train.EvalResult
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	// Both over the whole validation split (--val-tokens caps periodic
	// validation only).
	if ev.ValLoss != res.ValLoss || ev.ValBPB != res.ValBPB || ev.Tokens != 2048 || res.ValTokens != 2048 || res.PeriodicValTokens != 1024 {
		t.Fatalf("eval %v/%v over %d tokens, training ended with %v/%v", ev.ValLoss, ev.ValBPB, ev.Tokens, res.ValLoss, res.ValBPB)
	}

	// A sliding window scores the same tokens with more context.
	code, stdout, stderr = runGolf(t, "eval", "--checkpoint", filepath.Join(out, "checkpoint"), "--data", dataDir, "--backend", "go", "--eval-stride", "16")
	if code != 0 || !strings.Contains(stdout, "val_bpb") || !strings.Contains(stdout, "2048") {
		t.Fatalf("sliding eval exit %d: %s%s", code, stdout, stderr)
	}

	// Resuming the finished run with a longer schedule continues from step 4,
	// by default in the run's own directory.
	code, stdout, stderr = runGolf(t, "train", "--resume", filepath.Join(out, "checkpoint"), "--data", dataDir,
		"--iterations", "5", "--backend", "go", "--quiet")
	if code != 0 || !strings.Contains(stdout, "5 (iterations)") || !strings.Contains(stdout, "resumed:") {
		t.Fatalf("resume exit %d:\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil || json.Unmarshal(b, &res) != nil || res.Steps != 5 || len(res.History.Train) != 5 {
		t.Fatalf("the resumed run's results.json in %s: %v, %d steps", out, err, res.Steps)
	}
	log, _ := os.ReadFile(filepath.Join(out, "train.log"))
	if !strings.Contains(string(log), "step:4/4 val_loss:") || !strings.Contains(string(log), "step:5/5 val_loss:") {
		t.Fatalf("train.log does not hold both parts of the run:\n%s", log)
	}
	// --preset must agree with the run being resumed.
	if code, _, stderr := runGolf(t, "train", "--resume", filepath.Join(out, "checkpoint"), "--preset", "baseline"); code != 2 {
		t.Fatalf("resume with another preset: exit %d: %s", code, stderr)
	}
}

func TestTrainBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"train", "--preset", "huge"},
		{"train", "--batch-tokens", "100", "--seq-len", "64"},
		{"train", "--muon-dtype", "int8"},
		{"train", "--muon-dtype", "int8", "--storage-dtype", "f32"}, // a later valid flag keeps the error
		{"train", "--storage-dtype", "fp8"},
		{"train", "--qat-bits", "12"},
		{"train", "--qat-bits", "6", "--qat-start", "1.5"},
		{"train", "extra"},
		{"eval"},
		{"eval", "--checkpoint", "a", "--artifact", "b"},
		{"bench", "train", "--steps", "0"},
	} {
		if code, _, stderr := runGolf(t, args...); code != 2 {
			t.Errorf("golf %v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	code, _, stderr := runGolf(t, "eval", "--checkpoint", filepath.Join(t.TempDir(), "missing"))
	if code != 1 || !strings.Contains(stderr, "missing") {
		t.Errorf("eval of a missing checkpoint: exit %d, %s", code, stderr)
	}
}

func TestBenchTrainSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs training steps")
	}
	code, stdout, stderr := runGolf(t, "bench", "train", "--preset", "tiny", "--steps", "1", "--batch-tokens", "256", "--seq-len", "64", "--backend", "go", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep benchTrainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Results) != 1 {
		t.Fatalf("%v: %s", err, stdout)
	}
	r := rep.Results[0]
	if r.StepMs <= 0 || r.CompileMs <= 0 || r.BatchTokens != 256 || r.TokensPerS <= 0 {
		t.Fatalf("bench result %+v", r)
	}
	if d := r.TokensPerS - 256/(r.StepMs/1000); d*d > 1e-6 {
		t.Fatalf("tokens/s %v inconsistent with %v ms/step", r.TokensPerS, r.StepMs)
	}
}
