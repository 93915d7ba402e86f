package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/model"
)

// writeShards writes a small train/val shard pair of learnable synthetic
// tokens (see toyStream) over the vocabulary.
func writeShards(t testing.TB, vocab int) string {
	t.Helper()
	dir := t.TempDir()
	if err := data.WriteShard(filepath.Join(dir, "fineweb_train_000000.bin"), toyStream(60000, vocab, 31)); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteShard(filepath.Join(dir, "fineweb_val_000000.bin"), toyStream(4097, vocab, 32)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// smallModel is the tiny preset's GPT narrowed to 2 blocks of width 64, so
// that the run tests compile and step in seconds.
func smallModel(t testing.TB) model.Config {
	t.Helper()
	cfg, err := model.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumLayers, cfg.ModelDim, cfg.NumHeads, cfg.NumKVHeads, cfg.MLPHidden = 2, 64, 2, 1, 128
	return cfg
}

// smallRun returns options for a seconds-long, step-counted (no wall-clock
// cap: reproducible) run of the small model.
func smallRun(t *testing.T, dataDir string) Options {
	t.Helper()
	_, s, err := PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallModel(t)
	s.BatchTokens, s.SeqLen, s.MicroBatchTokens = 512, 64, 256
	s.Iterations, s.Warmdown, s.WarmupSteps, s.MaxSeconds = 6, 3, 1, 0
	s.ValEvery, s.LogEvery, s.ValTokens, s.EvalBatchTokens = 3, 1, 1024, 512
	return Options{Settings: s, Model: cfg, DataDir: dataDir, Backend: goBackend(t), OutDir: t.TempDir()}
}

func readWeights(t *testing.T, dir string) model.Weights {
	t.Helper()
	ck, err := LoadCheckpoint(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return ck.Weights
}

// A run stopped after k steps and resumed from its checkpoint continues the
// same loss curve and ends with the same weights as an uninterrupted run.
func TestRunResumeIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny model three times")
	}
	dir := writeShards(t, 1024)
	ctx := context.Background()

	straight := smallRun(t, dir)
	want, err := Run(ctx, straight)
	if err != nil {
		t.Fatal(err)
	}

	first := smallRun(t, dir)
	first.MaxSteps = 4
	half, err := Run(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if half.Steps != 4 || half.StoppedBy != "max_steps" {
		t.Fatalf("first half stopped at %d (%s), want 4 (max_steps)", half.Steps, half.StoppedBy)
	}
	second := smallRun(t, dir)
	second.Resume = filepath.Join(first.OutDir, "checkpoint")
	got, err := Run(ctx, second)
	if err != nil {
		t.Fatal(err)
	}

	if len(got.History.Train) != 6 || len(want.History.Train) != 6 {
		t.Fatalf("train points: %d resumed, %d straight, want 6", len(got.History.Train), len(want.History.Train))
	}
	for i := range want.History.Train {
		g, w := got.History.Train[i], want.History.Train[i]
		if g.Loss != w.Loss || g.LRScale != w.LRScale || g.Step != w.Step {
			t.Fatalf("step %d: resumed %+v, straight %+v", i+1, g, w)
		}
	}
	// Evaluations at steps 0, 3 and 6 (4 ends the first half: not repeated).
	if len(got.History.Val) != len(want.History.Val)+1 {
		t.Fatalf("val points: %d resumed, %d straight", len(got.History.Val), len(want.History.Val))
	}
	if got.ValLoss != want.ValLoss || got.ValBPB != want.ValBPB {
		t.Fatalf("final val: resumed %v/%v, straight %v/%v", got.ValLoss, got.ValBPB, want.ValLoss, want.ValBPB)
	}
	if d := maxWeightDiff(readWeights(t, straight.OutDir), readWeights(t, second.OutDir)); d != 0 {
		t.Fatalf("final weights differ by %g", d)
	}

	// The loss falls: the first logged loss is about ln(vocab), the curve
	// ends lower (checked on the straight run's validation too).
	first0, last := want.History.Train[0].Loss, want.History.Train[5].Loss
	if !(last < first0) || !(want.History.Val[len(want.History.Val)-1].ValLoss < want.History.Val[0].ValLoss) {
		t.Fatalf("loss did not decrease: train %.4f -> %.4f, val %+v", first0, last, want.History.Val)
	}
	if math.Abs(want.History.Val[0].ValLoss-math.Log(1024)) > 0.5 {
		t.Fatalf("initial val_loss %.3f, want about ln 1024 = 6.93", want.History.Val[0].ValLoss)
	}

	// The run directory holds the documented files.
	for _, f := range []string{"train.log", "results.json", "loss.png", "checkpoint/config.json", "checkpoint/model.bin", "checkpoint/optimizer.bin", "checkpoint/state.json"} {
		if _, err := os.Stat(filepath.Join(straight.OutDir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(straight.OutDir, "train.log"))
	for _, line := range []string{"step:1/6 train_loss:", "step:6/6 val_loss:", "warmup_step:1/1", "step:0/6 val_loss:"} {
		if !strings.Contains(string(log), line) {
			t.Errorf("train.log lacks %q", line)
		}
	}
	var res Result
	b, _ := os.ReadFile(filepath.Join(straight.OutDir, "results.json"))
	if err := json.Unmarshal(b, &res); err != nil || res.ValBPB != want.ValBPB || res.Steps != 6 {
		t.Fatalf("results.json: %v %+v", err, res)
	}
}

// A diverging run stops with an error naming the step, and the checkpoint
// of the last good step stays as it was.
func TestRunStopsOnNaN(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny model")
	}
	opts := smallRun(t, writeShards(t, 1024))
	opts.WarmupSteps, opts.ValEvery, opts.CheckpointEvery = 0, 0, 1
	opts.Optimizer.EmbedLR, opts.Optimizer.ScalarLR, opts.Optimizer.MatrixLR = 1e30, 1e30, 1e30
	_, err := Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "step ") || !strings.Contains(err.Error(), "training loss is") {
		t.Fatalf("err = %v, want a non-finite loss error naming the step", err)
	}
	ck, cerr := LoadCheckpoint(filepath.Join(opts.OutDir, "checkpoint"))
	if cerr != nil {
		t.Fatalf("the last good checkpoint is unreadable: %v", cerr)
	}
	if !strings.Contains(err.Error(), "step "+itoa(ck.State.Step+1)+":") {
		t.Fatalf("checkpoint is at step %d but the error is %v", ck.State.Step, err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// Under a wall-clock cap the run stops on time, not at Iterations, and the
// learning rate falls towards zero as the clock runs out (the reference's
// lr_mul); a cap of zero steps' worth still runs one step and evaluates.
func TestRunWallClockCap(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model")
	}
	opts := smallRun(t, writeShards(t, 1024))
	opts.Iterations, opts.Warmdown, opts.ValEvery, opts.MaxSeconds = 100000, 100000, 0, 1.5
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoppedBy != "wallclock" || res.Steps < 1 || res.Steps >= opts.Iterations || res.TrainTimeMs < 1500 {
		t.Fatalf("stopped by %s after %d steps, %.0f ms", res.StoppedBy, res.Steps, res.TrainTimeMs)
	}
	// A warm-down longer than the run: every step after the first is inside
	// it, at remaining budget / estimated warm-down time (< 1), falling
	// towards 0 as the clock runs out.
	tr := res.History.Train
	for i, p := range tr {
		if p.LRScale < 0 || p.LRScale > 1 || (i > 0 && p.LRScale >= 1) {
			t.Fatalf("step %d: lr scale %v", p.Step, p.LRScale)
		}
	}
	if len(tr) > 2 && !(tr[len(tr)-1].LRScale < tr[1].LRScale) {
		t.Fatalf("lr scale did not fall: %v at step 2, %v at the end", tr[1].LRScale, tr[len(tr)-1].LRScale)
	}
	log, _ := os.ReadFile(filepath.Join(opts.OutDir, "train.log"))
	want := "stopping_early: wallclock_cap train_time:"
	if !strings.Contains(string(log), want) || !strings.Contains(string(log), "max_wallclock_seconds:1.500") {
		t.Fatalf("train.log lacks %q:\n%s", want, log)
	}
}

func TestRunRejectsBadSettings(t *testing.T) {
	opts := smallRun(t, t.TempDir())
	opts.BatchTokens = 100 // not a multiple of seq-len 64
	if _, err := Run(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "batch-tokens") {
		t.Fatalf("err = %v", err)
	}
	opts = smallRun(t, t.TempDir()) // an empty data directory
	if _, err := Run(context.Background(), opts); err == nil {
		t.Fatal("a run without shards succeeded")
	}
}

// Quantization-aware training switches on at its start fraction: until then
// the run is the plain one step for step, from then on the forward pass sees
// quantized matrices; the checkpoint keeps a config without QAT.
func TestRunQATSwitchesOnLate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model twice")
	}
	dir := writeShards(t, 1024)
	ctx := context.Background()
	plain, err := Run(ctx, smallRun(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	opts := smallRun(t, dir)
	opts.QATBits, opts.QATStart = 4, 0.5 // on from step 3 of 6
	qat, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range plain.History.Train {
		q := qat.History.Train[i]
		if p.Step <= 3 && p.Loss != q.Loss {
			t.Errorf("step %d before QAT: loss %v, plain run %v", p.Step, q.Loss, p.Loss)
		}
		if p.Step == 4 && p.Loss == q.Loss {
			t.Errorf("step 4 with 4-bit QAT has the plain run's loss %v", p.Loss)
		}
	}
	log, _ := os.ReadFile(filepath.Join(opts.OutDir, "train.log"))
	if !strings.Contains(string(log), "qat:on bits:4 clip_std:0 step:3") {
		t.Errorf("train.log does not say when QAT started:\n%s", log)
	}
	ck, err := LoadCheckpoint(filepath.Join(opts.OutDir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config.QAT != nil || ck.State.Settings.QATBits != 4 {
		t.Errorf("checkpoint config QAT %+v, settings qat bits %d", ck.Config.QAT, ck.State.Settings.QATBits)
	}
	bad := smallRun(t, dir)
	bad.QATBits = 9
	if _, err := Run(ctx, bad); err == nil || !strings.Contains(err.Error(), "qat-bits") {
		t.Errorf("9-bit QAT: %v", err)
	}
}

// A data directory with a byte sidecar is evaluated over the sidecar's
// bytes, and the log says so.
func TestRunUsesByteSidecar(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model")
	}
	dir := writeShards(t, 1024)
	side := make([]uint16, 4097)
	for i := range side {
		side[i] = uint16(1 + i%4) // 2.5 bytes per token on average, unlike the byte table
	}
	if err := data.WriteShard(filepath.Join(dir, data.SidecarName(0)), side); err != nil {
		t.Fatal(err)
	}
	opts := smallRun(t, dir)
	opts.Iterations, opts.Warmdown, opts.ValEvery = 2, 1, 0
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for p := 1; p <= int(res.Final.Tokens); p++ {
		want += int64(side[p])
	}
	if res.Final.Bytes != want {
		t.Errorf("final eval over %d bytes, the sidecar's targets hold %d", res.Final.Bytes, want)
	}
	log, _ := os.ReadFile(filepath.Join(opts.OutDir, "train.log"))
	if !strings.Contains(string(log), "val_bpb:byte_sidecar:enabled") {
		t.Errorf("train.log does not say the sidecar is used:\n%s", log)
	}
}
