// Package ablate is golf bench ablate: the record stack's techniques, each
// switchable off (or, for the add-ons the record dropped, on), and the runs
// that measure what each is worth against the full stack with the same
// seed, data and budget. It is tooling, outside the counted code.
package ablate

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/paramgolf/golf/internal/plotfile"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/train"
	"github.com/paramgolf/golf/train/lossplot"
)

// Technique is one switchable part of the record stack, as the ablation
// sees it: Off edits a run configuration so that the technique is not used
// (for the techniques the record dropped, On adds them instead).
type Technique struct {
	Name        string
	Description string
	// Applies reports whether the configuration uses the technique (Off
	// would change it), or for an add-on, whether it could be added.
	Applies func(train.RunConfig) bool
	// Edit switches the technique off (or an add-on on).
	Edit func(*train.RunConfig)
	// AddOn marks techniques the record does not use (BigramHash, value
	// embeddings): ablating them means adding them; their names take a
	// leading "+" in option lists.
	AddOn bool
}

// Techniques lists the techniques golf bench ablate knows, in the order of
// record-stack.md §2-3.
func Techniques() []Technique {
	m := func(f func(model.Config) bool) func(train.RunConfig) bool {
		return func(rc train.RunConfig) bool { return f(rc.Model) }
	}
	o := func(f func(train.OptimizerConfig) bool) func(train.RunConfig) bool {
		return func(rc train.RunConfig) bool { return f(rc.Settings.Optimizer) }
	}
	return []Technique{
		{"leaky_relu2", "LeakyReLU(0.5)² MLP activation instead of ReLU²",
			m(func(c model.Config) bool { return c.Activation == "leaky_relu2" }),
			func(rc *train.RunConfig) { rc.Model.Activation, rc.Model.LeakySlope = "", 0 }, false},
		{"orthogonal_init", "orthogonal input matrices instead of PyTorch's uniform",
			m(func(c model.Config) bool { return c.MatrixInit == "orthogonal" }),
			func(rc *train.RunConfig) { rc.Model.MatrixInit = "" }, false},
		{"partial_rope", "rotate only the first rope_dims of each head",
			m(func(c model.Config) bool { return c.RopeDims > 0 && c.RopeDims < c.HeadDim() }),
			func(rc *train.RunConfig) { rc.Model.RopeDims = 0 }, false},
		{"ln_scale", "scale block inputs by 1/sqrt(layer+1)",
			m(func(c model.Config) bool { return c.LNScale }),
			func(rc *train.RunConfig) { rc.Model.LNScale = false }, false},
		{"qk_gain", "q_gain initialised at the record's 5.0 instead of the baseline's 1.5",
			m(func(c model.Config) bool { return c.QKGainInit != 1.5 }),
			func(rc *train.RunConfig) { rc.Model.QKGainInit = 1.5 }, false},
		{"xsa", "exclusive self-attention on the last layers",
			m(func(c model.Config) bool { return c.XSALastN > 0 }),
			func(rc *train.RunConfig) { rc.Model.XSALastN = 0 }, false},
		{"sparse_gate", "sparse per-head attention output gate",
			m(func(c model.Config) bool { return c.AttnGate == "sparse" }),
			func(rc *train.RunConfig) { rc.Model.AttnGate, rc.Model.AttnGateScale = "", 0 }, false},
		{"smear_gate", "SmearGate on the token embeddings",
			m(func(c model.Config) bool { return c.SmearGate }),
			func(rc *train.RunConfig) { rc.Model.SmearGate, rc.Model.SmearBOSFix = false, false }, false},
		{"skip_gates", "sigmoid-gated U-Net skips instead of additive ones",
			m(func(c model.Config) bool { return c.SkipGates }),
			func(rc *train.RunConfig) { rc.Model.SkipGates = false }, false},
		{"depth_recurrence", "loop the middle layers (shared weights)",
			m(func(c model.Config) bool { return c.NumLoops > 0 }),
			func(rc *train.RunConfig) { rc.Model.NumLoops, rc.Model.LoopStart, rc.Model.LoopEnd = 0, 0, 0 }, false},
		{"parallel_lanes", "two-lane parallel residuals in the last decoder blocks",
			m(func(c model.Config) bool { return c.ParallelStartLayer > 0 }),
			func(rc *train.RunConfig) { rc.Model.ParallelStartLayer, rc.Model.ParallelFinalLane = 0, "" }, false},
		{"asym_logit", "AsymLogit softcap parameters (never trained: expect no change)",
			m(func(c model.Config) bool { return c.AsymLogit }),
			func(rc *train.RunConfig) { rc.Model.AsymLogit = false }, false},
		{"polar_express", "Polar-Express Newton-Schulz coefficients instead of the quintic",
			o(func(c train.OptimizerConfig) bool { return c.NewtonSchulzCoeffs == "polar-express" }),
			func(rc *train.RunConfig) { rc.Settings.Optimizer.NewtonSchulzCoeffs = "" }, false},
		{"muon_row_norm", "MuonEq-R row normalisation of Muon's update",
			o(func(c train.OptimizerConfig) bool { return c.MuonRowNormalize }),
			func(rc *train.RunConfig) { rc.Settings.Optimizer.MuonRowNormalize = false }, false},
		{"weight_decay", "decoupled weight decay (Muon, embedding, scalars)",
			o(func(c train.OptimizerConfig) bool {
				return c.MuonWeightDecay+c.EmbedWeightDecay+c.ScalarWeightDecay > 0
			}),
			func(rc *train.RunConfig) {
				o := &rc.Settings.Optimizer
				o.MuonWeightDecay, o.EmbedWeightDecay, o.ScalarWeightDecay = 0, 0, 0
			}, false},
		{"grad_clip", "global gradient-norm clipping",
			o(func(c train.OptimizerConfig) bool { return c.GradClipNorm > 0 }),
			func(rc *train.RunConfig) { rc.Settings.Optimizer.GradClipNorm = 0 }, false},
		{"warmdown_frac", "warm-down over a fraction of the run with an LR floor, instead of the baseline's last steps",
			func(rc train.RunConfig) bool { return rc.Settings.WarmdownFrac > 0 },
			func(rc *train.RunConfig) {
				base, _ := train.PresetRunConfig("tiny")
				rc.Settings.WarmdownFrac, rc.Settings.MinLR, rc.Settings.Warmdown = 0, 0, base.Settings.Warmdown
			}, false},
		{"ema", "evaluate and export the EMA of the weights",
			func(rc train.RunConfig) bool { return rc.Settings.EMADecay > 0 },
			func(rc *train.RunConfig) { rc.Settings.EMADecay = 0 }, false},
		{"bigram_hash", "add a hashed-bigram embedding (dropped by PR #1218)",
			m(func(c model.Config) bool { return c.BigramVocab == 0 }),
			func(rc *train.RunConfig) {
				// The records' 128-wide table with an orthogonal projection at
				// their width; at small widths no projection (a zero table
				// behind a zero projection would never train).
				d := rc.Model.ModelDim
				if d >= 256 {
					d = 128
				}
				rc.Model.BigramVocab, rc.Model.BigramDim = 2*rc.Model.VocabSize, d
			}, true},
		{"value_embed", "add value embeddings on the last two layers (dropped by PR #1394)",
			m(func(c model.Config) bool { return c.VEDim == 0 && c.NumLayers >= 2 }),
			func(rc *train.RunConfig) {
				d := rc.Model.KVDim()
				if d >= 256 {
					d = 128 // the records' VE128
				}
				rc.Model.VEDim, rc.Model.VELayers = d, []int{rc.Model.NumLayers - 2, rc.Model.NumLayers - 1}
			}, true},
	}
}

