package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// lossPlot draws loss.png at the end of a run: train_plot.go sets it, so
// that the counted code (golf.Counted) does not carry the plotting library;
// a build of the counted files alone trains without drawing.
var lossPlot func(path, title string, h train.History) error

func init() {
	register(&command{
		name:    "train",
		summary: "train a model (default: the tiny preset on the embedded corpus, on the CPU)",
		run:     runTrain,
	})
}

// settingFlags binds the flags that override a preset's training settings.
// Each flag's zero value means "the preset's"; only flags given on the
// command line are applied (see apply).
type settingFlags struct {
	fs *flag.FlagSet

	batchTokens, microTokens, seqLen                int
	iterations, maxSteps, warmdown, warmupSteps     int
	valEvery, logEvery, evalStride, valTokens, ckpt int
	maxSeconds                                      float64
	seed                                            int64
	matrixLR, embedLR, scalarLR, momentum, clip     float64
	muonWD, embedWD, scalarWD                       float64
	muonDType, storageDType                         string
	qatBits                                         int
	qatClipStd, qatStart                            float64
	emaDecay, warmdownFrac, minLR, loopStartFrac    float64
	documentPacking                                 bool
	qatScheme                                       string
	gptqReserve                                     float64
}

func bindSettingFlags(fs *flag.FlagSet) *settingFlags {
	f := &settingFlags{fs: fs}
	// The help shows each preset's value, read from the presets themselves.
	_, tiny, terr := train.PresetSettings("tiny")
	_, base, berr := train.PresetSettings("baseline")
	presets := func(get func(train.Settings) any) string {
		if terr != nil || berr != nil {
			return "preset"
		}
		return fmt.Sprintf("preset: tiny %v, baseline %v", get(tiny), get(base))
	}
	fs.IntVar(&f.batchTokens, "batch-tokens", 0, "tokens per optimizer step ("+presets(func(s train.Settings) any { return s.BatchTokens })+")")
	fs.IntVar(&f.microTokens, "micro-batch-tokens", 0, "tokens per forward/backward micro-batch; 0 = automatic (the whole batch up to 65536 tokens on a GPU, 8192 on the CPU)")
	fs.IntVar(&f.seqLen, "seq-len", 0, "training sequence length ("+presets(func(s train.Settings) any { return s.SeqLen })+")")
	fs.IntVar(&f.iterations, "iterations", 0, "schedule length in optimizer steps ("+presets(func(s train.Settings) any { return s.Iterations })+")")
	fs.IntVar(&f.maxSteps, "max-steps", 0, "stop after this many steps without changing the schedule (0 = iterations)")
	fs.IntVar(&f.warmdown, "warmdown", -1, "linear LR warm-down steps ("+presets(func(s train.Settings) any { return s.Warmdown })+")")
	fs.IntVar(&f.warmupSteps, "warmup-steps", -1, "compile/priming steps, undone before the timed run ("+presets(func(s train.Settings) any { return s.WarmupSteps })+")")
	fs.Float64Var(&f.maxSeconds, "max-seconds", -1, "wall-clock training budget in seconds, evaluation excluded; 0 = none ("+presets(func(s train.Settings) any { return s.MaxSeconds })+")")
	fs.IntVar(&f.valEvery, "val-every", -1, "evaluate every N steps and at the end; 0 = end only ("+presets(func(s train.Settings) any { return s.ValEvery })+")")
	fs.IntVar(&f.logEvery, "log-every", -1, "train_loss line every N steps, besides the first 10 ("+presets(func(s train.Settings) any { return s.LogEvery })+")")
	fs.IntVar(&f.evalStride, "eval-stride", -1, "sliding-window evaluation stride; 0 = non-overlapping windows (preset: 0)")
	fs.IntVar(&f.valTokens, "val-tokens", -1, "cap on the periodic validations' tokens (the final evaluation covers the whole split); 0 = all ("+presets(func(s train.Settings) any { return s.ValTokens })+")")
	fs.IntVar(&f.ckpt, "checkpoint-every", -1, "save a checkpoint every N steps; 0 = at the end only")
	fs.Int64Var(&f.seed, "seed", 0, "seed of the initial weights (preset: 1337)")
	fs.Float64Var(&f.matrixLR, "matrix-lr", 0, "Muon learning rate (0.04)")
	fs.Float64Var(&f.embedLR, "embed-lr", 0, "Adam learning rate of the tied embedding (0.05)")
	fs.Float64Var(&f.scalarLR, "scalar-lr", 0, "Adam learning rate of control parameters (0.04)")
	fs.Float64Var(&f.momentum, "muon-momentum", 0, "final Muon momentum (0.95)")
	fs.Float64Var(&f.clip, "grad-clip-norm", 0, "global gradient-norm clip; 0 = none")
	fs.Float64Var(&f.muonWD, "muon-weight-decay", 0, "decoupled weight decay of Muon's matrices")
	fs.Float64Var(&f.embedWD, "embed-weight-decay", 0, "decoupled weight decay of the embedding")
	fs.Float64Var(&f.scalarWD, "scalar-weight-decay", 0, "decoupled weight decay of control parameters")
	fs.StringVar(&f.muonDType, "muon-dtype", "auto", "Newton-Schulz dtype: auto (float32 on the pure-Go backend, bfloat16, the reference's, on accelerators), bfloat16 or float32")
	fs.StringVar(&f.storageDType, "storage-dtype", "auto", "the reference's bf16 storage points (tied embedding weights/moments/gradient, Muon's update): "+
		"bfloat16, float32, or auto (bfloat16 when the matmuls run in bfloat16, i.e. on a GPU; float32 on the CPU)")
	fs.IntVar(&f.qatBits, "qat-bits", 0, "quantization-aware training: fake-quantize every block matrix to this many bits per row (2..8); 0 = off")
	fs.Float64Var(&f.qatClipStd, "qat-clip-std", 0, "QAT row clip at k * row std (12.85 matches the int6-sd scheme); 0 = row max |w|")
	fs.Float64Var(&f.qatStart, "qat-start", 0.85, "fraction of the run (steps, or wall clock under a cap) after which QAT is on")
	fs.Float64Var(&f.emaDecay, "ema-decay", 0, "keep an EMA of the weights with this decay per step, evaluated and saved at the end (record 0.9965); 0 = off")
	fs.Float64Var(&f.warmdownFrac, "warmdown-frac", 0, "warm the learning rate down over this fraction of the run instead of --warmdown steps (record 0.85)")
	fs.Float64Var(&f.minLR, "min-lr", 0, "floor of the warm-down's learning-rate multiplier (record 0.1)")
	fs.Float64Var(&f.loopStartFrac, "loop-start-frac", 0, "run a depth-recurrent model's loops from this fraction of the run (record 0.35)")
	fs.BoolVar(&f.documentPacking, "document-packing", false, "read documents as the record's packing loader, attention within each document")
	fs.StringVar(&f.qatScheme, "qat-scheme", "", "quantization-aware training against a quantization scheme's grid: its bits and clip per class (e.g. int6-sd, record), instead of --qat-bits/--qat-clip-std")
	fs.Float64Var(&f.gptqReserve, "gptq-reserve-seconds", 0, "end training this long before --max-seconds and collect GPTQ Hessians from the final weights over training shards inside the budget (saved as gptq_hessians.bin next to the checkpoint, which golf pack uses)")
	return f
}

