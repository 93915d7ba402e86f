package golf

import (
	"context"
	"math/rand/v2"
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

// shards writes a small training and validation shard of a token stream
// with structure (each token mostly follows from the previous one).
func shards(t *testing.T) string {
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
	if err := data.WriteShard(filepath.Join(dir, "fineweb_train_000000.bin"), stream(20000)); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteShard(filepath.Join(dir, "fineweb_val_000000.bin"), stream(1025)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// One call packs a checkpoint (calibrating GPTQ on its run's shards), one
// evaluates the artifact; the artifact's evaluation is Evaluate on its
// dequantized weights, and an artifact without a model is refused clearly.
func TestPackCheckpointThenEvaluateArtifact(t *testing.T) {
	dataDir := shards(t)
	cfg, s, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	s.SeqLen, s.ValTokens, s.EvalBatchTokens = 64, 512, 256
	w, err := model.InitWeights(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "checkpoint")
	if err := train.SaveCheckpoint(ckpt, &train.Checkpoint{Config: cfg, Weights: w,
		State: train.TrainState{Settings: s, DataDir: dataDir, Tokenizer: tokenizer.DefaultModelName}}); err != nil {
		t.Fatal(err)
	}
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scheme, _ := quant.SchemeByName("gptq-int6")
	packed, err := PackCheckpoint(ctx, ckpt, scheme, PackOptions{Backend: backend, CalibrationTokens: 1024, Pack: quant.PackOptions{Codec: "fse"}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.golf")
	if err := packed.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	opts := EvalOptions{DataDir: dataDir, Backend: backend, Stride: -1, ValTokens: -1}
	got, err := EvaluateArtifact(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Evaluate(ctx, cfg, packed.Quantized.Dequantize(), CheckpointMeta(&train.Checkpoint{Config: cfg, State: train.TrainState{Settings: s}}, "").Settings, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.ValBPB != want.ValBPB || got.SeqLen != 64 || got.ValTokens != 512 || got.Tokens != 512 {
		t.Fatalf("artifact: %+v, its weights: %+v", got, want)
	}
	float, err := Evaluate(ctx, cfg, w, quant.EvalSettings{SeqLen: 64, ValTokens: 512}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.ValBPB - float.ValBPB; d < -0.05 || d > 0.05 {
		t.Fatalf("int6 round trip moved val_bpb by %.4f (%.4f -> %.4f)", d, float.ValBPB, got.ValBPB)
	}
	// Bare tensors (no model config) cannot be evaluated.
	bare, _, err := quant.Pack(ctx, quant.Meta{}, packed.Quantized, quant.PackOptions{Codec: "store"})
	if err != nil {
		t.Fatal(err)
	}
	barePath := filepath.Join(t.TempDir(), "bare.golf")
	if err := quant.WriteArtifact(barePath, bare); err != nil {
		t.Fatal(err)
	}
	if _, err := EvaluateArtifact(ctx, barePath, opts); err == nil || !strings.Contains(err.Error(), "without a model config") || !strings.Contains(err.Error(), barePath) {
		t.Fatalf("bare artifact: %v", err)
	}
}
