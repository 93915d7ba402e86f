package main

import (
	"context"
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
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "pack",
		summary: "quantize and compress a checkpoint into a challenge artifact, with its size accounting",
		run:     runPack,
	})
}

// packSource is what golf pack quantizes: weights with the metadata the
// artifact stores (model config, evaluation settings).
type packSource struct {
	name    string
	weights model.Weights
	meta    quant.Meta
	run     *evalSource // the checkpoint's model, settings and data; nil for synthetic weights
	// syntheticHessians, for synthetic weights, gives GPTQ made-up
	// Hessians when no --hessians file is given.
	syntheticHessians func() (map[string]*quant.Hessian, error)
	// sourceEntropy, for synthetic weights, is bench.Config.SourceEntropy.
	sourceEntropy func(quant.Scheme, *quant.Quantized) (float64, bool)
}

// syntheticSource builds a packSource of synthetic weights; it is set by
// pack_synthetic.go, which is tooling (not counted as code).
var syntheticSource func(preset string) (*packSource, error)

func loadPackSource(checkpoint, synthetic string) (*packSource, error) {
	switch {
	case checkpoint != "" && synthetic != "":
		return nil, fmt.Errorf("%w: give --checkpoint or --synthetic, not both", errUsage)
	case synthetic != "":
		if syntheticSource == nil {
			return nil, fmt.Errorf("%w: this build has no synthetic weights", errUsage)
		}
		return syntheticSource(synthetic)
	case checkpoint == "":
		return nil, fmt.Errorf("%w: need --checkpoint DIR (or --synthetic PRESET)", errUsage)
	}
	run, err := loadCheckpointSource(checkpoint)
	if err != nil {
		return nil, err
	}
	return &packSource{name: checkpoint, weights: run.weights, meta: artifactMeta(run.cfg, run.settings, "checkpoint "+checkpoint), run: run}, nil
}

// artifactMeta is the metadata golf pack stores for a model trained with
// settings s.
func artifactMeta(cfg model.Config, s train.Settings, source string) quant.Meta {
	return golf.SettingsMeta(cfg, s, source)
}