// qatFromScheme sets the QAT settings from --qat-scheme's scheme.
func qatFromScheme(f *settingFlags, s *train.Settings) error {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "qat-bits" || fl.Name == "qat-clip-std" })
	if given {
		return fmt.Errorf("%w: give --qat-scheme or --qat-bits/--qat-clip-std, not both", errUsage)
	}
	scheme, err := quant.SchemeByName(f.qatScheme)
	if err != nil {
		return fmt.Errorf("%w: --qat-scheme: %v", errUsage, err)
	}
	q, err := quant.QATFor(scheme)
	if err != nil {
		return fmt.Errorf("%w: --qat-scheme: %v", errUsage, err)
	}
	s.QATBits, s.QATClipStd, s.QATByClass, s.QATScheme, s.QATStart = q.Bits, q.ClipStd, q.ByClass, scheme.Name, f.qatStart
	return nil
}

// apply overrides s with the flags given on the command line.
func (f *settingFlags) apply(s *train.Settings) error {
	var err, ferr error
	f.fs.Visit(func(fl *flag.Flag) {
		o := &s.Optimizer
		switch fl.Name {
		case "batch-tokens":
			s.BatchTokens = f.batchTokens
		case "micro-batch-tokens":
			s.MicroBatchTokens = f.microTokens
		case "seq-len":
			s.SeqLen = f.seqLen
		case "iterations":
			s.Iterations = f.iterations
		case "max-steps":
			s.MaxSteps = f.maxSteps
		case "warmdown":
			s.Warmdown = f.warmdown
		case "warmup-steps":
			s.WarmupSteps = f.warmupSteps
		case "max-seconds":
			s.MaxSeconds = f.maxSeconds
		case "val-every":
			s.ValEvery = f.valEvery
		case "log-every":
			s.LogEvery = f.logEvery
		case "eval-stride":
			s.EvalStride = f.evalStride
		case "val-tokens":
			s.ValTokens = f.valTokens
		case "checkpoint-every":
			s.CheckpointEvery = f.ckpt
		case "seed":
			s.Seed = f.seed
		case "matrix-lr":
			o.MatrixLR = f.matrixLR
		case "embed-lr":
			o.EmbedLR = f.embedLR
		case "scalar-lr":
			o.ScalarLR = f.scalarLR
		case "muon-momentum":
			o.MuonMomentum = f.momentum
		case "grad-clip-norm":
			o.GradClipNorm = f.clip
		case "muon-weight-decay":
			o.MuonWeightDecay = f.muonWD
		case "embed-weight-decay":
			o.EmbedWeightDecay = f.embedWD
		case "scalar-weight-decay":
			o.ScalarWeightDecay = f.scalarWD
		case "qat-bits":
			s.QATBits, s.QATStart = f.qatBits, f.qatStart // --qat-start's value or its default
		case "qat-clip-std":
			s.QATClipStd = f.qatClipStd
		case "qat-start":
			s.QATStart = f.qatStart
		case "ema-decay":
			s.EMADecay = f.emaDecay
		case "warmdown-frac":
			s.WarmdownFrac = f.warmdownFrac
		case "min-lr":
			s.MinLR = f.minLR
		case "loop-start-frac":
			s.LoopStartFrac = f.loopStartFrac
		case "document-packing":
			s.DocumentPacking = f.documentPacking
		case "storage-dtype":
			if o.StorageDType, ferr = dtypeFlag("storage-dtype", f.storageDType); ferr != nil {
				err = ferr
			}
		case "qat-scheme":
			if err = qatFromScheme(f, s); err != nil {
				return
			}
		case "gptq-reserve-seconds":
			s.GPTQReserveSeconds = f.gptqReserve
		case "muon-dtype":
			if o.NewtonSchulzDType, ferr = dtypeFlag("muon-dtype", f.muonDType); ferr != nil {
				err = ferr
			}
		}
	})
	if err != nil {
		return err
	}
	if verr := s.ValidateRun(); verr != nil {
		return fmt.Errorf("%w: %v", errUsage, verr)
	}
	return nil
}

