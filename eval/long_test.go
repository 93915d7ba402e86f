package eval_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// TestLongTTTImprovesTiny trains a preset on the embedded corpus through
// the library (train.Run) and checks that score-first test-time training
// lowers val_bpb against the same checkpoint scored without it. It takes
// tens of minutes on two CPU cores, so it runs only with GOLF_LONG_TTT set:
//
//	GOLF_LONG_TTT=1 [GOLF_LONG_PRESET=tiny-record] [GOLF_LONG_STEPS=60] [GOLF_LONG_TTT_LR=8e-5] \
//	    go test ./eval -run TestLongTTTImprovesTiny -v -timeout 3h
func TestLongTTTImprovesTiny(t *testing.T) {
	if os.Getenv("GOLF_LONG_TTT") == "" {
		t.Skip("set GOLF_LONG_TTT=1: trains a tiny model and evaluates it with TTT (tens of minutes)")
	}
	preset := envOr("GOLF_LONG_PRESET", "tiny")
	steps, err := strconv.Atoi(envOr("GOLF_LONG_STEPS", "60"))
	if err != nil {
		t.Fatal(err)
	}
	lr, err := strconv.ParseFloat(envOr("GOLF_LONG_TTT_LR", "8e-5"), 64)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg, s, err := train.PresetSettings(preset)
	if err != nil {
		t.Fatal(err)
	}
	s.Iterations, s.MaxSeconds, s.ValEvery = steps, 0, 0
	out := t.TempDir()
	tok := tokenizer.Default()
	res, err := train.Run(ctx, train.Options{Model: cfg, Settings: s, CacheDir: filepath.Join(out, "data"), Tokenizer: tok, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := train.LoadCheckpoint(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	files, err := data.ValFiles(filepath.Join(out, "data"))
	if err != nil {
		t.Fatal(err)
	}
	val, err := data.LoadValidation(files, s.SeqLen)
	if err != nil {
		t.Fatal(err)
	}
	val = val[:s.ValTokens+1]
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := eval.New(backend, ck.Config, ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	bytes := eval.TableBytes(tok.ByteTable())
	plain, err := ev.Evaluate(ctx, val, bytes, eval.Options{SeqLen: s.SeqLen, BOS: tok.BOS()})
	if err != nil {
		t.Fatal(err)
	}
	set := eval.RecordTTT()
	set.LR = lr
	ttt, err := ev.Evaluate(ctx, val, bytes, eval.Options{SeqLen: s.SeqLen, BOS: tok.BOS(), TTT: &set})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, %d steps: val_bpb %.5f plain (%v), %.5f with TTT lr %g (%v): delta %+.5f",
		preset, steps, plain.ValBPB, plain.Duration, ttt.ValBPB, lr, ttt.Duration, ttt.ValBPB-plain.ValBPB)
	if ttt.ValBPB >= plain.ValBPB {
		t.Errorf("TTT val_bpb %.5f is not below the plain %.5f", ttt.ValBPB, plain.ValBPB)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
