package train

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/paramgolf/golf/model"
)

const toyVocab, toyDim = 16, 8

func newToyTrainer(t *testing.T, opt OptimizerConfig, accum int, seed int64) *Trainer {
	t.Helper()
	tr, err := newTrainer(goBackend(t), toyNetwork(toyVocab, toyDim, opt), opt, TrainerOptions{AccumSteps: accum, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func weightsOf(t *testing.T, tr *Trainer) model.Weights {
	t.Helper()
	w, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func maxWeightDiff(a, b model.Weights) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i].Data {
			d = max(d, math.Abs(float64(a[i].Data[j]-b[i].Data[j])))
		}
	}
	return d
}

func TestTrainerLossDecreases(t *testing.T) {
	opt := DefaultOptimizer()
	opt.NewtonSchulzDType = dtypes.Int32
	if _, err := newTrainer(goBackend(t), toyNetwork(toyVocab, toyDim, opt), opt, TrainerOptions{AccumSteps: 1}); err == nil {
		t.Fatal("an invalid Newton-Schulz dtype was accepted")
	}
	opt = DefaultOptimizer()
	tr := newToyTrainer(t, opt, 1, 1)
	s := toyStream(4096, toyVocab, 1)
	var first, last float64
	for step := range 30 {
		loss, err := tr.Step(context.Background(), []Batch{batchAt(s, step*64, 4, 16)}, 1, opt.Momentum().At(step))
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = loss
		}
		last = loss
	}
	// The stream is ~7/8 deterministic bigrams over 16 tokens: from ~ln 16 the
	// loss must fall well below the uniform 2.77 nats.
	if !(last < first-0.8) {
		t.Fatalf("loss went from %.3f to %.3f in 30 steps", first, last)
	}
	if tr.Steps() != 30 {
		t.Fatalf("Steps() = %d, want 30", tr.Steps())
	}
}

