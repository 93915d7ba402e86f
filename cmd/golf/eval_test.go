package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// initCheckpoint writes a checkpoint of cfg's freshly initialised weights
// under dir/checkpoint, as a run over dataDir with sequences of seqLen would
// leave it.
func initCheckpoint(t *testing.T, cfg model.Config, dataDir, dir string, seqLen int) string {
	t.Helper()
	_, s, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	s.SeqLen, s.BatchTokens, s.ValTokens, s.EvalBatchTokens = seqLen, 4*seqLen, 8*seqLen, 4*seqLen
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{AccumSteps: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	w, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "checkpoint")
	err = train.SaveCheckpoint(ckpt, &train.Checkpoint{Config: cfg, Weights: w,
		State: train.TrainState{Settings: s, DataDir: dataDir, Tokenizer: tokenizer.DefaultModelName}})
	if err != nil {
		t.Fatal(err)
	}
	return ckpt
}

func evalJSON(t *testing.T, args ...string) evalOutput {
	t.Helper()
	code, stdout, stderr := runGolf(t, append(append([]string{"eval"}, args...), "--backend", "go", "--json")...)
	if code != 0 {
		t.Fatalf("golf eval %v: exit %d: %s", args, code, stderr)
	}
	var out evalOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("golf eval %v: %v\n%s", args, err, stdout)
	}
	return out
}

// A tiny checkpoint packed by golf pack and evaluated with golf eval
// --artifact: the artifact carries the model config and the run's
// evaluation settings, its folder (the checkpoint) says which data the run
// used, and the result is train.Evaluate of the dequantized weights.
func TestPackThenEvalArtifact(t *testing.T) {
	dataDir := trainShards(t)
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	const seqLen = 64
	ckpt := initCheckpoint(t, cfg, dataDir, t.TempDir(), seqLen)
	if code, _, stderr := runGolf(t, "pack", "--checkpoint", ckpt, "--scheme", "int8-ref"); code != 0 {
		t.Fatalf("golf pack: exit %d: %s", code, stderr)
	}
	artifact := filepath.Join(ckpt, "model.golf") // golf pack's default place

	fromCkpt := evalJSON(t, "--checkpoint", ckpt)
	fromArt := evalJSON(t, "--artifact", artifact)

	// golf sample reads the artifact as golf eval does: greedy text twice
	// the same, the prompt first.
	var samples []sampleOutput
	for range 2 {
		code, stdout, stderr := runGolf(t, "sample", "--artifact", artifact, "--backend", "go", "--json", "--temperature", "0", "--tokens", "5", "--prompt", "The Union")
		var s sampleOutput
		if err := json.Unmarshal([]byte(stdout), &s); code != 0 || err != nil {
			t.Fatalf("sample --artifact: exit %d, %v: %s", code, err, stderr)
		}
		samples = append(samples, s)
	}
	if samples[0].Text != samples[1].Text || !strings.HasPrefix(samples[0].Text, "The Union") || samples[0].Source != artifact {
		t.Fatalf("sample --artifact: %+v", samples)
	}
	for _, o := range []evalOutput{fromCkpt, fromArt} {
		// The run's own data and settings, with no flags: seq-len 64, the
		// whole validation split (the run's 8*64 cap is for its periodic
		// validation only).
		if o.Data != dataDir || o.SeqLen != seqLen || o.Tokens != 2048 {
			t.Fatalf("%s: data %s, seq-len %d, %d tokens; want %s, %d, %d", o.Source, o.Data, o.SeqLen, o.Tokens, dataDir, seqLen, 2048)
		}
	}

	// The same number, computed here from the artifact's dequantized weights.
	a, err := quant.ReadArtifact(artifact)
	if err != nil {
		t.Fatal(err)
	}
	files, err := data.ValFiles(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	val, err := data.LoadValidation(files, seqLen)
	if err != nil {
		t.Fatal(err)
	}
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := train.Evaluate(context.Background(), backend, cfg, a.Weights(), val, tokenizer.Default().ByteTable(),
		train.EvalOptions{SeqLen: seqLen, BatchRows: 4})
	if err != nil {
		t.Fatal(err)
	}
	if fromArt.ValLoss != want.ValLoss || fromArt.ValBPB != want.ValBPB || fromArt.Bytes != want.Bytes {
		t.Fatalf("golf eval --artifact: %v/%v over %d bytes; train.Evaluate of the artifact's weights: %v/%v over %d",
			fromArt.ValLoss, fromArt.ValBPB, fromArt.Bytes, want.ValLoss, want.ValBPB, want.Bytes)
	}
	// The reference scheme (int8 rows, fp16 for small tensors) barely moves
	// an initialised model's loss, but it does move it: the artifact really
	// was decoded, not the checkpoint read.
	if d := math.Abs(fromArt.ValLoss - fromCkpt.ValLoss); d > 0.01 || fromArt.ValLoss == fromCkpt.ValLoss {
		t.Fatalf("val_loss %v from the artifact, %v from the checkpoint", fromArt.ValLoss, fromCkpt.ValLoss)
	}

	// Copied away from its run, next to shards: those shards are its data;
	// flags override the stored settings.
	elsewhere := trainShards(t)
	moved := filepath.Join(elsewhere, "model.golf")
	b, err := os.ReadFile(artifact)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(moved, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o := evalJSON(t, "--artifact", moved, "--seq-len", "32", "--eval-stride", "16", "--val-tokens", "256")
	if o.Data != elsewhere || o.SeqLen != 32 || o.Stride != 16 || o.Tokens != 256 {
		t.Fatalf("moved artifact: data %s seq-len %d stride %d tokens %d", o.Data, o.SeqLen, o.Stride, o.Tokens)
	}
}

func TestEvalRefusesMismatches(t *testing.T) {
	dataDir := trainShards(t)
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.VocabSize = 512 // the embedded tokenizer has 1024 pieces
	ckpt := initCheckpoint(t, cfg, dataDir, t.TempDir(), 32)
	code, _, stderr := runGolf(t, "eval", "--checkpoint", ckpt, "--backend", "go")
	if code != 2 || !strings.Contains(stderr, "vocabulary of 512") || !strings.Contains(stderr, "--tokenizer") {
		t.Fatalf("vocabulary mismatch: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{
		{"eval", "--checkpoint", ckpt, "--seq-len", "32", "--eval-stride", "64"},
		{"eval", "--checkpoint", ckpt, "--batch-tokens", "-5"},
		{"eval", "--artifact", ckpt, "--checkpoint", ckpt},
		{"eval", "--checkpoint", ckpt, "stray"},
	} {
		if code, _, stderr := runGolf(t, args...); code != 2 {
			t.Errorf("golf %v: exit %d, want 2: %s", args, code, stderr)
		}
	}
	// Not an artifact: a clear error naming the file.
	notArtifact := filepath.Join(ckpt, "state.json")
	if code, _, stderr := runGolf(t, "eval", "--artifact", notArtifact); code != 1 || !strings.Contains(stderr, notArtifact) {
		t.Fatalf("eval of a non-artifact: exit %d: %s", code, stderr)
	}
}
