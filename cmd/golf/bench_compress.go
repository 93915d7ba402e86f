package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/tokenizer"
)

func init() {
	register(&command{
		name:    "bench compress",
		summary: "compare quantization schemes and codecs: bytes, bits/param, speed, val_bpb cost",
		run:     runBenchCompress,
	})
}

func runBenchCompress(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench compress", "")
	ckpt := fs.String("checkpoint", "", "checkpoint directory (adds the post-round-trip val_bpb delta)")
	synthetic := fs.String("synthetic", "", "synthetic weights of a preset: baseline or tiny (default tiny without --checkpoint)")
	dataDir := fs.String("data", "", "shard directory with fineweb_val_*.bin for the val_bpb column; default: the embedded corpus")
	tokPath := fs.String("tokenizer", "", "SentencePiece .model of the shards (default: the embedded sp1024)")
	valTokens := fs.Int("val-tokens", -1, "cap on validation tokens; 0 = all (default: the run's)")
	backendSpec := fs.String("backend", "", "compute backend for evaluation: go, cuda, or a gomlx spec")
	schemes := fs.String("schemes", "", "comma-separated scheme names (default: all; GPTQ ones with a checkpoint or --hessians)")
	codecs := fs.String("codecs", strings.Join(quant.DefaultBenchCodecs, ","), "comma-separated codecs (auto = smallest per stream)")
	layouts := fs.String("layouts", "rows", "comma-separated symbol layouts: rows, cols, packed")
	outf := addOutputFlags(fs)
	pngPath := fs.String("png", "", "plot model bytes against val_bpb delta (or weight error) to this PNG")
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
	cfg := quant.BenchConfig{Progress: outf.progress(env)}
	for _, name := range splitList(*schemes) {
		s, err := quant.SchemeByName(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Schemes = append(cfg.Schemes, s)
	}
	for _, name := range splitList(*codecs) {
		if name != quant.AutoCodec {
			if _, err := codec.ByName(name); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		cfg.Codecs = append(cfg.Codecs, name)
	}
	for _, name := range splitList(*layouts) {
		l, err := quant.ParseLayout(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Layouts = append(cfg.Layouts, l)
	}
	src, err := loadPackSource(*ckpt, *synthetic)
	if err != nil {
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
		if cfg.Options.Hessians, err = hess.load(ctx, env.stderr, needGPTQ, nil, "", *backendSpec); err != nil {
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
		if cfg.Options.Hessians, err = hess.load(ctx, env.stderr, needGPTQ, src.run, dir, *backendSpec); err != nil {
			return err
		}
	}
	res, err := quant.Bench(ctx, src.weights, cfg)
	if err != nil {
		return err
	}
	if *pngPath != "" {
		if err := res.SavePNG(*pngPath); err != nil {
			return err
		}
	}
	return outf.emit(env, res, func(w io.Writer) error {
		fmt.Fprintf(w, "golf bench compress: %s\n", src.name)
		if *ckpt == "" {
			fmt.Fprintln(w, "synthetic weights: sizes show how schemes and codecs rank, not what a trained model weighs; no val_bpb")
		}
		return res.Table().Print(w)
	})
}

// benchEvalFunc returns a function that scores weights of the run's model
// on the validation shards in dir, as golf eval does. One eval.Evaluator
// serves every scheme: its graph is compiled once and each call only loads
// new weights.
func benchEvalFunc(run *evalSource, dir string, tok *tokenizer.Model, backendSpec string, valTokens int) (quant.EvalFunc, error) {
	s := run.settings
	opts := eval.Options{SeqLen: s.SeqLen, Stride: s.EvalStride, BOS: tok.BOS()}
	if opts.SeqLen <= 0 {
		return nil, fmt.Errorf("checkpoint %s: no training sequence length in its settings", run.name)
	}
	limit := s.ValTokens
	if valTokens >= 0 {
		limit = valTokens
	}
	valFiles, err := data.ValFiles(dir)
	if err != nil {
		return nil, err
	}
	val, err := data.LoadValidation(valFiles, opts.SeqLen)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(val)-1 > limit {
		val = val[:max(limit/opts.SeqLen, 1)*opts.SeqLen+1]
	}
	backend, _, err := compute.Open(backendSpec)
	if err != nil {
		return nil, err
	}
	ev, err := eval.New(backend, run.cfg, run.weights)
	if err != nil {
		return nil, err
	}
	bytes := eval.TableBytes(tok.ByteTable())
	if data.HasValidationBytes(dir) {
		counts, err := data.LoadValidationBytes(dir, len(val))
		if err != nil {
			return nil, err
		}
		bytes = eval.SidecarBytes(counts)
	}
	return func(ctx context.Context, w model.Weights) (float64, error) {
		if err := ev.SetWeights(w); err != nil {
			return 0, err
		}
		res, err := ev.Evaluate(ctx, val, bytes, opts)
		if err != nil {
			return 0, err
		}
		return res.ValBPB, nil
	}, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