// loadTokenizer returns the tokenizer at path, or the embedded sp1024.
func loadTokenizer(path string) (*tokenizer.Model, error) {
	if path == "" {
		return tokenizer.Default(), nil
	}
	return tokenizer.Load(path)
}

// corpusCacheDir is where the embedded corpus's shards are built for a
// tokenizer when no --data is given: the user cache directory, so repeated
// runs share them (falls back to the run directory when there is none).
func corpusCacheDir(tok *tokenizer.Model, fallback string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		return fallback
	}
	// Keyed by the model file's digest: two tokenizers never share shards.
	name := strings.TrimSuffix(filepath.Base(tok.Name()), filepath.Ext(tok.Name()))
	return filepath.Join(base, "golf", fmt.Sprintf("corpus-%s-%.12s", name, tok.SHA256()))
}

func runTrain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "train", "")
	preset := fs.String("preset", "", "model and settings preset: "+strings.Join(train.Presets, ", ")+" (default tiny; with --resume, the run's)")
	configPath := fs.String("config", "", "run configuration JSON file: a preset plus model and training fields that override it (see golf model --config)")
	printConfig := fs.Bool("print-config", false, "print the resolved run configuration as JSON and exit without training")
	dataDir := fs.String("data", "", "shard directory (fineweb_train_*.bin, fineweb_val_*.bin); default: the resumed run's, else the embedded corpus")
	tokPath := fs.String("tokenizer", "", "SentencePiece .model of the shards (default: the resumed run's, else the one the data's manifest.json names, else the embedded sp1024)")
	out := fs.String("out", "", "output directory (default runs/<timestamp>; with --resume, the run's directory)")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec (default: a GPU if present, else pure Go)")
	devices := fs.Int("devices", 0, "data-parallel ranks, one per device, each reading its own spans of every step (0 = all of the backend's devices, at most 8; the CPU has 1)")
	spmd := fs.Bool("spmd", false, "compile the data-parallel (SPMD) step even on one device: a check of the multi-device path on one GPU")
	resume := fs.String("resume", "", "continue the run saved in this checkpoint directory (with its own data and tokenizer)")
	force := fs.Bool("force", false, "replace an earlier run in --out instead of refusing")
	allowDataChange := fs.Bool("allow-data-change", false, "with --resume: train on other --data or another --tokenizer than the checkpoint records")
	outf := addOutputFlags(fs)
	sf := bindSettingFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	var cfg model.Config
	var s train.Settings
	switch {
	case *resume != "":
		// A resumed run keeps its model and settings; flags given now
		// override the settings (e.g. more --iterations).
		ck, err := train.LoadCheckpoint(*resume)
		if err != nil {
			return err
		}
		cfg, s = ck.Config, ck.State.Settings
		if *preset != "" && *preset != s.Preset {
			return fmt.Errorf("%w: --preset %s, but %s is a %s run", errUsage, *preset, *resume, s.Preset)
		}
		if *out == "" {
			// Continue in the run's own directory (where golf train put
			// its checkpoint/), appending to its train.log.
			*out = filepath.Dir(filepath.Clean(*resume))
		}
	case *configPath != "":
		if *preset != "" {
			return fmt.Errorf("%w: give --preset or --config, not both (the file names its preset)", errUsage)
		}
		rc, err := train.LoadRunConfig(*configPath)
		if err != nil {
			return err
		}
		cfg, s = rc.Model, rc.Settings
		if !rc.VocabSet {
			cfg.VocabSize = 0 // the tokenizer's, as for presets
		}
	default:
		name := *preset
		if name == "" {
			name = "tiny"
		}
		var err error
		if cfg, s, err = train.PresetSettings(name); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		// The model's vocabulary is the tokenizer's (sp1024, sp8192, ...).
		cfg.VocabSize = 0
	}
	if err := sf.apply(&s); err != nil {
		return err
	}
	cfg.SeqLen = s.SeqLen // one sequence length: the run's
	if *printConfig {
		rc := train.RunConfig{Model: cfg, Settings: s}
		if err := rc.Model.Validate(); cfg.VocabSize != 0 && err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return rc.WriteJSON(env.stdout)
	}
	var tok *tokenizer.Model // nil: train.Run picks (the run's, the data's, the embedded)
	if *tokPath != "" {
		var err error
		if tok, err = tokenizer.Load(*tokPath); err != nil {
			return err
		}
	}
	cacheTok := tok // the embedded corpus's build is keyed by its tokenizer
	if cacheTok == nil {
		cacheTok = tokenizer.Default()
		if *resume != "" {
			if st, err := train.ReadTrainState(*resume); err == nil && st.EmbeddedCorpus && st.Tokenizer != tokenizer.DefaultModelName {
				if t, err := tokenizer.Load(st.Tokenizer); err == nil {
					cacheTok = t
				}
			}
		}
	}
	if *out == "" {
		*out = filepath.Join("runs", time.Now().Format("20060102-150405"))
	}
	logW := env.stdout
	if outf.json {
		logW = env.stderr
	}
	progressW := outf.progress(env)
	opts := train.Options{
		Settings: s, Model: cfg, DataDir: *dataDir, CacheDir: corpusCacheDir(cacheTok, filepath.Join(*out, "data")),
		Tokenizer: tok, BackendSpec: *backendSpec, Devices: *devices, SPMD: *spmd, OutDir: *out, Resume: *resume, Force: *force, AllowDataChange: *allowDataChange,
		Log: logW, Progress: progressW, LossPlot: lossPlot,
	}
	if s.GPTQReserveSeconds > 0 {
		opts.AfterTraining = gptqCalibration(s, filepath.Join(*out, runHessiansFile))
	}
	res, err := train.Run(ctx, opts)
	if err != nil {
		return err
	}
	return outf.emit(env, res, func(w io.Writer) error { return printTrainResult(w, res, *out) })
}

