package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/tokenizer"
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
	var plotted []string
	var plottedHistory History
	straight.LossPlot = func(path, title string, h History) error {
		plotted, plottedHistory = append(plotted, path, title), h
		return os.WriteFile(path, []byte("png"), 0o644)
	}
	want, err := Run(ctx, straight)
	if err != nil {
		t.Fatal(err)
	}
	if len(plotted) != 2 || plotted[0] != filepath.Join(straight.OutDir, "loss.png") || !strings.Contains(plotted[1], "6 steps") ||
		!reflect.DeepEqual(plottedHistory, want.History) {
		t.Fatalf("LossPlot called with %q and %d/%d points, want loss.png once with the run's history", plotted, len(plottedHistory.Train), len(plottedHistory.Val))
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

	// The run directory holds the documented files; loss.png only with a
	// LossPlot.
	if _, err := os.Stat(filepath.Join(first.OutDir, "loss.png")); !os.IsNotExist(err) {
		t.Errorf("loss.png without a LossPlot: %v", err)
	}
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

// A diverging run stops with an error naming the step, never saves
// non-finite weights, and its message names the checkpoint it keeps: the
// last one whose weights and optimizer state are all finite. (With these
// rates the weights turn NaN at step 2 while its loss is still finite.)
func TestRunStopsOnNaN(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny model")
	}
	opts := smallRun(t, writeShards(t, 1024))
	opts.WarmupSteps, opts.ValEvery, opts.CheckpointEvery = 0, 0, 1
	opts.Optimizer.EmbedLR, opts.Optimizer.ScalarLR, opts.Optimizer.MatrixLR = 1e30, 1e30, 1e30
	_, err := Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "step ") || !(strings.Contains(err.Error(), "training loss is") || strings.Contains(err.Error(), "non-finite")) {
		t.Fatalf("err = %v, want a non-finite loss or weights error naming the step", err)
	}
	ck, cerr := LoadCheckpoint(filepath.Join(opts.OutDir, "checkpoint"))
	if cerr != nil {
		t.Fatalf("the last good checkpoint is unreadable: %v", cerr)
	}
	if err := checkFinite("weights", ck.Weights); err != nil {
		t.Fatalf("the kept checkpoint (step %d): %v", ck.State.Step, err)
	}
	if err := checkFinite("optimizer state", ck.Optimizer); err != nil {
		t.Fatalf("the kept checkpoint (step %d): %v", ck.State.Step, err)
	}
	if !strings.Contains(err.Error(), "step "+itoa(ck.State.Step+1)+":") || !strings.Contains(err.Error(), "from step "+itoa(ck.State.Step)+", is kept") {
		t.Fatalf("checkpoint is at step %d but the error is %v", ck.State.Step, err)
	}
}

// SaveCheckpoint refuses NaN and infinite values.
func TestSaveCheckpointRefusesNonFinite(t *testing.T) {
	cfg := smallModel(t)
	w, err := model.InitWeights(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	w[3].Data[7] = float32(math.Inf(1))
	err = SaveCheckpoint(filepath.Join(t.TempDir(), "ck"), &Checkpoint{Config: cfg, Weights: w})
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), w[3].Name) {
		t.Fatalf("SaveCheckpoint with an Inf: %v", err)
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
	if res.StoppedBy != "wallclock" || res.Steps < 1 || res.Steps >= opts.Iterations {
		t.Fatalf("stopped by %s after %d steps, %.0f ms", res.StoppedBy, res.Steps, res.TrainTimeMs)
	}
	// The budget is a hard limit: no step is started that would end past it
	// at the slowest step time so far (+20 %), so the run stops when the next
	// step would not fit, and each step it ran was expected to fit.
	var slowest, prev float64
	for i, p := range res.History.Train {
		d := p.TrainTimeMs - prev
		if i > 0 && prev+1.2*slowest > 1500+50 {
			t.Fatalf("step %d started at %.0f ms although the slowest step so far took %.0f ms (budget 1500 ms)", p.Step, prev, slowest)
		}
		slowest, prev = max(slowest, d), p.TrainTimeMs
	}
	if prev+1.2*slowest < 1500-50 {
		t.Fatalf("stopped at %.0f ms with the slowest step %.0f ms: the next step would have fitted in 1500 ms", prev, slowest)
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

// The micro-batch size changes how a step is computed, never what it
// computes: with the whole batch at once, with 2 and with 8 micro-batches,
// every step's loss and the final weights agree to float32 rounding,
// because every step reads the reference's rows whatever the split.
func TestRunMicroBatchDoesNotChangeTheNumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model three times")
	}
	dir := writeShards(t, 1024)
	var runs []*Result
	var weights []model.Weights
	for _, micro := range []int{512, 256, 64} {
		o := smallRun(t, dir)
		o.MicroBatchTokens = micro
		o.Iterations, o.Warmdown, o.WarmupSteps, o.ValEvery = 4, 2, 0, 0
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, res)
		weights = append(weights, readWeights(t, o.OutDir))
	}
	for i, res := range runs[1:] {
		for s, p := range res.History.Train {
			w := runs[0].History.Train[s].Loss
			if d := math.Abs(p.Loss - w); d > 1e-6*math.Abs(w) {
				t.Errorf("micro-batch %d tokens, step %d: loss %.8f, whole batch %.8f (rel %.2g)", []int{256, 64}[i], s+1, p.Loss, w, d/w)
			}
		}
		// Adam divides by sqrt(v): a weight whose gradients are near zero
		// moves by ~lr either way, so rounding shows most there.
		if d := maxWeightDiff(weights[0], weights[i+1]); d > 5e-4 {
			t.Errorf("micro-batch %d tokens: final weights differ by %g", []int{256, 64}[i], d)
		}
	}
}

