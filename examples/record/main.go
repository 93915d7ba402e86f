// Command record trains a model with the final record's stack (PR #2135,
// val_bpb 1.0565 on 8xH100) through golf's public API, top to bottom like
// the record's train_gpt.py: the model's techniques, documents packed with
// attention kept inside each, Polar-Express Muon with row normalisation,
// weight decay and clipping, the warm-down over a fraction of the run, depth
// recurrence switched on part-way, and the EMA of the weights evaluated at
// the end.
//
// By default it runs the record's techniques at the tiny size on the
// embedded corpus, on the CPU (a few minutes):
//
//	go run ./examples/record
//	go run ./examples/record -preset record -data DIR -backend cuda   # the record itself, on a GPU
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func main() {
	preset := flag.String("preset", "tiny-record", "tiny-record (CPU) or record (PR #2135's model and settings)")
	dataDir := flag.String("data", "", "shard directory; default: the embedded corpus")
	tokPath := flag.String("tokenizer", "", "the shards' SentencePiece model; default: the embedded sp1024")
	backendSpec := flag.String("backend", "go", "go (CPU) or cuda")
	flag.Parse()
	ctx := context.Background()

	// ---- Hyperparameters: the preset's model and training settings.
	cfg, s, err := train.PresetSettings(*preset)
	check(err)
	backend, desc, err := train.OpenBackend(*backendSpec)
	check(err)
	fmt.Println("backend:", desc)

	// ---- Data: shards of documents (each starting with BOS), the
	// validation split, and the record's document-packing loader.
	tok := tokenizer.Default()
	if *tokPath != "" {
		tok, err = tokenizer.Load(*tokPath)
		check(err)
	}
	cfg.VocabSize = tok.VocabSize()
	dir := *dataDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "golf-example-record")
		check(data.EnsureDefault(ctx, dir, tok, os.Stdout))
	}
	trainFiles, err := data.TrainFiles(dir)
	check(err)
	valFiles, err := data.ValFiles(dir)
	check(err)
	val, err := data.LoadValidation(valFiles, s.SeqLen)
	check(err)
	loader, err := data.NewPackingLoader(trainFiles, 0, 1, uint16(tok.BOS()))
	check(err)
	defer loader.Close()

	// ---- Model: the record's techniques are options of one config.
	fmt.Printf("model:%s params:%d layers:%d virtual_layers:%d\n", cfg.Name, cfg.NumParams(), cfg.NumLayers, cfg.NumVirtualLayers())
	for _, p := range cfg.Params()[:4] {
		fmt.Printf("  %-20s %v %v %v\n", p.Name, p.Shape, p.Class, p.Init)
	}

	// ---- Optimizers: Muon (Polar-Express, MuonEq-R, weight decay) on the
	// matrices, AdamW on the embedding and the scalars, an EMA of the
	// weights; the unlooped graph trains until the loops switch on.
	_, accum := s.MicroBatch(8192)
	trainer, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{
		AccumSteps: accum, Seed: s.Seed, EMADecay: s.EMADecay, Unlooped: cfg.NumLoops > 0 && s.LoopStartFrac > 0,
	})
	check(err)
	defer trainer.Close()

	// ---- Training: the warm-down spans the last WarmdownFrac of the
	// wall-clock budget with a floor of MinLR (the record's lr_mul).
	schedule, momentum := s.Schedule(), s.Optimizer.Momentum()
	start := time.Now()
	for step := 0; step < s.Iterations; {
		elapsed := time.Since(start)
		if frac := schedule.Frac(step, elapsed); !trainer.Looping() && frac >= s.LoopStartFrac {
			trainer.SetLooping(true)
			fmt.Printf("layer_loop:enabled step:%d frac:%.3f\n", step, frac)
		}
		inputs, targets, segments, err := loader.NextStep(s.BatchTokens, s.SeqLen, s.SeqLen)
		check(err)
		batches, err := train.SplitStep(inputs, targets, s.SeqLen, accum)
		check(err)
		n := len(inputs) / accum
		for i := range batches {
			batches[i].Segments = segments[i*n : (i+1)*n]
		}
		loss, err := trainer.Step(ctx, batches, schedule.LRScale(step, elapsed), momentum.At(step))
		check(err)
		step++
		if step%s.LogEvery == 0 {
			fmt.Printf("step:%d train_loss:%.4f elapsed:%s\n", step, loss, time.Since(start).Round(time.Second))
		}
		if schedule.MaxTime > 0 && time.Since(start) >= schedule.MaxTime {
			break
		}
	}

	// ---- The EMA replaces the weights; evaluate it on the whole split.
	weights, err := trainer.EMAWeights()
	check(err)
	check(trainer.SetWeights(weights))
	res, err := trainer.Evaluate(ctx, val, tok.ByteTable(), train.EvalOptions{SeqLen: s.SeqLen})
	check(err)
	fmt.Printf("ema val_loss:%.4f val_bpb:%.4f over %d tokens\n", res.ValLoss, res.ValBPB, res.Tokens)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		os.Exit(1)
	}
}