// Accumulating two micro-batches must give the same step as one batch of
// both: equal-size micro-batches' mean gradient is the whole batch's.
func TestAccumulationMatchesFullBatch(t *testing.T) {
	opt := DefaultOptimizer()
	opt.GradClipNorm = 0.5 // clipping sees the averaged gradient
	s := toyStream(2048, toyVocab, 2)
	full := newToyTrainer(t, opt, 1, 3)
	acc := newToyTrainer(t, opt, 2, 3)
	for step := range 3 {
		off := step * 8 * 16
		lf, err := full.Step(context.Background(), []Batch{batchAt(s, off, 8, 16)}, 1, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		la, err := acc.Step(context.Background(), []Batch{batchAt(s, off, 4, 16), batchAt(s, off+4*16, 4, 16)}, 1, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(lf-la) > 1e-5 {
			t.Fatalf("step %d: loss %.7f with one batch, %.7f accumulated", step, lf, la)
		}
	}
	// float32 summation order differs; bf16 orthogonalisation can amplify
	// that by a few bf16 ulps of lr-sized updates.
	if d := maxWeightDiff(weightsOf(t, full), weightsOf(t, acc)); d > 2e-3 {
		t.Fatalf("weights differ by %g after 3 steps", d)
	}
	if _, err := acc.Step(context.Background(), []Batch{batchAt(s, 0, 4, 16)}, 1, 0.9); err == nil {
		t.Fatal("a step with 1 micro-batch on a 2-step accumulator succeeded")
	}
}

// Saving weights and optimizer state after k steps and continuing in a new
// trainer must reproduce the uninterrupted run exactly on the CPU.
func TestTrainerStateResume(t *testing.T) {
	opt := DefaultOptimizer()
	s := toyStream(4096, toyVocab, 4)
	const n, k = 6, 3
	run := func(tr *Trainer, from, to int) []float64 {
		var losses []float64
		for step := from; step < to; step++ {
			l, err := tr.Step(context.Background(), []Batch{batchAt(s, step*64, 4, 16)}, 1-float64(step)/10, opt.Momentum().At(step))
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		return losses
	}
	straight := newToyTrainer(t, opt, 1, 5)
	want := run(straight, 0, n)

	first := newToyTrainer(t, opt, 1, 5)
	got := run(first, 0, k)
	w := weightsOf(t, first)
	st, err := first.OptimizerState()
	if err != nil {
		t.Fatal(err)
	}
	second := newToyTrainer(t, opt, 1, 99) // another seed: everything must come from the state
	if err := second.SetWeights(w); err != nil {
		t.Fatal(err)
	}
	if err := second.SetOptimizerState(st, k); err != nil {
		t.Fatal(err)
	}
	got = append(got, run(second, k, n)...)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: loss %.9g resumed, %.9g straight", i, got[i], want[i])
		}
	}
	if d := maxWeightDiff(weightsOf(t, straight), weightsOf(t, second)); d != 0 {
		t.Fatalf("weights differ by %g", d)
	}
	// A state for another model is refused.
	if err := second.SetOptimizerState(st[:1], k); err == nil {
		t.Fatal("a truncated optimizer state was accepted")
	}
}

// The warm-up is undone by restoring a snapshot: weights, optimizer state
// and step count return to where they were.
func TestSnapshotRestore(t *testing.T) {
	opt := DefaultOptimizer()
	s := toyStream(2048, toyVocab, 6)
	tr := newToyTrainer(t, opt, 2, 7)
	before := weightsOf(t, tr)
	snap, err := tr.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for step := range 2 {
		if _, err := tr.Step(context.Background(), []Batch{batchAt(s, step*128, 4, 16), batchAt(s, step*128+64, 4, 16)}, 1, 0.9); err != nil {
			t.Fatal(err)
		}
	}
	if maxWeightDiff(before, weightsOf(t, tr)) == 0 {
		t.Fatal("steps did not change the weights")
	}
	if err := tr.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if d := maxWeightDiff(before, weightsOf(t, tr)); d != 0 {
		t.Fatalf("restored weights differ by %g", d)
	}
	st, err := tr.OptimizerState()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range st {
		for _, v := range x.Data {
			if v != 0 {
				t.Fatalf("optimizer state %s not reset", x.Name)
			}
		}
	}
	// After the restore a step equals a fresh trainer's first step.
	fresh := newToyTrainer(t, opt, 2, 7)
	b := []Batch{batchAt(s, 0, 4, 16), batchAt(s, 64, 4, 16)}
	l1, err1 := tr.Step(context.Background(), b, 1, 0.9)
	l2, err2 := fresh.Step(context.Background(), b, 1, 0.9)
	if err1 != nil || err2 != nil || l1 != l2 {
		t.Fatalf("restored step loss %v (%v), fresh %v (%v)", l1, err1, l2, err2)
	}
	if d := maxWeightDiff(weightsOf(t, fresh), weightsOf(t, tr)); d != 0 {
		t.Fatalf("restored trainer drifts from a fresh one by %g", d)
	}
}

func TestStepStopsOnNaN(t *testing.T) {
	opt := DefaultOptimizer()
	tr := newToyTrainer(t, opt, 1, 8)
	w := weightsOf(t, tr)
	w[2].Data[0] = float32(math.NaN()) // the gain
	if err := tr.SetWeights(w); err != nil {
		t.Fatal(err)
	}
	s := toyStream(512, toyVocab, 9)
	_, err := tr.Step(context.Background(), []Batch{batchAt(s, 0, 2, 16)}, 1, 0.9)
	if err == nil || !strings.Contains(err.Error(), "step 1") || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("err = %v, want a NaN error naming step 1", err)
	}
	bad := batchAt(s, 0, 2, 16)
	bad.Targets[3] = toyVocab
	if _, err := tr.Step(context.Background(), []Batch{bad}, 1, 0.9); err == nil {
		t.Fatal("a target outside the vocabulary was accepted")
	}
}
