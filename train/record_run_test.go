package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/model"
)

// The trainer's EMA follows ema = d·ema + (1-d)·w after every step, from the
// initial weights; EMAWeights returns it, SetEMA replaces it.
func TestTrainerEMA(t *testing.T) {
	cfg := smallModel(t)
	cfg.SeqLen = 16
	_, s, _ := PresetSettings("tiny")
	const d = 0.75
	tr, err := NewTrainer(goBackend(t), cfg, s.Optimizer, TrainerOptions{AccumSteps: 1, Seed: 3, EMADecay: d})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ema, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	stream := toyStream(2000, cfg.VocabSize, 5)
	for step := range 3 {
		if _, err := tr.Step(context.Background(), []Batch{batchAt(stream, 100*step, 2, 16)}, 1, 0.9); err != nil {
			t.Fatal(err)
		}
		w, _ := tr.Weights()
		for i := range ema {
			for j := range ema[i].Data {
				ema[i].Data[j] = float32(d*float64(ema[i].Data[j]) + (1-d)*float64(w[i].Data[j]))
			}
		}
		got, err := tr.EMAWeights()
		if err != nil {
			t.Fatal(err)
		}
		if diff := maxWeightDiff(got, ema); diff > 1e-6 {
			t.Fatalf("step %d: EMA differs from d·ema + (1-d)·w by %g", step+1, diff)
		}
		if maxWeightDiff(got, w) == 0 {
			t.Fatalf("step %d: the EMA equals the raw weights", step+1)
		}
	}
	if err := tr.SetEMA(ema); err != nil {
		t.Fatal(err)
	}
	plain, _ := NewTrainer(goBackend(t), cfg, s.Optimizer, TrainerOptions{AccumSteps: 1, Seed: 3})
	defer plain.Close()
	if _, err := plain.EMAWeights(); err == nil {
		t.Error("a trainer without an EMA returned EMA weights")
	}
}

// packedShards writes shards of documents that start with BOS (1).
func packedShards(t *testing.T, vocab int) string {
	t.Helper()
	dir := t.TempDir()
	for i, n := range []int{9000, 30000} {
		s := toyStream(n, vocab, uint64(40+i))
		for p := 0; p < n; p += 23 + p%37 {
			s[p] = 1
		}
		name := "fineweb_train_000000.bin"
		if i == 1 {
			name = "fineweb_val_000000.bin"
			s = s[:4097]
		}
		if err := data.WriteShard(filepath.Join(dir, name), s); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// recordRun is a small run with the record's training techniques: the
// record's model options, EMA, loops switched on halfway, document packing
// and a progressive context with an LR re-warm.
func recordRun(t *testing.T, dir string) Options {
	o := smallRun(t, dir)
	m := o.Model
	m.NumLayers = 4
	m.Activation, m.LeakySlope, m.MatrixInit, m.LNScale, m.QKGainInit = "leaky_relu2", 0.5, "orthogonal", true, 5
	m.AttnGate, m.AttnGateScale, m.GateWindow, m.SmearGate, m.SkipGates, m.AsymLogit = "sparse", 0.5, 8, true, true, true
	m.XSALastN, m.RopeDims = 4, 16
	m.NumLoops, m.LoopStart, m.LoopEnd, m.ParallelStartLayer = 1, 1, 2, 3
	o.Model = m
	o.Settings.recordTechniques()
	o.Settings.Optimizer.NewtonSchulzDType = dtypes.Float32
	o.Settings.Optimizer.MomentumWarmupSteps = 3
	o.Settings.EMADecay = 0.6
	o.Settings.LoopStartFrac = 0.5
	o.Settings.DocumentPacking, o.Settings.MaxDocLen = true, 20
	o.Settings.SeqSchedule = []SeqPhase{{SeqLen: 32, Until: 0.3}, {SeqLen: 64, Until: 1}}
	o.Settings.SeqChangeWarmupSteps = 2
	return o
}

// A run with the record's training techniques trains, applies its EMA at
// the end (the checkpoint's weights are the EMA, the training weights
// travel as raw/ state), switches its loops and context length at their
// fractions, and resumes from a mid-run checkpoint to exactly the same end.
func TestRunRecordTechniquesResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small record-shaped model three times")
	}
	dir := packedShards(t, 1024)
	ctx := context.Background()
	straight := recordRun(t, dir)
	want, err := Run(ctx, straight)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(filepath.Join(straight.OutDir, "train.log"))
	for _, line := range []string{"loop_warmup_step:1/1", "seq_64_warmup_step:1/1", "layer_loop:enabled step:3 ", "seq_len:32->64 step:2 ", "ema:applying EMA weights decay:0.6 step:6", "document_packing:true"} {
		if !strings.Contains(string(log), line) {
			t.Errorf("train.log lacks %q:\n%s", line, log)
		}
	}
	// The re-warm: steps 3 and 4 (indices 2, 3) at 1/2 and 2/2 of the
	// schedule's rate.
	h := want.History.Train
	sched := straight.Settings.Schedule()
	if got, full := h[2].LRScale, sched.LRScale(2, 0); math.Abs(got-full/2) > 1e-12 {
		t.Errorf("step 3 lr scale %v, want half the schedule's %v", got, full)
	}
	if !want.EMA || len(want.DataReads) != 1 || want.DataReads[0].EndMs != want.TrainTimeMs {
		t.Errorf("result: EMA %v, data reads %+v", want.EMA, want.DataReads)
	}
	ck, err := LoadCheckpoint(filepath.Join(straight.OutDir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var raw model.Weights
	for _, o := range ck.Optimizer {
		if name, ok := strings.CutPrefix(o.Name, rawPrefix); ok {
			o.Name = name
			raw = append(raw, o)
		}
	}
	if len(raw) == 0 || !ck.State.EMAApplied {
		t.Fatal("the final checkpoint keeps no raw training weights")
	}
	emaW, _ := ck.Weights.Get("block_0/attn/c_q")
	rawW, _ := raw.Get("block_0/attn/c_q")
	if maxWeightDiff(model.Weights{emaW}, model.Weights{rawW}) == 0 {
		t.Error("the checkpoint's weights are the raw ones, not the EMA")
	}

	first := recordRun(t, dir)
	first.MaxSteps, first.CheckpointEvery = 4, 0
	if _, err := Run(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := recordRun(t, dir)
	second.OutDir = first.OutDir
	second.Resume = filepath.Join(first.OutDir, "checkpoint")
	got, err := Run(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.History.Train {
		if g, w := got.History.Train[i], want.History.Train[i]; g.Loss != w.Loss || g.LRScale != w.LRScale {
			t.Fatalf("step %d: resumed %+v, straight %+v", i+1, g, w)
		}
	}
	if got.ValBPB != want.ValBPB {
		t.Errorf("final val_bpb: resumed %v, straight %v", got.ValBPB, want.ValBPB)
	}
	if d := maxWeightDiff(readWeights(t, straight.OutDir), readWeights(t, second.OutDir)); d != 0 {
		t.Errorf("final (EMA) weights differ by %g", d)
	}
}