// StorageDType bfloat16 keeps the tied embedding in bfloat16 through a run
// (every saved value is a bfloat16 one, the block matrices stay float32);
// auto on the pure-Go backend (float32 matmuls) keeps it in float32.
func TestRunStorageDType(t *testing.T) {
	dir := writeShards(t, 1024)
	for _, c := range []struct {
		dtype dtypes.DType
		bf16  bool
	}{{dtypes.BFloat16, true}, {dtypes.InvalidDType, false}} {
		o := smallRun(t, dir)
		o.Iterations, o.Warmdown, o.WarmupSteps, o.ValEvery = 2, 1, 0, 0
		o.Optimizer.StorageDType = c.dtype
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		log, _ := os.ReadFile(filepath.Join(o.OutDir, "train.log"))
		want := map[bool]string{true: "storage_dtype:BFloat16", false: "storage_dtype:Float32"}[c.bf16]
		if !strings.Contains(string(log), want) {
			t.Errorf("%s: log has no %q", c.dtype, want)
		}
		for _, w := range readWeights(t, o.OutDir) {
			inBF16 := 0
			for _, x := range w.Data {
				if x == hostRoundBF16(x) {
					inBF16++
				}
			}
			all := inBF16 == len(w.Data)
			switch {
			case w.Name == "tok_emb" && all != c.bf16:
				t.Errorf("%s: tok_emb has %d of %d bfloat16 values", c.dtype, inBF16, len(w.Data))
			case w.Name == "block_0/attn/c_q" && all:
				t.Errorf("%s: block matrix c_q holds only bfloat16 values: its master weights should be float32", c.dtype)
			}
		}
	}
}

// A resumed run reads its checkpoint's shards when no DataDir is given,
// refuses other shards unless AllowDataChange, and refuses a loader state
// it cannot decode exactly.
func TestRunResumeKeepsItsData(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model")
	}
	dir := writeShards(t, 1024)
	first := smallRun(t, dir)
	first.Iterations, first.Warmdown, first.WarmupSteps, first.ValEvery, first.MaxSteps = 3, 1, 0, 0, 1
	if _, err := Run(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(first.OutDir, "checkpoint")

	resumed := first
	resumed.DataDir, resumed.Resume, resumed.MaxSteps = "", ckpt, 2
	if _, err := Run(context.Background(), resumed); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(first.OutDir, "train.log"))
	abs, _ := filepath.Abs(dir)
	if n := strings.Count(string(log), "data:"+abs+" "); n != 2 {
		t.Fatalf("train.log names the shards %s %d times, want 2 (run and resume):\n%s", abs, n, log)
	}

	other := writeShards(t, 1024)
	resumed.DataDir, resumed.MaxSteps = other, 3
	if _, err := Run(context.Background(), resumed); err == nil || !strings.Contains(err.Error(), "--allow-data-change") || !strings.Contains(err.Error(), abs) {
		t.Fatalf("resume on other shards: %v, want a refusal naming the run's data", err)
	}
	resumed.AllowDataChange = true
	if _, err := Run(context.Background(), resumed); err != nil {
		t.Fatalf("resume on other shards with AllowDataChange: %v", err)
	}

	// An unknown field in the saved loader state is an error.
	stPath := filepath.Join(ckpt, "state.json")
	b, _ := os.ReadFile(stPath)
	var st map[string]any
	json.Unmarshal(b, &st)
	st["loader"].(map[string]any)["position"] = 5
	b, _ = json.Marshal(st)
	os.WriteFile(stPath, b, 0o644)
	resumed.AllowDataChange, resumed.DataDir, resumed.Iterations, resumed.MaxSteps = false, "", 5, 4
	if _, err := Run(context.Background(), resumed); err == nil || !strings.Contains(err.Error(), `"position"`) {
		t.Fatalf("resume with an unknown loader field: %v", err)
	}
}

