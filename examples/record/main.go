// Command record trains a model with the final record's stack (PR #2135,
// val_bpb 1.0565 on 8xH100) through golf's public API, top to bottom like
// the record's train_gpt.py: the model's techniques, documents packed with
// attention kept inside each, Polar-Express Muon with row normalisation,
// weight decay and clipping, the warm-down over a fraction of the run, depth
// recurrence switched on part-way, and the EMA of the weights; then, as the
// record's script goes on after training: GPTQ Hessians from training data,
// the record's quantization scheme, the artifact with per-class streams and
// similarity-sorted rows and its size against the 16,000,000-byte budget,
// the artifact read back, and score-first LoRA test-time training with the
// n-gram tilt on the round-tripped model.
//
// By default it runs the record's techniques at the tiny size on the
// embedded corpus, on the CPU (a few minutes):
//
//	go run ./examples/record
//	go run ./examples/record -preset record -data DIR -backend cuda -eval-tokens 0   # the record itself, on a GPU
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paramgolf/golf"
	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func main() {
	preset := flag.String("preset", "tiny-record", "tiny-record (CPU) or record (PR #2135's model and settings)")
	dataDir := flag.String("data", "", "shard directory; default: the embedded corpus")
	tokPath := flag.String("tokenizer", "", "the shards' SentencePiece model; default: the embedded sp1024")
	backendSpec := flag.String("backend", "go", "go (CPU) or cuda")
	calibTokens := flag.Int("calib-tokens", 16384, "training tokens for GPTQ's Hessians")
	evalTokens := flag.Int("eval-tokens", 4096, "validation tokens each evaluation scores, from the split's start (0: the whole split, as the record)")
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

	// ---- The EMA replaces the weights; evaluate it. Every evaluation below
	// scores the same validation tokens (on the CPU a prefix of the split).
	weights, err := trainer.EMAWeights()
	check(err)
	check(trainer.SetWeights(weights))
	tokens := val
	if *evalTokens > 0 && *evalTokens+1 < len(tokens) {
		tokens = tokens[:*evalTokens+1]
	}
	res, err := trainer.Evaluate(ctx, tokens, tok.ByteTable(), train.EvalOptions{SeqLen: s.SeqLen, Progress: os.Stdout})
	check(err)
	fmt.Printf("ema val_loss:%.4f val_bpb:%.4f over %d tokens\n", res.ValLoss, res.ValBPB, res.Tokens)

	// ---- GPTQ calibration: Hessians of the EMA model's activations over
	// training tokens (never validation data).
	calLoader, err := data.NewLoader(trainFiles, 0, 1)
	check(err)
	defer calLoader.Close()
	hessians, calib, err := quant.Calibrate(ctx, backend, cfg, weights, quant.LoaderSource{Loader: calLoader},
		quant.CalibrateOptions{SeqLen: s.SeqLen, MaxTokens: max(*calibTokens/s.SeqLen, 1) * s.SeqLen, Progress: os.Stdout})
	check(err)
	fmt.Printf("gptq:calibration tokens:%d time:%.1fs\n", calib.Tokens, calib.Seconds)

	// ---- Quantize and compress: the record's per-class scheme (int6
	// matrices, int7 embedding, SD clips, LQER; small tensors in fp16),
	// one stream per class, rows in similarity order.
	scheme, err := quant.SchemeByName("record")
	check(err)
	packed, err := quant.PackModel(ctx, quant.Meta{Model: cfg, Source: "examples/record"}, weights, scheme,
		quant.Options{Hessians: hessians}, quant.PackOptions{Group: quant.GroupClass, SortRows: true})
	check(err)
	code, err := quant.MeasureCode(golf.Source())
	check(err)
	total := len(packed.Bytes) + code.Bytes
	fmt.Printf("artifact model_bytes:%d code_bytes:%d total:%d budget:%d fits:%v\n",
		len(packed.Bytes), code.Bytes, total, quant.Budget, total <= quant.Budget)
	path := filepath.Join(os.TempDir(), "golf-example-record.golf")
	check(packed.WriteFile(path))

	// ---- Read the artifact back: the model config and dequantized weights
	// come from the file alone.
	art, err := quant.ReadArtifact(path)
	check(err)
	rcfg, rweights, err := art.Model()
	check(err)
	evaluator, err := eval.New(backend, rcfg, rweights)
	check(err)
	defer evaluator.Close()
	bytesRule := eval.TableBytes(tok.ByteTable())
	plain, err := evaluator.Evaluate(ctx, tokens, bytesRule, eval.Options{SeqLen: s.SeqLen, Progress: os.Stdout})
	check(err)
	fmt.Printf("quantized val_loss:%.4f val_bpb:%.4f over %d tokens\n", plain.ValLoss, plain.ValBPB, plain.Tokens)

	// ---- Score-first phased LoRA test-time training with the n-gram tilt,
	// the record's settings: each chunk is scored before the adapters
	// train on it.
	ttt, tilt := eval.RecordTTT(), eval.RecordTilt()
	scored, err := evaluator.Evaluate(ctx, tokens, bytesRule, eval.Options{SeqLen: s.SeqLen, TTT: &ttt, Tilt: &tilt, Progress: os.Stdout})
	check(err)
	fmt.Printf("quantized_ttt val_loss:%.4f val_bpb:%.4f over %d tokens in %s\n",
		scored.ValLoss, scored.ValBPB, scored.Tokens, scored.Duration.Round(time.Second))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		os.Exit(1)
	}
}
