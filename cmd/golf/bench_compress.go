package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/bench"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/tokenizer"
)

func init() {
	register(&command{
		name:    "bench compress",
		summary: "compare quantization schemes and codecs (and installed zstd, brotli, xz, lrzip, zpaq): bytes, bits/param, speed, val_bpb cost",
		run:     runBenchCompress,
	})
}

func runBenchCompress(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench compress", "")
	ckpt := fs.String("checkpoint", "", "checkpoint directory (adds the post-round-trip val_bpb delta)")
	synthetic := fs.String("synthetic", "", "synthetic weights of a model preset, e.g. tiny or record (default tiny without --checkpoint)")
	dataDir := fs.String("data", "", "shard directory with fineweb_val_*.bin for the val_bpb column; default: the run's, else the embedded corpus")
	tokPath := fs.String("tokenizer", "", "SentencePiece .model of the shards (default: the run's, else the embedded sp1024)")
	valTokens := fs.Int("val-tokens", -1, "cap on validation tokens; 0 = all (default: the run's)")
	backendSpec := fs.String("backend", "", "compute backend for evaluation and calibration: go, cuda, or a gomlx spec")
	schemes := fs.String("schemes", "", "comma-separated scheme names (default: all; GPTQ ones with a checkpoint or --hessians)")
	codecs := fs.String("codecs", strings.Join(bench.DefaultCodecs, ","), "comma-separated golf codecs (auto = smallest per stream)")
	externals := fs.Bool("externals", true, "add every installed reference compressor as a column ("+strings.Join(bench.GeneralPurpose, ", ")+"); --codecs may name them one by one")
	packings := fs.String("packings", "rows", "comma-separated packings: LAYOUT[/class][/sorted], e.g. rows,cols/class,cols/class/sorted")
	asJSON := fs.Bool("json", false, "print the result as JSON to stdout instead of the tables")
	jsonOut := fs.String("json-out", "", "also write the result as JSON to this file")
	pngPath := fs.String("png", "", "plot model bytes against val_bpb delta (or weight error) to this PNG")
	quiet := fs.Bool("quiet", false, "no progress lines")
	workers := fs.Int("workers", 0, "streams compressed at once (0 = all cores)")
	hess := addHessianFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if *ckpt == "" && *synthetic == "" {
		*synthetic = "tiny"
	}
	log := env.stderr
	if *quiet {
		log = io.Discard
	}
	cfg := bench.Config{Progress: log, Workers: *workers}
	for _, name := range splitList(*schemes) {
		s, err := quant.SchemeByName(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Schemes = append(cfg.Schemes, s)
	}
	// The installed external compressors are registered first, so --codecs
	// may name them too (e.g. --codecs cm,lrzip-z9 --externals=false).
	extNames, notes := bench.RegisterExternals()
	for _, name := range splitList(*codecs) {
		if name != quant.AutoCodec {
			if _, err := codec.ByName(name); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		cfg.Codecs = append(cfg.Codecs, name)
	}
	if *externals {
		for _, n := range extNames {
			if !slices.Contains(cfg.Codecs, n) {
				cfg.Codecs = append(cfg.Codecs, n)
			}
		}
		cfg.Notes = append(cfg.Notes, notes...)
	}
	for _, name := range splitList(*packings) {
		p, err := bench.ParsePacking(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Packings = append(cfg.Packings, p)
	}
	src, err := loadPackSource(*ckpt, *synthetic)
	if err != nil {
		return err
	}
	cfg.Meta = src.meta
	cfg.SourceEntropy = src.sourceEntropy
	if cfg.Code, err = quant.MeasureCode(golf.Source()); err != nil {
		return err
	}
	needGPTQ := false
	for _, s := range cfg.Schemes {
		needGPTQ = needGPTQ || s.UsesGPTQ()
	}
	if src.run == nil {
		if *dataDir != "" {
			return fmt.Errorf("%w: --data needs --checkpoint (synthetic weights have no val_bpb)", errUsage)
		}
		// Synthetic weights get synthetic Hessians, so GPTQ schemes run too.
		needGPTQ = needGPTQ || len(cfg.Schemes) == 0
		if cfg.Options.Hessians, err = src.hessians(ctx, &cliEnv{stderr: log}, hess, "", *backendSpec, needGPTQ); err != nil {
			return err
		}
	} else {
		tok, check, err := evalData(ctx, *tokPath, *dataDir, src.run)
		if err != nil {
			return err
		}
		dir := check.Dir
		if cfg.Eval, err = benchEvalFunc(src.run, dir, tok, *backendSpec, *valTokens); err != nil {
			return err
		}
		// With a checkpoint the default scheme list includes GPTQ: calibrate.
		needGPTQ = needGPTQ || len(cfg.Schemes) == 0
		if cfg.Options.Hessians, err = hess.load(ctx, log, needGPTQ, src.run, dir, *backendSpec); err != nil {
			return err
		}
	}
	res, err := bench.Run(ctx, src.weights, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := report.WriteJSON(env.stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.stdout, "golf bench compress: %s\n", src.name)
		if *ckpt == "" {
			fmt.Fprintln(env.stdout, "synthetic weights: sizes show how schemes and codecs rank, not what a trained model weighs; no val_bpb")
		}
		for _, n := range res.Notes {
			fmt.Fprintln(env.stdout, "note:", n)
		}
		if err := res.Table().Print(env.stdout); err != nil {
			return err
		}
		if len(res.Targets()) > 0 {
			if err := res.TargetTable().Print(env.stdout); err != nil {
				return err
			}
		}
	}
	if *pngPath != "" {
		if err := res.SavePNG(*pngPath); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		return report.SaveJSON(*jsonOut, res)
	}
	return nil
}

// benchEvalFunc returns a function that scores weights of the run's model
// on the validation shards in dir, as golf eval does.
func benchEvalFunc(run *evalSource, dir string, tok *tokenizer.Model, backendSpec string, valTokens int) (bench.EvalFunc, error) {
	s := run.settings
	opts := eval.Options{SeqLen: s.SeqLen, Stride: s.EvalStride, BOS: tok.BOS()}
	if opts.SeqLen <= 0 {
		return nil, fmt.Errorf("checkpoint %s: no training sequence length in its settings", run.name)
	}
	limit := s.ValTokens
	if valTokens >= 0 {
		limit = valTokens
	}
	stream, err := golf.LoadValidationStream(dir, tok, opts.SeqLen, limit)
	if err != nil {
		return nil, err
	}
	backend, _, err := compute.Open(backendSpec)
	if err != nil {
		return nil, err
	}
	ev, err := eval.New(backend, run.cfg, run.weights)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, w model.Weights) (float64, error) {
		if err := ev.SetWeights(w); err != nil {
			return 0, err
		}
		res, err := ev.Evaluate(ctx, stream.Tokens, stream.Bytes, opts)
		if err != nil {
			return 0, err
		}
		return res.ValBPB, nil
	}, nil
}
