package train_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// The baseline's schedule: full rate, then a linear warm-down over the last
// 1200 steps, or over the estimated last 1200 steps of a wall-clock budget.
func ExampleSchedule_LRScale() {
	steps := train.Schedule{Iterations: 20000, Warmdown: 1200}
	for _, step := range []int{0, 18800, 19400, 19999} {
		fmt.Printf("step %d: %.4f\n", step, steps.LRScale(step, 0))
	}
	clock := train.Schedule{Iterations: 20000, Warmdown: 1200, MaxTime: 600 * time.Second}
	// 5000 steps in 540 s is 108 ms/step: the warm-down lasts 129.6 s, and
	// 60 s are left.
	fmt.Printf("after 540 s: %.4f\n", clock.LRScale(5000, 540*time.Second))
	// Output:
	// step 0: 1.0000
	// step 18800: 1.0000
	// step 19400: 0.5000
	// step 19999: 0.0008
	// after 540 s: 0.4630
}

// Muon's momentum rises from 0.85 to 0.95 over the first 500 steps.
func ExampleMomentumWarmup_At() {
	m := train.DefaultOptimizer().Momentum()
	fmt.Printf("%.2f %.2f %.2f\n", m.At(0), m.At(250), m.At(1000))
	// Output: 0.85 0.90 0.95
}

// A trainer runs optimizer steps and evaluates its current weights; here a
// narrowed tiny model learns a repeating token pattern in a few steps.
func ExampleNewTrainer() {
	cfg, s, err := train.PresetSettings("tiny")
	if err != nil {
		panic(err)
	}
	// 2 blocks of width 64 instead of 4 of 128: the same graph, quicker.
	cfg.NumLayers, cfg.ModelDim, cfg.NumHeads, cfg.NumKVHeads, cfg.MLPHidden = 2, 64, 2, 1, 128
	backend, _, err := train.OpenBackend("go")
	if err != nil {
		panic(err)
	}
	trainer, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{AccumSteps: 1, Seed: 1})
	if err != nil {
		panic(err)
	}
	defer trainer.Close()

	const rows, seqLen = 2, 32
	stream := make([]uint16, rows*seqLen+1)
	for i := range stream {
		stream[i] = uint16(100 + i%4) // 100 101 102 103 100 ...
	}
	inputs, targets := make([]int32, rows*seqLen), make([]int32, rows*seqLen)
	for i := range inputs {
		inputs[i], targets[i] = int32(stream[i]), int32(stream[i+1])
	}
	batch := []train.Batch{train.NewBatch(inputs, targets, seqLen)}
	var first, last float64
	for step := range 8 {
		loss, err := trainer.Step(context.Background(), batch, 1, s.Optimizer.Momentum().At(step))
		if err != nil {
			panic(err)
		}
		if step == 0 {
			first = loss
		}
		last = loss
	}
	res, err := trainer.Evaluate(context.Background(), stream, tokenizer.Default().ByteTable(), train.EvalOptions{SeqLen: seqLen})
	if err != nil {
		panic(err)
	}
	fmt.Println("steps:", trainer.Steps())
	fmt.Println("loss fell:", last < first-1)
	fmt.Println("scored tokens:", res.Tokens)
	// Output:
	// steps: 8
	// loss fell: true
	// scored tokens: 64
}

// Checkpoints save weights (and optimizer state) for evaluation, packing or
// resuming; Evaluate works from the weights alone.
func ExampleLoadCheckpoint() {
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		panic(err)
	}
	cfg.NumLayers, cfg.ModelDim, cfg.NumHeads, cfg.NumKVHeads, cfg.MLPHidden = 2, 64, 2, 1, 128
	backend, _, err := train.OpenBackend("go")
	if err != nil {
		panic(err)
	}
	trainer, err := train.NewTrainer(backend, cfg, train.DefaultOptimizer(), train.TrainerOptions{AccumSteps: 1, Seed: 7})
	if err != nil {
		panic(err)
	}
	defer trainer.Close()
	weights, err := trainer.Weights()
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	if err := train.SaveCheckpoint(filepath.Join(dir, "ck"), &train.Checkpoint{Config: cfg, Weights: weights}); err != nil {
		panic(err)
	}

	ck, err := train.LoadCheckpoint(filepath.Join(dir, "ck"))
	if err != nil {
		panic(err)
	}
	val := make([]uint16, 4*64+1)
	for i := range val {
		val[i] = uint16(i % cfg.VocabSize)
	}
	res, err := train.Evaluate(context.Background(), backend, ck.Config, ck.Weights, val, tokenizer.Default().ByteTable(), train.EvalOptions{SeqLen: 64})
	if err != nil {
		panic(err)
	}
	// A freshly initialised model is close to uniform over the vocabulary.
	fmt.Printf("vocabulary: %d, all parameters: %v, scored: %d, val_loss near ln(vocab): %v\n",
		cfg.VocabSize, len(ck.Weights) == len(cfg.Params()), res.Tokens, res.ValLoss > 6.4 && res.ValLoss < 7.4)
	// Output:
	// vocabulary: 1024, all parameters: true, scored: 256, val_loss near ln(vocab): true
}
