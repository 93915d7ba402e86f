package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "pack",
		summary: "quantize and compress a checkpoint into a challenge artifact, with its size accounting",
		run:     runPack,
	})
}

// artifactMeta is the configuration golf pack stores in an artifact: the
// model config, and the run settings evaluation needs, so that
// `golf eval --artifact` works from the artifact alone.
type artifactMeta struct {
	Model    json.RawMessage `json:"model"`
	Settings evalSettings    `json:"settings"`
}

// evalSettings are the training settings that evaluation defaults come from.
type evalSettings struct {
	Preset          string `json:"preset,omitempty"`
	SeqLen          int    `json:"seq_len"`
	EvalStride      int    `json:"eval_stride,omitempty"`
	EvalBatchTokens int    `json:"eval_batch_tokens,omitempty"`
	ValTokens       int    `json:"val_tokens,omitempty"`
}

// packSource is what golf pack quantizes: weights with their stored config.
type packSource struct {
	name    string
	weights model.Weights
	meta    []byte      // artifact config JSON
	run     *evalSource // the checkpoint's model, settings and data; nil for synthetic weights
}

func loadPackSource(checkpoint, synthetic string) (*packSource, error) {
	switch {
	case checkpoint != "" && synthetic != "":
		return nil, fmt.Errorf("%w: give --checkpoint or --synthetic, not both", errUsage)
	case synthetic != "":
		w, err := quant.SyntheticWeights(synthetic, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		meta, _ := json.Marshal(map[string]string{"synthetic": synthetic})
		return &packSource{name: "synthetic " + synthetic, weights: w, meta: meta}, nil
	case checkpoint == "":
		return nil, fmt.Errorf("%w: need --checkpoint DIR (or --synthetic baseline|tiny)", errUsage)
	}
	run, err := loadCheckpointSource(checkpoint)
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(run.cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: encode config: %w", checkpoint, err)
	}
	s := run.settings
	meta, err := json.Marshal(artifactMeta{Model: cfg, Settings: evalSettings{
		Preset: s.Preset, SeqLen: s.SeqLen, EvalStride: s.EvalStride, EvalBatchTokens: s.EvalBatchTokens, ValTokens: s.ValTokens,
	}})
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: encode artifact config: %w", checkpoint, err)
	}
	return &packSource{name: checkpoint, weights: run.weights, meta: meta, run: run}, nil
}

// hessians returns GPTQ's Hessians for this source (see hessianFlags.load);
// calibration reads the run's training shards, or dataDir.
func (p *packSource) hessians(ctx context.Context, env *cliEnv, h hessianFlags, dataDir, backendSpec string, need bool) (map[string]*quant.Hessian, error) {
	if p.run == nil || !need || *h.path != "" {
		return h.load(ctx, env.stderr, need, p.run, "", backendSpec)
	}
	_, check, err := evalData(ctx, "", dataDir, p.run)
	if err != nil {
		return nil, err
	}
	dir := check.Dir
	return h.load(ctx, env.stderr, need, p.run, dir, backendSpec)
}

// loadArtifactSource reads an artifact for evaluation: its model config,
// dequantized weights (checked against the config's parameters) and the
// evaluation settings golf pack stored with them.
func loadArtifactSource(path string) (*evalSource, error) {
	a, err := quant.ReadArtifact(path)
	if err != nil {
		return nil, err
	}
	var meta artifactMeta
	dec := json.NewDecoder(bytes.NewReader(a.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta); err != nil || len(meta.Model) == 0 {
		return nil, fmt.Errorf("artifact %s: config is not a golf pack model config (was it packed from --synthetic weights?): %v", path, err)
	}
	var cfg model.Config
	dec = json.NewDecoder(bytes.NewReader(meta.Model))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("artifact %s: model config: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("artifact %s: model config: %w", path, err)
	}
	w := a.Weights()
	if err := model.CheckOrderedWeights(cfg, w); err != nil {
		return nil, fmt.Errorf("artifact %s: %w", path, err)
	}
	model.Annotate(cfg, w)
	st := meta.Settings
	return &evalSource{name: path, cfg: cfg, weights: w, settings: train.Settings{
		Preset: st.Preset, SeqLen: st.SeqLen, EvalStride: st.EvalStride, EvalBatchTokens: st.EvalBatchTokens, ValTokens: st.ValTokens,
	}}, nil
}

// packResult is golf pack's JSON output.
type packResult struct {
	Source  string           `json:"source"`
	Out     string           `json:"out,omitempty"`
	Written bool             `json:"written"`
	Scheme  string           `json:"scheme"`
	Params  int              `json:"params"`
	Size    quant.SizeReport `json:"size"`
	Payload payloadSummary   `json:"payload"`
	Streams []streamSummary  `json:"streams"`
}

type payloadSummary struct {
	HeaderBytes  int     `json:"header_bytes"`
	SymbolBytes  int     `json:"symbol_bytes"`
	ScaleBytes   int     `json:"scale_bytes"`
	FloatBytes   int     `json:"float_bytes"`
	Order0Bytes  float64 `json:"symbols_order0_bound_bytes"`
	BitsPerParam float64 `json:"bits_per_param"`
	Seconds      float64 `json:"seconds"`
}

type streamSummary struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Codec  string `json:"codec"`
	Layout string `json:"layout,omitempty"`
	Raw    int    `json:"raw_bytes"`
	Bytes  int    `json:"bytes"`
}

