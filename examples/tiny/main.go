// Command tiny trains golf's CPU preset, a small GPT, on the embedded corpus
// (State of the Union addresses) with the pure-Go backend, and reports
// val_loss and val_bpb. It is the library's shortest complete program:
//
//	go run ./examples/tiny
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func main() {
	ctx := context.Background()

	// Model and hyperparameters of the tiny preset.
	cfg, s, err := train.PresetSettings("tiny")
	check(err)

	// The pure-Go backend: runs anywhere Go does.
	backend, desc, err := train.OpenBackend("go")
	check(err)
	fmt.Println("backend:", desc)

	// Data: tokenize the embedded corpus into shards once, then stream them.
	tok := tokenizer.Default()
	dir := filepath.Join(os.TempDir(), "golf-example-tiny")
	check(data.EnsureDefault(ctx, dir, tok, os.Stdout))
	trainFiles, err := data.TrainFiles(dir)
	check(err)
	valFiles, err := data.ValFiles(dir)
	check(err)
	val, err := data.LoadValidation(valFiles, s.SeqLen)
	check(err)
	val = data.CapValidation(val, s.SeqLen, s.ValTokens) // a slice of it keeps the example quick
	loader, err := data.NewLoader(trainFiles, 0, 1)
	check(err)

	// Optimizers (Muon + Adam) and the compiled training step.
	_, accum := s.MicroBatch(8192)
	trainer, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{AccumSteps: accum, Seed: s.Seed})
	check(err)
	defer trainer.Close()

	// The loop: full learning rate, then a linear warm-down that the
	// schedule sizes from the mean step time so that it ends with the
	// preset's wall-clock budget (150 s), as the challenge's script does.
	schedule, momentum := s.Schedule(), s.Optimizer.Momentum()
	start := time.Now()
	for step := 0; step < s.Iterations; {
		// The reference's rows for this step, cut into micro-batches.
		inputs, targets, err := loader.NextStep(s.BatchTokens, s.SeqLen)
		check(err)
		batches, err := train.SplitStep(inputs, targets, s.SeqLen, accum)
		check(err)
		loss, err := trainer.Step(ctx, batches, schedule.LRScale(step, time.Since(start)), momentum.At(step))
		check(err)
		step++
		if step%s.LogEvery == 0 {
			fmt.Printf("step:%d train_loss:%.4f elapsed:%s\n", step, loss, time.Since(start).Round(time.Second))
		}
		if schedule.MaxTime > 0 && time.Since(start) >= schedule.MaxTime {
			break
		}
	}

	// Evaluation: val_loss in nats per token, val_bpb in bits per byte.
	res, err := trainer.Evaluate(ctx, val, tok.ByteTable(), train.EvalOptions{SeqLen: s.SeqLen})
	check(err)
	fmt.Printf("val_loss:%.4f val_bpb:%.4f over %d tokens\n", res.ValLoss, res.ValBPB, res.Tokens)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tiny:", err)
		os.Exit(1)
	}
}
