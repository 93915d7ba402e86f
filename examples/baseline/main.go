// Command baseline is the Parameter Golf challenge's baseline (train_gpt.py)
// written against golf's public API, top to bottom: model, data, optimizers,
// the timed loop, evaluation, checkpoint.
//
//	go run ./examples/baseline --data DIR   # DIR holds fineweb_{train,val}_*.bin
//
// On one GPU a step is 524,288 tokens as 8 micro-batches of 64x1024; the run
// stops after 600 s of training (evaluation not counted). The flags shorten it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func main() {
	dataDir := flag.String("data", "", "shard directory (required)")
	tokPath := flag.String("tokenizer", "", "SentencePiece .model of the shards (default: the embedded sp1024)")
	maxSeconds := flag.Float64("max-seconds", 600, "training budget in seconds")
	out := flag.String("out", "baseline-checkpoint", "where the final checkpoint goes")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("need --data DIR")
	}
	ctx := context.Background()

	// ---- Model and hyperparameters: 9 blocks of width 512, 8 heads and 4
	// KV heads, vocabulary 1024, tied embeddings; 524,288 tokens per step.
	cfg, s, err := train.PresetSettings("baseline")
	check(err)
	s.MaxSeconds = *maxSeconds

	// ---- Backend: the GPU through XLA when there is one, else pure Go.
	backend, desc, err := train.OpenBackend("")
	check(err)
	fmt.Println("backend:", desc)

	// ---- Data: training shards streamed in order; all validation tokens.
	tok := tokenizer.Default()
	if *tokPath != "" {
		tok, err = tokenizer.Load(*tokPath)
		check(err)
	}
	trainFiles, err := data.TrainFiles(*dataDir)
	check(err)
	valFiles, err := data.ValFiles(*dataDir)
	check(err)
	val, err := data.LoadValidation(valFiles, s.SeqLen)
	check(err)
	loader, err := data.NewLoader(trainFiles, 0, 1)
	check(err)

	// ---- Optimizers: Muon for the block matrices, Adam for the embedding
	// and the control parameters; one compiled graph per micro-step kind.
	microTokens, accum := s.MicroBatch(65536)
	trainer, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{AccumSteps: accum, Seed: s.Seed})
	check(err)
	defer trainer.Close()
	fmt.Printf("model_params:%d micro_batch:%d grad_accum_steps:%d\n", cfg.NumParams(), microTokens, accum)
	// Every step reads the reference's rows (8 spans of BatchTokens/8+1
	// stream tokens), cut into the micro-batches memory allows.
	nextStep := func() []train.Batch {
		inputs, targets, err := loader.NextStep(s.BatchTokens, s.SeqLen)
		check(err)
		batches, err := train.SplitStep(inputs, targets, s.SeqLen, accum)
		check(err)
		return batches
	}

	// ---- Warm-up: a few steps compile and prime the graphs; then weights,
	// optimizer state and data position go back to the start.
	snapshot, err := trainer.Snapshot()
	check(err)
	start := loader.State()
	for i := range s.WarmupSteps {
		_, err := trainer.Step(ctx, nextStep(), 1, s.Optimizer.Momentum().At(i))
		check(err)
	}
	check(trainer.Restore(snapshot))
	check(loader.Restore(start))

	// ---- The timed loop: constant learning rate, then a linear warm-down
	// sized from the mean step time so that it ends with the budget.
	schedule := s.Schedule()
	momentum := s.Optimizer.Momentum()
	t0 := time.Now()
	step := 0
	for step < s.Iterations {
		loss, err := trainer.Step(ctx, nextStep(), schedule.LRScale(step, time.Since(t0)), momentum.At(step))
		check(err)
		step++
		ms := float64(time.Since(t0).Milliseconds())
		if step <= 10 || step%s.LogEvery == 0 {
			fmt.Printf("step:%d/%d train_loss:%.4f train_time:%.0fms step_avg:%.2fms\n", step, s.Iterations, loss, ms, ms/float64(step))
		}
		if schedule.MaxTime > 0 && time.Since(t0) >= schedule.MaxTime {
			fmt.Printf("stopping_early: wallclock_cap train_time:%.0fms step:%d/%d\n", ms, step, s.Iterations)
			break
		}
	}

	// ---- Evaluation: mean cross-entropy over every validation token, and
	// bits per byte with the tokenizer's byte table.
	res, err := trainer.Evaluate(ctx, val, tok.ByteTable(), train.EvalOptions{SeqLen: s.SeqLen})
	check(err)
	fmt.Printf("step:%d val_loss:%.4f val_bpb:%.4f eval_time:%.0fms\n", step, res.ValLoss, res.ValBPB, float64(res.Duration.Milliseconds()))

	// ---- Checkpoint: weights only, ready for golf eval and golf pack.
	weights, err := trainer.Weights()
	check(err)
	check(train.SaveCheckpoint(*out, &train.Checkpoint{Config: cfg, Weights: weights, State: train.TrainState{Step: step, Settings: s}}))
	fmt.Println("checkpoint:", *out)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
