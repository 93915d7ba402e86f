package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "bench train",
		summary: "time optimizer steps (ms/step, tokens/s, compile time) for the presets",
		run:     runBenchTrain,
	})
}

// pytorchH100StepMs is the anchor for the baseline on a GPU: the challenge's
// PyTorch train_gpt.py, unchanged, on one H100 (8 accumulation steps of
// 65,536 tokens), measured on the lent machine (shared notes, measured-here).
const pytorchH100StepMs = 355.0

func runBenchTrain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench train", "")
	presets := fs.String("preset", "", "comma-separated presets (default: tiny on the CPU, tiny,baseline on a GPU)")
	steps := fs.Int("steps", 5, "timed optimizer steps per preset")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec")
	batchTokens := fs.Int("batch-tokens", 0, "tokens per step (default: the preset's)")
	microTokens := fs.Int("micro-batch-tokens", 0, "tokens per micro-batch (default: automatic)")
	seqLen := fs.Int("seq-len", 0, "sequence length (default: the preset's)")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *steps < 1 || fs.NArg() > 0 {
		return fmt.Errorf("%w: --steps must be >= 1 and no arguments are taken", errUsage)
	}
	backend, desc, err := compute.Open(*backendSpec)
	if err != nil {
		return err
	}
	names := *presets
	if names == "" {
		names = "tiny"
		if !compute.IsPureGo(compute.Resolve(*backendSpec)) {
			names = "tiny,baseline"
		}
	}
	var results []train.BenchResult
	for _, name := range strings.Split(names, ",") {
		cfg, s, err := train.PresetSettings(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if *seqLen > 0 {
			s.SeqLen = *seqLen
		}
		if *batchTokens > 0 {
			s.BatchTokens = *batchTokens
		}
		s.MicroBatchTokens = *microTokens
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		r, err := train.Bench(ctx, backend, cfg, s, *steps, outf.progress(env))
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return outf.emit(env, results, func(w io.Writer) error { return printBenchTrain(w, desc, results, *backendSpec) })
}

// printBenchTrain prints golf bench train's table.
func printBenchTrain(w io.Writer, desc string, results []train.BenchResult, backendSpec string) error {
	t := report.NewTable("golf bench train: "+desc, "preset", "params", "batch", "micro x accum", "compile ms", "ms/step", "min", "max", "tokens/s", "model TFLOP/s")
	for _, r := range results {
		t.Add(r.Preset, r.Params, r.BatchTokens, fmt.Sprintf("%d x %d", r.MicroTokens, r.AccumSteps),
			fmt.Sprintf("%.0f", r.CompileMs), fmt.Sprintf("%.1f", r.StepMs), fmt.Sprintf("%.1f", r.StepMsMin),
			fmt.Sprintf("%.1f", r.StepMsMax), fmt.Sprintf("%.0f", r.TokensPerS), fmt.Sprintf("%.3g", r.ModelTFLOPs))
	}
	if err := t.Print(w); err != nil {
		return err
	}
	for _, r := range results {
		if r.Preset == "baseline" && r.BatchTokens == 524288 && !compute.IsPureGo(compute.Resolve(backendSpec)) {
			fmt.Fprintf(w, "baseline vs PyTorch train_gpt.py on one H100 (%.0f ms/step, measured separately): %.2fx its step time\n",
				pytorchH100StepMs, r.StepMs/pytorchH100StepMs)
		}
	}
	return nil
}