// hessians returns GPTQ's Hessians for this source (see hessianFlags.load);
// calibration reads the run's training shards, or dataDir.
func (p *packSource) hessians(ctx context.Context, env *cliEnv, h hessianFlags, dataDir, backendSpec string, need bool) (map[string]*quant.Hessian, error) {
	if p.run == nil && need && *h.path == "" && p.syntheticHessians != nil {
		fmt.Fprintln(env.stderr, "calibration: synthetic weights, synthetic GPTQ Hessians")
		return p.syntheticHessians()
	}
	if p.run == nil || !need || *h.path != "" {
		return h.load(ctx, env.stderr, need, p.run, "", backendSpec)
	}
	// The run's own Hessians, collected inside its training budget.
	if runFile := filepath.Join(filepath.Dir(filepath.Clean(p.run.dir)), runHessiansFile); *h.calibrate > 0 && isFile(runFile) {
		fmt.Fprintf(env.stderr, "calibration: the run's GPTQ Hessians from %s (collected inside its training budget)\n", runFile)
		*h.path = runFile
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
// dequantized weights (the config's parameters, with classes and
// initialisers) and the evaluation settings golf pack stored with them.
func loadArtifactSource(path string) (*evalSource, error) {
	a, err := quant.ReadArtifact(path)
	if err != nil {
		return nil, err
	}
	cfg, w, err := a.Model()
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", path, err)
	}
	st := a.Meta.Settings
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
	FP16Bytes    int     `json:"fp16_remainder_bytes"`
	FP32Bytes    int     `json:"fp32_remainder_bytes"`
	SideBytes    int     `json:"side_symbol_bytes"`
	OrderBytes   int     `json:"row_order_bytes"`
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

// packFlags are the packing options golf pack and golf bench compress share.
type packFlags struct {
	layout, group *string
	sortRows      *bool
	maxStream     *int
}

func addPackFlags(fs interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
	Int(name string, value int, usage string) *int
}) packFlags {
	return packFlags{
		maxStream: fs.Int("max-stream-symbols", 0, "with --group class: split a class into streams of whole tensors of at most this many symbols, decoded in parallel (0 = one stream per class)"),
		layout:    fs.String("layout", "rows", "symbol layout: rows, cols (transposed) or packed"),
		group:     fs.String("group", "tensor", "symbol streams: tensor (one per int tensor) or class (one per parameter class, the record's per-group streams)"),
		sortRows:  fs.Bool("sort-rows", false, "store each matrix's rows in greedy similarity order (the record's L1 sort; costs log2(rows!) bits per matrix)"),
	}
}

func (f packFlags) options(codecName string) (quant.PackOptions, error) {
	layout, err := quant.ParseLayout(*f.layout)
	if err != nil {
		return quant.PackOptions{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	group, err := quant.ParseGrouping(*f.group)
	if err != nil {
		return quant.PackOptions{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if *f.maxStream < 0 {
		return quant.PackOptions{}, fmt.Errorf("%w: --max-stream-symbols must be >= 0, got %d", errUsage, *f.maxStream)
	}
	if *f.maxStream > 0 && group != quant.GroupClass {
		return quant.PackOptions{}, fmt.Errorf("%w: --max-stream-symbols splits class streams: it needs --group class", errUsage)
	}
	return quant.PackOptions{Codec: codecName, Layout: layout, Group: group, SortRows: *f.sortRows, MaxStreamSymbols: *f.maxStream}, nil
}

func runPack(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "pack", "")
	ckpt := fs.String("checkpoint", "", "checkpoint directory written by golf train")
	synthetic := fs.String("synthetic", "", "pack synthetic weights of a model preset (e.g. record) instead of a checkpoint")
	schemeName := fs.String("scheme", "int6-sd", "quantization scheme (golf bench compress lists them; record is PR #2135's, int8-ref the challenge reference)")
	codecName := fs.String("codec", quant.AutoCodec, "codec for every stream, or auto: the smallest per stream")
	pf := addPackFlags(fs)
	autoLayout := fs.Bool("auto-layout", false, "with --codec auto, also try column-major symbols per stream")
	out := fs.String("out", "", "artifact path (default: model.golf in the checkpoint directory, or synthetic-PRESET.golf)")
	allowOver := fs.Bool("allow-over-budget", false, "write the artifact even if model + code bytes exceed 16,000,000")
	outf := addOutputFlags(fs)
	verbose := fs.Bool("v", false, "list every stream and the counted code per package")
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
	if *codecName != quant.AutoCodec {
		if _, err := codec.ByName(*codecName); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	popts, err := pf.options(*codecName)
	if err != nil {
		return err
	}
	popts.AutoLayout = *autoLayout
	src, err := loadPackSource(*ckpt, *synthetic)
	if err != nil {
		return err
	}
	var log io.Writer = env.stderr
	if outf.quiet {
		log = io.Discard
	}
	hessians, err := src.hessians(ctx, &cliEnv{stdin: env.stdin, stdout: env.stdout, stderr: log}, hess, *dataDir, *backendSpec, scheme.UsesGPTQ())
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
	var packed *quant.Packed
	if src.run != nil {
		// A checkpoint goes through the library's one call, with the
		// Hessians the flags chose.
		if packed, err = golf.PackCheckpoint(ctx, *ckpt, scheme, golf.PackOptions{Hessians: hessians, Pack: popts}); err != nil {
			return err // names the checkpoint
		}
	} else if packed, err = quant.PackModel(ctx, src.meta, src.weights, scheme, quant.Options{Hessians: hessians}, popts); err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	rep := packed.Report
	code, err := quant.MeasureCode(golf.Source())
	if err != nil {
		return err
	}
	size := quant.NewSizeReport(len(packed.Bytes), code)
	res := packResult{Source: src.name, Out: path, Scheme: scheme.Name, Params: rep.Params, Size: size,
		Payload: payloadSummary{HeaderBytes: rep.HeaderBytes, SymbolBytes: rep.SymbolBytes, FP16Bytes: rep.FP16Bytes,
			FP32Bytes: rep.FP32Bytes, SideBytes: rep.SideBytes, OrderBytes: rep.OrderBytes, Order0Bytes: rep.Order0Bytes,
			BitsPerParam: rep.BitsPerParam(), Seconds: rep.Seconds}}
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
	} else if err := quant.WriteArtifact(path, packed.Bytes); err != nil {
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
	t.Add("header (metadata, tensor and stream tables)", rep.HeaderBytes)
	t.Add(fmt.Sprintf("symbols (order-0 bound %.0f)", rep.Order0Bytes), rep.SymbolBytes)
	t.Add("fp16 remainder (scales, small tensors)", rep.FP16Bytes)
	t.Add("fp32 remainder", rep.FP32Bytes)
	t.Add("side symbols (LQER, protected groups)", rep.SideBytes)
	t.Add("row orders", rep.OrderBytes)
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
		if err := res.Size.Code.Table().Print(w); err != nil {
			return err
		}
	}
	return res.Size.Table().Print(w)
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