func runPack(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "pack", "")
	ckpt := fs.String("checkpoint", "", "checkpoint directory written by golf train")
	synthetic := fs.String("synthetic", "", "pack synthetic weights of a preset (baseline or tiny) instead of a checkpoint")
	schemeName := fs.String("scheme", "int6-sd", "quantization scheme (golf bench compress lists them; int8-ref is the challenge reference)")
	codecName := fs.String("codec", quant.AutoCodec, "codec for every stream, or auto: the smallest per stream")
	layoutName := fs.String("layout", "rows", "symbol layout: rows, cols or packed")
	autoLayout := fs.Bool("auto-layout", false, "with --codec auto, also try column-major symbols per tensor")
	out := fs.String("out", "", "artifact path (default: model.golf in the checkpoint directory, or synthetic-PRESET.golf)")
	allowOver := fs.Bool("allow-over-budget", false, "write the artifact even if model + code bytes exceed 16,000,000")
	outf := addOutputFlags(fs)
	verbose := fs.Bool("v", false, "list every stream")
	dataDir := fs.String("data", "", "training shards for GPTQ calibration (default: the run's own data, else the embedded corpus)")
	hess := addHessianFlags(fs)
	backendSpec := fs.String("backend", "", "compute backend for GPTQ calibration: go, cuda, or a gomlx spec")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	scheme, err := quant.SchemeByName(*schemeName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	layout, err := quant.ParseLayout(*layoutName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	src, err := loadPackSource(*ckpt, *synthetic)
	if err != nil {
		return err
	}
	hessians, err := src.hessians(ctx, env, hess, *dataDir, *backendSpec, scheme.UsesGPTQ())
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = "synthetic-" + *synthetic + ".golf"
		if *ckpt != "" {
			path = filepath.Join(*ckpt, "model.golf")
		}
	}
	// One writer per folder; holding it, a killed pack's temporary
	// artifact can go.
	lock, err := outlock.Acquire(filepath.Dir(path), strings.Join(os.Args, " "))
	if err != nil {
		return err
	}
	defer lock.Release()
	if stale, err := atomicfile.RemoveStale(path); err != nil {
		return err
	} else if len(stale) > 0 {
		fmt.Fprintf(env.stderr, "golf pack: removed %d temporary file(s) a killed pack left: %s\n", len(stale), strings.Join(stale, ", "))
	}
	q, err := quant.Quantize(ctx, src.weights, scheme, quant.Options{Hessians: hessians})
	if err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	data, rep, err := quant.Pack(ctx, src.meta, q, quant.PackOptions{Codec: *codecName, Layout: layout, AutoLayout: *autoLayout})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	code, err := quant.MeasureCode(golf.Source())
	if err != nil {
		return err
	}
	size := quant.NewSizeReport(len(data), code)
	res := packResult{Source: src.name, Out: path, Scheme: scheme.Name, Params: rep.Params, Size: size,
		Payload: payloadSummary{HeaderBytes: rep.HeaderBytes, SymbolBytes: rep.SymbolBytes, ScaleBytes: rep.ScaleBytes,
			FloatBytes: rep.FloatBytes, Order0Bytes: rep.Order0Bytes, BitsPerParam: rep.BitsPerParam(), Seconds: rep.Seconds}}
	for _, s := range rep.Streams {
		ss := streamSummary{Name: s.Name, Kind: s.Kind.String(), Codec: s.Codec, Raw: s.Raw, Bytes: s.Size}
		if s.Kind == quant.StreamSymbols {
			ss.Layout = s.Layout.String()
		}
		res.Streams = append(res.Streams, ss)
	}
	var writeErr error
	if size.OverBudget() && !*allowOver {
		writeErr = fmt.Errorf("not written: %s is %d bytes over the %d-byte budget (model %d + code %d = %d); use --allow-over-budget to write it anyway",
			path, -size.Margin, quant.Budget, size.ModelBytes, size.Code.Bytes, size.TotalBytes)
	} else if err := quant.WriteArtifact(path, data); err != nil {
		return err
	} else {
		res.Written = true
	}
	if err := outf.emit(env, &res, func(w io.Writer) error { return printPack(w, &res, rep, *verbose) }); err != nil {
		return err
	}
	return writeErr
}

func printPack(w io.Writer, res *packResult, rep *quant.PackReport, verbose bool) error {
	fmt.Fprintf(w, "golf pack: %s, scheme %s, %d parameters -> %s (%.3f bits/param)\n",
		res.Source, res.Scheme, res.Params, res.Out, rep.BitsPerParam())
	t := report.NewTable("payload", "part", "bytes")
	t.Add("header", rep.HeaderBytes)
	t.Add(fmt.Sprintf("symbols (order-0 bound %.0f)", rep.Order0Bytes), rep.SymbolBytes)
	t.Add("scales", rep.ScaleBytes)
	t.Add("floats", rep.FloatBytes)
	t.Add("checksum", 4)
	if err := t.Print(w); err != nil {
		return err
	}
	if verbose {
		st := report.NewTable("streams", "stream", "kind", "codec", "layout", "raw", "bytes")
		for _, s := range res.Streams {
			st.Add(s.Name, s.Kind, s.Codec, s.Layout, s.Raw, s.Bytes)
		}
		if err := st.Print(w); err != nil {
			return err
		}
	}
	return res.Size.Table().Print(w)
}