// An output folder is one run's: a second Run into it is refused (unless
// Force replaces it), and a folder another writer holds fails at once,
// naming the holder.
func TestRunOwnsItsFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model")
	}
	dir := writeShards(t, 1024)
	o := smallRun(t, dir)
	o.Iterations, o.Warmdown, o.WarmupSteps, o.ValEvery = 1, 1, 0, 0
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "already holds a run") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second run into the folder: %v", err)
	}
	killed := filepath.Join(o.OutDir, ".checkpoint.tmp-1234") // a run killed while saving
	os.MkdirAll(killed, 0o755)
	o.Force = true
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatalf("with Force: %v", err)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) {
		t.Fatalf("a killed run's temporary checkpoint is still there: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(o.OutDir, "train.log"))
	if n := strings.Count(string(log), "backend:"); n != 1 {
		t.Fatalf("after Force the log holds %d runs, want 1", n)
	}
	l, err := outlock.Acquire(o.OutDir, "golf train (the other one)")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "(the other one)") {
		t.Fatalf("run into a locked folder: %v", err)
	}
}

// Periodic validation scores the capped prefix, the final evaluation the
// whole split, and the result says both.
func TestRunFinalEvaluationIsTheWholeSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the small model")
	}
	o := smallRun(t, writeShards(t, 1024)) // 4097 validation tokens, a 1024-token cap
	o.Iterations, o.Warmdown, o.WarmupSteps, o.ValEvery = 2, 1, 0, 1
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.ValTokens != 4096 || res.PeriodicValTokens != 1024 || res.Final.Tokens != 4096 {
		t.Fatalf("val tokens %d, periodic %d, final evaluation %d: want 4096, 1024, 4096", res.ValTokens, res.PeriodicValTokens, res.Final.Tokens)
	}
	v := res.History.Val
	if len(v) != 3 || v[0].Tokens != 1024 || v[1].Tokens != 1024 || v[2].Tokens != 4096 {
		t.Fatalf("history %+v", v)
	}
	log, _ := os.ReadFile(filepath.Join(o.OutDir, "train.log"))
	if !strings.Contains(string(log), "val_tokens:4096 periodic_val_tokens:1024") || !strings.Contains(string(log), "step:2/2 val_loss:") {
		t.Fatalf("log:\n%s", log)
	}
	// A comparison of runs may cap the final evaluation too.
	o.OutDir, o.FinalValTokens = t.TempDir(), 2048
	if res, err = Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if res.ValTokens != 2048 || res.PeriodicValTokens != 1024 || res.Final.Tokens != 2048 {
		t.Fatalf("capped: val tokens %d, periodic %d, final evaluation %d: want 2048, 1024, 2048", res.ValTokens, res.PeriodicValTokens, res.Final.Tokens)
	}
}

// With no tokenizer given, the shards' manifest names it, and a zero
// Model.VocabSize follows it: sp8192 shards train an 8192-id model.
func TestRunTokenizerFromTheData(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small model")
	}
	sp, err := tokenizer.Load("../tokenizer/testdata/fineweb_8192_bpe.model")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../data/testdata/docs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := data.Build(context.Background(), data.BuildOptions{Dir: dir, Inputs: []data.Input{{Name: "docs.jsonl", R: bytes.NewReader(raw)}},
		Encoder: sp, ValDocs: 7}); err != nil {
		t.Fatal(err)
	}
	o := smallRun(t, dir)
	o.Model.VocabSize = 0
	o.Iterations, o.Warmdown, o.WarmupSteps, o.ValEvery, o.ValTokens = 1, 1, 0, 0, 0
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.VocabSize != 8192 {
		t.Fatalf("vocabulary %d, want the tokenizer's 8192", res.Model.VocabSize)
	}
	st, err := ReadTrainState(filepath.Join(o.OutDir, "checkpoint"))
	if err != nil || st.TokenizerSHA256 != sp.SHA256() {
		t.Fatalf("checkpoint tokenizer %+v %v", st, err)
	}
	// An explicit vocabulary that is not the tokenizer's is an error.
	o2 := smallRun(t, dir)
	if _, err := Run(context.Background(), o2); err == nil || !strings.Contains(err.Error(), "8192") {
		t.Fatalf("1024-id model on sp8192 shards: %v", err)
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
