package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/train"
	"github.com/paramgolf/golf/train/ablate"
)

func init() {
	register(&command{
		name:    "bench ablate",
		summary: "train the full stack and the stack without each technique: val_bpb, delta, parameters, ms/step, artifact bytes",
		run:     runBenchAblate,
	})
}

// ablateResult is golf bench ablate's JSON output.
type ablateResult struct {
	Preset string  `json:"preset,omitempty"`
	Config string  `json:"config,omitempty"`
	Scheme string  `json:"scheme"`
	Steps  int     `json:"steps,omitempty"`
	MaxSec float64 `json:"max_seconds,omitempty"`
	// ValTokens is the validation cap every variant was scored on (0: the
	// whole split).
	ValTokens int             `json:"val_tokens"`
	Rows      []ablate.Row    `json:"rows"`
	Base      train.RunConfig `json:"base"`
}

func runBenchAblate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench ablate", "")
	preset := fs.String("preset", "", "run preset to ablate (default tiny-record)")
	configPath := fs.String("config", "", "run configuration JSON file to ablate instead of a preset")
	steps := fs.Int("steps", 0, "train every variant for exactly this many steps (no wall-clock cap)")
	maxSeconds := fs.Float64("max-seconds", -1, "wall-clock training budget of every variant (default: the preset's)")
	valTokens := fs.Int("val-tokens", -1, "validation tokens every variant is scored on (default: the preset's periodic cap, val_tokens; 0 = the whole split)")
	options := fs.String("options", "", "comma-separated techniques to switch off (+name adds one the record dropped); default: every technique the stack uses")
	dataDir := fs.String("data", "", "shard directory (default: the embedded corpus)")
	outDir := fs.String("out", "", "directory for the variants' runs (default runs/ablate-<time>)")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec")
	schemeName := fs.String("scheme", "int6-sd", "quantization scheme for the artifact-bytes column; \"\" skips it")
	asJSON := fs.Bool("json", false, "print JSON instead of the table")
	jsonOut := fs.String("json-out", "", "also write the JSON to this file")
	pngOut := fs.String("png", "", "write the deltas as a bar chart PNG")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	var base train.RunConfig
	var err error
	switch {
	case *preset != "" && *configPath != "":
		return fmt.Errorf("%w: give --preset or --config, not both", errUsage)
	case *configPath != "":
		base, err = train.LoadRunConfig(*configPath)
	default:
		name := *preset
		if name == "" {
			name = "tiny-record"
		}
		base, err = train.PresetRunConfig(name)
		if err != nil {
			err = fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if err != nil {
		return err
	}
	switch {
	case *steps < 0:
		return fmt.Errorf("%w: --steps must not be negative", errUsage)
	case *steps > 0 && *maxSeconds >= 0:
		return fmt.Errorf("%w: give --steps or --max-seconds, not both", errUsage)
	case *steps > 0:
		// A fixed step count: the schedule spans exactly those steps.
		base.Settings.Iterations, base.Settings.MaxSeconds = *steps, 0
		base.Settings.ValEvery = 0
		if base.Settings.Warmdown > *steps {
			base.Settings.Warmdown = *steps / 2
		}
	case *maxSeconds >= 0:
		base.Settings.MaxSeconds = *maxSeconds
	}
	switch {
	case *valTokens < -1:
		return fmt.Errorf("%w: --val-tokens must not be negative", errUsage)
	case *valTokens == -1:
		*valTokens = base.Settings.ValTokens
	}
	var names []string
	if *options != "" {
		names = splitList(*options)
	}
	if *outDir == "" {
		*outDir = filepath.Join("runs", "ablate-"+time.Now().Format("20060102-150405"))
	}
	var scheme *quant.Scheme
	if *schemeName != "" {
		s, err := quant.SchemeByName(*schemeName)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if s.UsesGPTQ() {
			return fmt.Errorf("%w: --scheme %s needs calibration; the ablation packs without it (choose a scheme without GPTQ)", errUsage, s.Name)
		}
		scheme = &s
	}
	var progress io.Writer = env.stderr
	if *quiet {
		progress = nil
	}
	rows, err := ablate.Run(ctx, ablate.Options{
		Base: base, Techniques: names, DataDir: *dataDir, BackendSpec: *backendSpec, OutDir: *outDir,
		ValTokens: *valTokens, CacheDir: filepath.Join(*outDir, "data"), ArtifactBytes: artifactBytes(ctx, scheme), Progress: progress,
	})
	if err != nil {
		return err
	}
	res := ablateResult{Preset: *preset, Config: *configPath, Steps: *steps, ValTokens: *valTokens, Rows: rows, Base: base}
	if scheme != nil {
		res.Scheme = scheme.Name
	}
	if *maxSeconds >= 0 {
		res.MaxSec = *maxSeconds
	}
	if *pngOut != "" {
		title := fmt.Sprintf("golf bench ablate %s: full stack %.4f bpb", base.Model.Name, rows[0].ValBPB)
		if err := ablate.Plot(*pngOut, title, rows); err != nil {
			return err
		}
	}
	if *jsonOut != "" {
		if err := report.SaveJSON(*jsonOut, res); err != nil {
			return err
		}
	}
	if *asJSON {
		return report.WriteJSON(env.stdout, res)
	}
	t := report.NewTable(fmt.Sprintf("ablation of %s (%s): each row is the full stack without one technique", base.Model.Name, budgetString(base.Settings)),
		"variant", "val_bpb", "delta", "params", "steps", "ms/step", "artifact bytes")
	for _, r := range rows {
		delta := fmt.Sprintf("%+.4f", r.Delta)
		if r.Variant == "full" {
			delta = "-"
		}
		bytes := "-"
		if r.ArtifactBytes > 0 {
			bytes = fmt.Sprint(r.ArtifactBytes)
		}
		t.Add(r.Variant, r.ValBPB, delta, r.Params, r.Steps, fmt.Sprintf("%.0f", r.StepMs), bytes)
	}
	if err := t.Print(env.stdout); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "delta > 0: val_bpb rose without the technique (it helps); runs under", *outDir)
	return nil
}

func budgetString(s train.Settings) string {
	if s.MaxSeconds > 0 {
		return fmt.Sprintf("%g s each", s.MaxSeconds)
	}
	return fmt.Sprintf("%d steps each", s.Iterations)
}

// artifactBytes returns the ablation's artifact measure: the checkpoint's
// weights quantized with scheme and packed with the automatic codec (no
// file written), or nil when scheme is nil.
func artifactBytes(ctx context.Context, scheme *quant.Scheme) func(model.Config, string) (int64, error) {
	if scheme == nil {
		return nil
	}
	return func(cfg model.Config, dir string) (int64, error) {
		ck, err := train.LoadCheckpoint(dir)
		if err != nil {
			return 0, err
		}
		p, err := quant.PackModel(ctx, quant.Meta{Model: cfg}, ck.Weights, *scheme, quant.Options{}, quant.PackOptions{Codec: "auto"})
		if err != nil {
			return 0, err
		}
		return int64(len(p.Bytes)), nil
	}
}