// printTrainResult prints golf train's results table.
func printTrainResult(w io.Writer, res *train.Result, out string) error {
	t := report.NewTable(fmt.Sprintf("\ngolf train: %s preset, %s", res.Preset, res.Backend), "metric", "value")
	t.Add("val_loss", fmt.Sprintf("%.4f", res.ValLoss))
	t.Add("val_bpb", fmt.Sprintf("%.4f", res.ValBPB))
	t.Add("val_tokens", valTokensNote(res))
	t.Add("steps", fmt.Sprintf("%d (%s)", res.Steps, res.StoppedBy))
	t.Add("tokens", progress.Count(float64(res.Tokens)))
	t.Add("tokens/s", progress.Count(res.TokensPerS))
	t.Add("step_avg", fmt.Sprintf("%.1f ms", res.StepAvgMs))
	t.Add("train_time", progress.Duration(time.Duration(res.TrainTimeMs*float64(time.Millisecond))))
	t.Add("warmup_time", progress.Duration(time.Duration(res.WarmupMs*float64(time.Millisecond))))
	t.Add("params", res.Params)
	t.Add("out", out)
	return t.Print(w)
}

// valTokensNote says what the final and periodic evaluations scored.
func valTokensNote(res *train.Result) string {
	note := fmt.Sprintf("%d (the whole split)", res.ValTokens)
	if res.PeriodicValTokens < res.ValTokens {
		note += fmt.Sprintf("; periodic validation: the first %d", res.PeriodicValTokens)
	}
	return note
}

// dtypeFlag parses a dtype flag: auto (the backend's choice, InvalidDType),
// bfloat16/bf16 or float32/f32.
func dtypeFlag(name, v string) (dtypes.DType, error) {
	switch v {
	case "auto":
		return dtypes.InvalidDType, nil
	case "bfloat16", "bf16":
		return dtypes.BFloat16, nil
	case "float32", "f32":
		return dtypes.Float32, nil
	}
	return dtypes.InvalidDType, fmt.Errorf("%w: --%s must be auto, bfloat16 or float32, got %q", errUsage, name, v)
}