// ByName returns a known technique; a leading "+" is allowed for add-ons.
func ByName(name string) (Technique, error) {
	var names []string
	for _, t := range Techniques() {
		if t.Name == strings.TrimPrefix(name, "+") {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Technique{}, fmt.Errorf("unknown technique %q (known: %s)", name, strings.Join(names, ", "))
}

// Options configure Run.
type Options struct {
	// Base is the full stack every variant starts from.
	Base train.RunConfig
	// Techniques to switch off one at a time (nil: every technique the base
	// uses, and no add-ons).
	Techniques []string
	// DataDir, CacheDir and BackendSpec are passed to each train.Run (see
	// train.Options); every variant reads the same data.
	DataDir, CacheDir, BackendSpec string
	// Backend, when set, runs every variant on it (else BackendSpec opens one per run).
	Backend backends.Backend
	// ValTokens caps the validation tokens every variant is scored on
	// (Options.FinalValTokens; 0: the whole split).
	ValTokens int
	// OutDir holds one run directory per variant (full/, no_<name>/, ...).
	OutDir string
	// ArtifactBytes, when set, measures the artifact a variant's final
	// checkpoint packs into (golf bench ablate passes quant's packer).
	ArtifactBytes func(cfg model.Config, checkpointDir string) (int64, error)
	// Log receives each run's log lines; Progress the per-variant progress.
	Log, Progress io.Writer
}

// Row is one variant's outcome.
type Row struct {
	Variant   string  `json:"variant"` // "full", "-xsa", "+bigram_hash"
	Technique string  `json:"technique,omitempty"`
	ValBPB    float64 `json:"val_bpb"`
	// Delta is ValBPB minus the full stack's: positive means the
	// technique helped (removing it cost bits).
	Delta         float64 `json:"delta_bpb"`
	Params        int     `json:"params"`
	Steps         int     `json:"steps"`
	StepMs        float64 `json:"ms_per_step"`
	ArtifactBytes int64   `json:"artifact_bytes,omitempty"`
	RunDir        string  `json:"run_dir"`
}

// Run trains the base configuration and, for each technique, the base
// with that technique switched off (or an add-on switched on), with the same
// seed, data and budget, and returns one row per run, the full stack first.
// Each run's folder gets its loss.png.
func Run(ctx context.Context, opts Options) ([]Row, error) {
	if err := opts.Base.Validate(); err != nil {
		return nil, fmt.Errorf("ablate: %w", err)
	}
	type variant struct {
		name, technique string
		rc              train.RunConfig
	}
	variants := []variant{{"full", "", opts.Base}}
	names := opts.Techniques
	if names == nil {
		for _, t := range Techniques() {
			if !t.AddOn && t.Applies(opts.Base) {
				names = append(names, t.Name)
			}
		}
	}
	for _, name := range names {
		t, err := ByName(name)
		if err != nil {
			return nil, fmt.Errorf("ablate: %w", err)
		}
		if !t.Applies(opts.Base) {
			return nil, fmt.Errorf("ablate: the base configuration does not use %s (%s)", t.Name, t.Description)
		}
		rc := opts.Base
		rc.Model.VELayers = slices.Clone(rc.Model.VELayers)
		t.Edit(&rc)
		prefix := "-"
		if t.AddOn {
			prefix = "+"
		}
		if err := rc.Validate(); err != nil {
			return nil, fmt.Errorf("ablate: %s%s: %w", prefix, t.Name, err)
		}
		variants = append(variants, variant{prefix + t.Name, t.Name, rc})
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	var rows []Row
	for i, v := range variants {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		dir := filepath.Join(opts.OutDir, strings.NewReplacer("-", "no_", "+", "with_").Replace(v.name))
		fmt.Fprintf(progress, "ablate: %d/%d %s (%d parameters) -> %s\n", i+1, len(variants), v.name, v.rc.Model.NumParams(), dir)
		res, err := train.Run(ctx, train.Options{
			Settings: v.rc.Settings, Model: v.rc.Model, DataDir: opts.DataDir, CacheDir: opts.CacheDir,
			BackendSpec: opts.BackendSpec, Backend: opts.Backend, FinalValTokens: opts.ValTokens, OutDir: dir, Log: opts.Log, Progress: opts.Progress,
			LossPlot: lossplot.Write,
		})
		if err != nil {
			return rows, fmt.Errorf("ablate: %s: %w", v.name, err)
		}
		row := Row{Variant: v.name, Technique: v.technique, ValBPB: res.ValBPB, Params: res.Params,
			Steps: res.Steps, StepMs: res.StepAvgMs, RunDir: dir}
		if opts.ArtifactBytes != nil {
			if row.ArtifactBytes, err = opts.ArtifactBytes(res.Model, res.Checkpoint); err != nil {
				return rows, fmt.Errorf("ablate: %s: artifact: %w", v.name, err)
			}
		}
		rows = append(rows, row)
		fmt.Fprintf(progress, "ablate: %s val_bpb %.4f (%.1f ms/step)\n", v.name, row.ValBPB, row.StepMs)
	}
	for i := range rows {
		rows[i].Delta = rows[i].ValBPB - rows[0].ValBPB
	}
	return rows, nil
}

// Plot draws each variant's val_bpb change against the full stack as
// horizontal bars (positive: the technique helped) and writes a PNG.
func Plot(path, title string, rows []Row) error {
	if len(rows) < 2 {
		return fmt.Errorf("plot %s: nothing ablated", path)
	}
	rest := slices.Clone(rows[1:])
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Delta < rest[j].Delta })
	vals := make(plotter.Values, len(rest))
	labels := make([]string, len(rest))
	for i, r := range rest {
		vals[i], labels[i] = r.Delta, r.Variant
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "val_bpb change without the technique (bits per byte; > 0: it helps)"
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	p.Add(plotter.NewGrid(), bars)
	p.NominalY(labels...)
	height := vg.Length(len(rest))*0.3*vg.Inch + 1.5*vg.Inch
	return plotfile.SavePNG(path, p, 8*vg.Inch, height)
}
