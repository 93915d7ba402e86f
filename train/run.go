package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/tokenizer"
)

// Options configure Run: the model, the settings, and where things come from
// and go to.
type Options struct {
	Settings
	Model model.Config

	// DataDir holds the shards (fineweb_train_*.bin, fineweb_val_*.bin),
	// checked before use (data.CheckDir). Empty: the resumed run's own
	// data, else the embedded corpus, built once into CacheDir.
	DataDir  string
	CacheDir string // where the embedded corpus is built; empty: OutDir/data
	// Tokenizer is the tokenizer of the shards, for the byte table of
	// val_bpb. nil: the resumed run's own, else the one the data folder
	// names (data.FolderTokenizer: its manifest, or the challenge's
	// layout), else the embedded sp1024. Model.VocabSize 0 takes the
	// tokenizer's vocabulary.
	Tokenizer *tokenizer.Model
	// AllowDataChange lets a resumed run read other shards, or use another
	// tokenizer, than its checkpoint records; without it Run refuses.
	AllowDataChange bool

	Backend     backends.Backend // nil: opened with compute.Open(BackendSpec)
	BackendSpec string
	// Devices is the number of data-parallel ranks, one per device of the
	// backend (see distributed.go); 0: all of them, down to the largest
	// count dividing 8 (the reference's grad_accum_steps = 8 / world_size).
	Devices int
	// SPMD compiles the data-parallel (SPMD) step even on one device, a
	// check of the multi-device path on a single GPU.
	SPMD bool

	// FinalValTokens caps the validation split every evaluation of the run
	// uses, the final one included (0: the whole split, as the challenge
	// scores). Only comparisons of runs (golf bench ablate) should set it:
	// a capped final val_bpb is not the run's score.
	FinalValTokens int

	// OutDir receives train.log, results.json, checkpoint/ and, with
	// LossPlot, loss.png.
	// Run holds its lock (a second writer fails at once, naming this one)
	// and refuses a folder that already holds a run, unless Resume
	// continues that run or Force replaces it.
	OutDir string
	// Resume continues the run saved in this checkpoint directory: weights,
	// optimizer state, step, training time, loader position and history.
	Resume string
	// Force replaces an earlier run in OutDir (its train.log, results.json,
	// loss.png and checkpoint/).
	Force bool

	// LossPlot, when set, draws the run's loss curves to OutDir/loss.png
	// when it ends (lossplot.Write; golf train passes it). Plotting is
	// tooling, outside the counted code, hence a hook.
	LossPlot func(path, title string, h History) error

	Log      io.Writer // the key:value log lines (also written to OutDir/train.log); nil: discard
	Progress io.Writer // periodic progress lines; nil: none

	// AfterTraining, when set, runs when the training loop ends, with the
	// run's model config, its final weights (the EMA when there is one),
	// the training shards' folder and the end of the wall-clock budget
	// (zero without a cap): GPTQ calibration inside the budget (see
	// Settings.GPTQReserveSeconds). Its line is logged, and the time it took
	// is recorded as a read of training data (Result.DataReads) right after
	// the timed training.
	AfterTraining func(ctx context.Context, backend backends.Backend, cfg model.Config, w model.Weights, dataDir string, deadline time.Time) (logLine string, err error)
}

// Result summarises a run; it is also written to OutDir/results.json.
type Result struct {
	Preset      string     `json:"preset"`
	Backend     string     `json:"backend"`
	Devices     int        `json:"devices"` // data-parallel ranks
	Params      int        `json:"params"`
	Steps       int        `json:"steps"`
	Tokens      int64      `json:"tokens"`
	TrainTimeMs float64    `json:"train_time_ms"`
	StepAvgMs   float64    `json:"step_avg_ms"`
	TokensPerS  float64    `json:"tokens_per_s"`
	WarmupMs    float64    `json:"warmup_ms"`  // compile and priming steps, not in TrainTimeMs
	StoppedBy   string     `json:"stopped_by"` // "iterations", "max_steps" or "wallclock"
	Final       EvalResult `json:"final"`      // over the whole validation split
	ValLoss     float64    `json:"val_loss"`
	ValBPB      float64    `json:"val_bpb"`
	// ValTokens is the validation split's size in targets (the final
	// evaluation's); PeriodicValTokens what each periodic evaluation
	// scored (Settings.ValTokens caps it).
	ValTokens         int `json:"val_tokens"`
	PeriodicValTokens int `json:"periodic_val_tokens"`
	// DataReads lists when the run read training data, in milliseconds of
	// timed training (golf audit checks that nothing read it after the
	// budget ended: GPTQ calibration must fit inside it).
	DataReads []DataRead `json:"data_reads"`
	// EMA says the final evaluation and checkpoint are the weights' EMA.
	EMA        bool         `json:"ema,omitempty"`
	Checkpoint string       `json:"checkpoint"`
	Settings   Settings     `json:"settings"`
	Model      model.Config `json:"model"`
	History    History      `json:"history"`
}

// Run trains a model as the reference does and evaluates it:
//
//  1. WarmupSteps optimizer steps compile and prime the graphs; their weight
//     and optimizer changes are undone and the data loader rewound, and their
//     time is not counted.
//  2. Each step reads BatchTokens tokens as the reference does (8 spans of
//     BatchTokens/8+1 stream tokens, data.Loader.NextStep) and computes them
//     as micro-batches of MicroBatchTokens (see Settings.MicroBatch), at the
//     schedule's learning rate and Muon's momentum; training stops at
//     Iterations (or MaxSteps) or before a step that would end past
//     MaxSeconds (the slowest step so far plus 20 %): the budget is a hard
//     limit, where the reference stops after the step that crosses it.
//  3. Validation runs every ValEvery steps on the first ValTokens tokens of
//     the validation split, and at the end on all of it, outside the timed
//     budget; checkpoints likewise.
//
// Files under OutDir: train.log (the log lines), results.json (Result),
// loss.png (with Options.LossPlot) and checkpoint/ (see SaveCheckpoint). A
// NaN or infinite loss stops the run with an error naming the step; a
// checkpoint is never written with non-finite weights, so the one kept is
// the last finite one (the error says which).
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	defer recoverGraphPanic("train", &err)
	if opts.OutDir == "" {
		return nil, errors.New("train: no output directory")
	}
	lock, err := outlock.Acquire(opts.OutDir, strings.Join(os.Args, " "))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer lock.Release()
	if err := prepareOutDir(opts); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(opts.OutDir, "train.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer logFile.Close()
	r := &runner{opts: opts, log: logFile}
	if opts.Log != nil {
		r.log = io.MultiWriter(opts.Log, logFile)
	}
	defer func() {
		if r.ownBackend && r.backend != nil {
			r.backend.Finalize()
		}
	}()
	res, err = r.run(ctx)
	if err != nil {
		// The log keeps the reason a run stopped (a NaN loss names its step).
		r.logf("error:%v", err)
	}
	return res, err
}

// runFiles are what a run writes into its folder.
var runFiles = []string{"train.log", "results.json", "loss.png", "checkpoint"}

// prepareOutDir refuses (or, with Force, clears) a folder that holds an
// earlier run, unless the run resumes into its own folder, and removes the
// temporary checkpoint folders a killed run left. Run holds the folder's
// lock when it calls this.
func prepareOutDir(o Options) error {
	own := false
	if o.Resume != "" {
		a, _ := filepath.Abs(filepath.Dir(filepath.Clean(o.Resume)))
		b, _ := filepath.Abs(o.OutDir)
		own = a == b
	}
	if !own {
		var found []string
		for _, f := range runFiles {
			if _, err := os.Stat(filepath.Join(o.OutDir, f)); err == nil {
				found = append(found, f)
			}
		}
		switch {
		case len(found) > 0 && !o.Force:
			return fmt.Errorf("train: %s already holds a run (%s): continue it with --resume %s, choose another --out, or replace it with --force",
				o.OutDir, strings.Join(found, ", "), filepath.Join(o.OutDir, "checkpoint"))
		case len(found) > 0:
			for _, f := range found {
				if err := os.RemoveAll(filepath.Join(o.OutDir, f)); err != nil {
					return fmt.Errorf("train: --force: %w", err)
				}
			}
		}
	}
	stale, _ := filepath.Glob(filepath.Join(o.OutDir, ".checkpoint.tmp-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("train: remove a killed run's %s: %w", d, err)
		}
	}
	return nil
}

// runner is the state of one Run.
type runner struct {
	opts    Options
	log     io.Writer
	s       Settings
	cfg     model.Config
	backend backends.Backend
	desc    string
	// ownBackend is set when Run opened the backend (and so finalizes it).
	ownBackend bool
	// dataDir is the shard directory in use (embedded: the embedded
	// corpus's build); tok is the tokenizer.
	dataDir  string
	embedded bool
	tok      *tokenizer.Model
	tokHow   string         // how the tokenizer was chosen, for the log
	check    *data.DirCheck // what data.CheckDir found
	tr       *Trainer
	loader   stepSource // rank 0's
	// rankLoaders are ranks 1..devices-1's (run_distributed.go).
	rankLoaders []stepSource
	devices     int
	// val is the whole validation split, valPeriodic its capped prefix;
	// valBytes is val's byte sidecar, when the data has one.
	val, valPeriodic, valBytes []uint16
	bytes                      ByteCounter
	accum                      int
	micro                      int
	// ckptStep is the step of the checkpoint on disk (-1: none yet).
	ckptStep int

	step  int
	qatOn bool // fake quantization switched on (Settings.QATStart reached)
	// seqLen is the training sequence length in use (Settings.SeqSchedule)
	// and seqChangeStep the step it last changed at (-1: never).
	seqLen, seqChangeStep int
	// raw holds the training weights once the EMA replaced them for the
	// final evaluation (the final checkpoint keeps both).
	raw       model.Weights
	trainTime time.Duration
	lastEval  EvalResult
	tokens    int64
	history   History
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, format+"\n", args...)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	o := r.opts
	r.s, r.cfg = o.Settings, o.Model
	r.ckptStep = -1
	var ck *Checkpoint
	if o.Resume != "" {
		var err error
		if ck, err = LoadCheckpoint(o.Resume); err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if ck.Optimizer == nil {
			return nil, fmt.Errorf("train: resume: checkpoint %s has no optimizer state", o.Resume)
		}
		r.cfg = ck.Config
		if own, _ := filepath.Abs(filepath.Join(o.OutDir, "checkpoint")); sameDir(own, o.Resume) {
			r.ckptStep = ck.State.Step
		}
	}
	if err := r.s.ValidateRun(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// One sequence length: the run's (the model config records it).
	r.cfg.SeqLen = r.s.SeqLen
	if err := r.resolveData(ctx, ck); err != nil {
		return nil, err
	}
	if err := r.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	defer r.tr.Close()
	defer r.closeLoaders()
	if ck != nil {
		if err := r.restore(ck); err != nil {
			return nil, fmt.Errorf("train: resume from %s: %w", o.Resume, err)
		}
	}
	warmup, err := r.warmup(ctx)
	if err != nil {
		return nil, err
	}
	stoppedBy, err := r.loop(ctx)
	if err != nil {
		return nil, err
	}
	var afterMs float64
	if o.AfterTraining != nil {
		start := time.Now()
		w, err := r.tr.Weights()
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		var deadline time.Time
		if r.s.MaxSeconds > 0 {
			deadline = time.Now().Add(time.Duration(r.s.MaxSeconds*float64(time.Second)) - r.trainTime)
		}
		line, err := o.AfterTraining(ctx, r.backend, r.cfg, w, r.dataDir, deadline)
		if err != nil {
			return nil, fmt.Errorf("train: after training: %w", err)
		}
		afterMs = ms(time.Since(start))
		r.logf("%s", line)
	}
	final := r.history.Val[len(r.history.Val)-1]
	res := &Result{
		Preset: r.s.Preset, Backend: r.desc, Devices: r.devices, Params: r.cfg.NumParams(), Steps: r.step, Tokens: r.tokens,
		TrainTimeMs: ms(r.trainTime), WarmupMs: ms(warmup), StoppedBy: stoppedBy,
		ValLoss: final.ValLoss, ValBPB: final.ValBPB, Final: r.lastEval,
		ValTokens: len(r.val) - 1, PeriodicValTokens: len(r.valPeriodic) - 1,
		Checkpoint: filepath.Join(o.OutDir, "checkpoint"), Settings: r.s, Model: r.cfg, History: r.history,
	}
	res.DataReads = []DataRead{{What: "training", StartMs: 0, EndMs: res.TrainTimeMs}}
	if o.AfterTraining != nil {
		res.DataReads = append(res.DataReads, DataRead{What: "after_training (GPTQ calibration)", StartMs: res.TrainTimeMs, EndMs: res.TrainTimeMs + afterMs})
	}
	res.EMA = r.raw != nil
	if r.step > 0 {
		res.StepAvgMs = res.TrainTimeMs / float64(r.step)
	}
	if r.trainTime > 0 {
		res.TokensPerS = float64(r.tokens) / r.trainTime.Seconds()
	}
	if o.LossPlot != nil {
		if err := o.LossPlot(filepath.Join(o.OutDir, "loss.png"), fmt.Sprintf("golf %s: %d steps", r.s.Preset, r.step), r.history); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if err := report.SaveJSON(filepath.Join(o.OutDir, "results.json"), res); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// setup opens the backend, finds or builds the data, loads the validation
// tokens and creates the trainer.
func (r *runner) setup(ctx context.Context) error {
	o := r.opts
	r.backend, r.desc = o.Backend, "caller's backend"
	r.bytes = r.tok.ByteTable()
	if r.backend == nil {
		b, desc, err := compute.Open(o.BackendSpec)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		r.backend, r.desc, r.ownBackend = b, desc, true
	} else {
		r.desc = r.backend.Description()
	}
	trainFiles, valFiles := r.check.Train, r.check.Val
	var err error
	if r.val, err = data.LoadValidation(valFiles, r.s.SeqLen); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if o.FinalValTokens < 0 {
		return fmt.Errorf("train: final validation tokens %d must not be negative", o.FinalValTokens)
	}
	r.val = data.CapValidation(r.val, r.s.SeqLen, o.FinalValTokens)
	r.valPeriodic = data.CapValidation(r.val, r.s.SeqLen, r.s.ValTokens)
	if data.HasValidationBytes(r.dataDir) {
		if r.valBytes, err = data.LoadValidationBytes(r.dataDir, len(r.val)); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if r.devices, err = runDevices(r.backend, o.Devices); err != nil {
		return err
	}
	rank, err := r.rankSettings()
	if err != nil {
		return err
	}
	if err := r.openLoaders(trainFiles); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	capTokens := acceleratorMicroTokens
	if isPureGo(r.backend) {
		capTokens = cpuMicroTokens
	}
	r.micro, r.accum = rank.MicroBatch(capTokens)
	for _, p := range r.s.SeqSchedule {
		if rows := rank.BatchTokens / p.SeqLen; rows%r.accum != 0 {
			r.closeLoaders()
			return fmt.Errorf("train: seq_schedule: %d rows of %d tokens per device do not divide into %d micro-batches (set micro-batch-tokens)", rows, p.SeqLen, r.accum)
		}
	}
	r.seqLen, r.seqChangeStep = r.s.seqLenAt(0), -1
	tcfg := r.cfg // the trainer's graph; checkpoints keep r.cfg, without QAT
	if r.s.QATBits > 0 {
		tcfg.QAT = &model.QATConfig{Bits: r.s.QATBits, ClipStd: r.s.QATClipStd, ByClass: r.s.QATByClass}
	}
	unlooped := r.cfg.NumLoops > 0 && r.s.LoopStartFrac > 0
	if r.tr, err = NewTrainer(r.backend, tcfg, r.s.Optimizer, TrainerOptions{AccumSteps: r.accum, Seed: r.s.Seed,
		EMADecay: r.s.EMADecay, Unlooped: unlooped, Devices: r.devices, ForceSPMD: o.SPMD}); err != nil {
		r.closeLoaders()
		return fmt.Errorf("train: %w", err)
	}
	r.logf("backend:%s", r.desc)
	r.logf("preset:%s model_params:%d vocab:%d", r.s.Preset, r.cfg.NumParams(), r.cfg.VocabSize)
	r.logf("data:%s train_shards:%d val_tokens:%d periodic_val_tokens:%d", r.dataDir, len(trainFiles), len(r.val)-1, len(r.valPeriodic)-1)
	r.logf("data_check:%s", r.check.Note)
	r.logf("tokenizer:%s (%s)", r.tok.Name(), r.tokHow)
	if r.valBytes != nil {
		r.logf("val_bpb:byte_sidecar:enabled")
	}
	r.logf("world_size:%d grad_accum_steps:%d micro_batch_tokens:%d spmd:%v", r.devices, r.accum, r.micro, r.tr.mesh != nil)
	op := r.tr.Optimizer()
	r.logf("embed_lr:%g matrix_lr:%g scalar_lr:%g muon_momentum:%g muon_dtype:%s storage_dtype:%s grad_clip_norm:%g",
		op.EmbedLR, op.MatrixLR, op.ScalarLR, op.MuonMomentum, op.NewtonSchulzDType, op.StorageDType, op.GradClipNorm)
	r.logf("train_batch_tokens:%d train_seq_len:%d iterations:%d warmup_steps:%d warmdown:%d max_wallclock_seconds:%.3f",
		r.s.BatchTokens, r.s.SeqLen, r.s.Iterations, r.s.WarmupSteps, r.s.Warmdown, r.s.MaxSeconds)
	if r.s.WarmdownFrac > 0 || r.s.EMADecay > 0 || r.cfg.NumLoops > 0 || r.s.DocumentPacking || len(r.s.SeqSchedule) > 0 {
		enc, dec := r.cfg.LayerOrder(true)
		r.logf("warmdown_frac:%g min_lr:%g ema_decay:%g num_loops:%d loop_start_frac:%g encoder:%v decoder:%v document_packing:%v max_doc_len:%d seq_schedule:%v",
			r.s.WarmdownFrac, r.s.MinLR, r.s.EMADecay, r.cfg.NumLoops, r.s.LoopStartFrac, enc, dec, r.s.DocumentPacking, r.s.MaxDocLen, r.s.SeqSchedule)
	}
	r.logf("seed:%d", r.s.Seed)
	return nil
}

// resolveData settles the run's shard folder and tokenizer (see
// Options.DataDir and Options.Tokenizer), checks the folder
// (data.CheckDir), and sizes the vocabulary when the config leaves it to
// the tokenizer. A resumed run keeps its checkpoint's data and tokenizer
// unless AllowDataChange.
func (r *runner) resolveData(ctx context.Context, ck *Checkpoint) error {
	o := r.opts
	dir := o.DataDir
	if dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	if ck != nil {
		st := ck.State
		switch {
		case dir == "" && (st.EmbeddedCorpus || st.DataDir == ""):
			// the embedded corpus again, rebuilt where this run builds it
		case dir == "":
			dir = st.DataDir
		case !sameDir(dir, st.DataDir) && !o.AllowDataChange:
			return fmt.Errorf("train: resume: %s trained on %s, not %s: resume without --data, or pass --allow-data-change to train on other shards", o.Resume, describeData(st), dir)
		}
	}
	tok, how, err := r.resolveTokenizer(ck, dir)
	if err != nil {
		return err
	}
	r.tok, r.tokHow = tok, how
	if dir == "" {
		r.embedded = true
		dir = o.CacheDir
		if dir == "" {
			dir = filepath.Join(o.OutDir, "data")
		}
		if err := data.EnsureDefault(ctx, dir, tok, r.log); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	r.dataDir = dir
	if r.check, err = data.CheckDir(dir, tok); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.cfg.VocabSize == 0 {
		r.cfg.VocabSize = tok.VocabSize()
	}
	if tok.VocabSize() != r.cfg.VocabSize {
		return fmt.Errorf("train: tokenizer %s has %d tokens, the model's vocabulary is %d (a zero Model.VocabSize follows the tokenizer)", tok.Name(), tok.VocabSize(), r.cfg.VocabSize)
	}
	return nil
}

// describeData names a checkpoint's data for messages.
func describeData(st TrainState) string {
	if st.EmbeddedCorpus {
		return "the embedded corpus"
	}
	return st.DataDir
}

// sameDir reports whether two paths name the same folder.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	if x, err := filepath.Abs(a); err == nil {
		a = x
	}
	if x, err := filepath.Abs(b); err == nil {
		b = x
	}
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// resolveTokenizer picks the run's tokenizer: the caller's; else a resumed
// run's own (its recorded file, or the embedded model); else the one the
// data folder names; else the embedded sp1024. A resumed run refuses a
// tokenizer whose digest differs from its checkpoint's, unless
// AllowDataChange.
func (r *runner) resolveTokenizer(ck *Checkpoint, dir string) (*tokenizer.Model, string, error) {
	o := r.opts
	if ck != nil {
		st := ck.State
		tok, how := o.Tokenizer, "given"
		if tok == nil {
			switch {
			case st.Tokenizer == "" || st.Tokenizer == tokenizer.DefaultModelName:
				tok, how = tokenizer.Default(), "the resumed run's, embedded"
			default:
				t, err := tokenizer.Load(st.Tokenizer)
				if err != nil {
					return nil, "", fmt.Errorf("train: resume: the run's tokenizer: %w (pass --tokenizer)", err)
				}
				tok, how = t, "the resumed run's"
			}
		}
		if !o.AllowDataChange {
			if st.TokenizerSHA256 != "" && tok.SHA256() != st.TokenizerSHA256 {
				return nil, "", fmt.Errorf("train: resume: %s trained with tokenizer %s (sha256 %.12s), not %s (sha256 %.12s): pass --allow-data-change to switch",
					o.Resume, st.Tokenizer, st.TokenizerSHA256, tok.Name(), tok.SHA256())
			}
			if st.TokenizerSHA256 == "" && st.Tokenizer != "" && filepath.Base(st.Tokenizer) != filepath.Base(tok.Name()) {
				return nil, "", fmt.Errorf("train: resume: %s trained with tokenizer %s, not %s: pass --allow-data-change to switch", o.Resume, st.Tokenizer, tok.Name())
			}
		}
		return tok, how, nil
	}
	if o.Tokenizer != nil {
		return o.Tokenizer, "given", nil
	}
	if dir != "" {
		tok, how, err := data.FolderTokenizer(dir)
		if err != nil {
			return nil, "", fmt.Errorf("train: %w", err)
		}
		if tok != nil {
			return tok, "named by the data: " + how, nil
		}
		return tokenizer.Default(), "the embedded default: " + dir + " does not name its tokenizer", nil
	}
	return tokenizer.Default(), "the embedded default", nil
}

// restore loads a checkpoint's weights, optimizer state and run state.
func (r *runner) restore(ck *Checkpoint) error {
	// With an EMA, weights.bin holds the average (what evaluation and export
	// use) and the training weights travel as optimizer state "raw/<name>".
	weights, opt := ck.Weights, ck.Optimizer
	if r.s.EMADecay > 0 {
		var raw model.Weights
		opt = nil
		for _, t := range ck.Optimizer {
			if name, ok := strings.CutPrefix(t.Name, rawPrefix); ok {
				t.Name = name
				raw = append(raw, t)
			} else {
				opt = append(opt, t)
			}
		}
		if len(raw) == 0 {
			return fmt.Errorf("checkpoint has no raw training weights for its EMA (saved without --ema-decay?)")
		}
		model.Annotate(r.cfg, raw)
		full := make(model.Weights, 0, len(ck.Weights))
		for _, w := range ck.Weights {
			if x, ok := raw.Get(w.Name); ok {
				w.Data = x.Data
			}
			full = append(full, w)
		}
		if err := r.tr.SetEMA(ck.Weights); err != nil {
			return err
		}
		weights = full
	}
	if err := r.tr.SetWeights(weights); err != nil {
		return err
	}
	if err := r.tr.SetOptimizerState(opt, ck.State.Step); err != nil {
		return err
	}
	if err := r.restoreLoaders(ck.State.Loader); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	r.seqChangeStep = ck.State.SeqChangeStep
	// Continue in the context length the run had reached (no change, so no
	// re-warm beyond the one the checkpoint records).
	r.seqLen = r.s.seqLenAt(r.s.Schedule().Frac(ck.State.Step, time.Duration(ck.State.TrainTimeMs*float64(time.Millisecond))))
	r.step = ck.State.Step
	r.trainTime = time.Duration(ck.State.TrainTimeMs * float64(time.Millisecond))
	r.tokens = ck.State.Tokens
	r.history = ck.State.History
	r.logf("resumed:%s step:%d train_time:%.0fms", r.opts.Resume, r.step, ck.State.TrainTimeMs)
	return nil
}

// SplitStep cuts one optimizer step's rows (row-major [rows, seqLen], as
// data.Loader.NextStep returns them) into accum micro-batches of
// rows/accum consecutive rows each, in order. The micro-batches share the
// slices' memory.
func SplitStep(inputs, targets []int32, seqLen, accum int) ([]Batch, error) {
	if seqLen < 1 || accum < 1 || len(inputs) != len(targets) || len(inputs)%seqLen != 0 {
		return nil, fmt.Errorf("train: split step: %d inputs and %d targets are not whole rows of %d for %d micro-batches", len(inputs), len(targets), seqLen, accum)
	}
	rows := len(inputs) / seqLen
	if rows%accum != 0 {
		return nil, fmt.Errorf("train: split step: %d rows do not divide into %d micro-batches", rows, accum)
	}
	n := rows / accum * seqLen
	micro := make([]Batch, accum)
	for i := range micro {
		micro[i] = NewBatch(inputs[i*n:(i+1)*n:(i+1)*n], targets[i*n:(i+1)*n:(i+1)*n], seqLen)
	}
	return micro, nil
}

// warmup runs the compile/priming steps and undoes them: weights, optimizer
// state and the loader return to where they were.
func (r *runner) warmup(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if r.s.WarmupSteps == 0 {
		return 0, nil
	}
	snap, err := r.tr.Snapshot()
	if err != nil {
		return 0, fmt.Errorf("train: warm-up: %w", err)
	}
	loaderState, err := r.loader.state()
	if err != nil {
		return 0, fmt.Errorf("train: warm-up: %w", err)
	}
	// Prime every graph the run will use, as the record primes its looped
	// graph too: the looped one when the loops start later, and each
	// sequence length of a progressive context.
	looping, seqLen := r.tr.Looping(), r.seqLen
	type phase struct {
		label   string
		looping bool
		seqLen  int
		steps   int
	}
	phases := []phase{{"warmup_step", looping, seqLen, r.s.WarmupSteps}}
	if !looping {
		phases = append(phases, phase{"loop_warmup_step", true, seqLen, r.s.WarmupSteps})
	}
	for _, p := range r.s.SeqSchedule {
		if p.SeqLen != seqLen {
			phases = append(phases, phase{fmt.Sprintf("seq_%d_warmup_step", p.SeqLen), true, p.SeqLen, 1})
		}
	}
	for _, p := range phases {
		r.tr.SetLooping(p.looping)
		r.seqLen = p.seqLen
		for i := range p.steps {
			ranks, err := r.nextStep()
			if err != nil {
				return 0, err
			}
			if _, err := r.tr.StepRanks(ctx, ranks, 1, r.s.Optimizer.Momentum().At(i)); err != nil {
				return 0, fmt.Errorf("train: warm-up: %w", err)
			}
			r.logf("%s:%d/%d", p.label, i+1, p.steps)
		}
	}
	r.tr.SetLooping(looping)
	r.seqLen = seqLen
	if err := r.tr.Restore(snap); err != nil {
		return 0, fmt.Errorf("train: warm-up: %w", err)
	}
	if err := r.restoreLoaders(loaderState); err != nil {
		return 0, fmt.Errorf("train: warm-up: rewind loader: %w", err)
	}
	d := time.Since(start)
	r.logf("warmup_time:%.0fms", ms(d))
	return d, nil
}

// nextStepAllowance is the time the loop expects the next optimizer step to
// take, given the slowest so far: 20 % more, so that step times that vary
// (other processes, a longer context) still end inside the budget.
func nextStepAllowance(slowest time.Duration) time.Duration { return slowest + slowest/5 }

// loop is the timed training loop, the reference's main loop.
func (r *runner) loop(ctx context.Context) (stoppedBy string, err error) {
	sched := r.s.Schedule()
	mom := r.s.Optimizer.Momentum()
	stop := r.s.stopStep()
	stopAfter := -1           // set when the wall clock runs out
	var slowest time.Duration // the longest optimizer step so far
	stepTokens := int64(r.s.BatchTokens)
	firstStep := r.step
	meter := progress.New(r.opts.Progress, "train", "tokens", int64(max(stop-r.step, 0))*stepTokens)
	t0 := time.Now()
	for {
		last := r.step >= stop || (stopAfter >= 0 && r.step >= stopAfter)
		if last || (r.s.ValEvery > 0 && r.step%r.s.ValEvery == 0 && !r.hasVal(r.step, false)) {
			r.trainTime += time.Since(t0)
			if last {
				if err := r.applyEMA(); err != nil {
					return "", err
				}
			}
			if err := r.validate(ctx, last); err != nil {
				return "", err
			}
			t0 = time.Now()
		}
		if last {
			break
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("train: stopped at step %d: %w", r.step, err)
		}
		elapsed := r.trainTime + time.Since(t0)
		if sched.MaxTime > 0 && slowest > 0 && elapsed+nextStepAllowance(slowest) > sched.MaxTime {
			// The budget is a hard limit (the audit checks that no
			// training data is read after it): a step that would end past
			// it is not started. The reference instead stops after the
			// step that crosses the cap, overrunning by up to one step.
			stopAfter = r.step
			continue
		}
		scale := sched.LRScale(r.step, elapsed)
		frac := sched.Frac(r.step, elapsed)
		if r.cfg.NumLoops > 0 && !r.tr.Looping() && frac >= r.s.LoopStartFrac {
			r.tr.SetLooping(true)
			enc, dec := r.cfg.LayerOrder(true)
			r.logf("layer_loop:enabled step:%d frac:%.3f encoder:%v decoder:%v", r.step, frac, enc, dec)
		}
		if n := r.s.seqLenAt(frac); n != r.seqLen {
			r.logf("seq_len:%d->%d step:%d frac:%.3f", r.seqLen, n, r.step, frac)
			r.seqLen, r.seqChangeStep = n, r.step
		}
		if w := r.s.SeqChangeWarmupSteps; w > 0 && r.seqChangeStep >= 0 && r.step-r.seqChangeStep < w {
			scale *= float64(r.step-r.seqChangeStep+1) / float64(w)
		}
		if r.s.QATBits > 0 && !r.qatOn && r.s.qatProgress(r.step, elapsed) >= r.s.QATStart {
			if err := r.tr.SetQAT(true); err != nil {
				return "", fmt.Errorf("train: %w", err)
			}
			r.qatOn = true
			scheme := ""
			if r.s.QATScheme != "" {
				scheme = " scheme:" + r.s.QATScheme
			}
			r.logf("qat:on bits:%d clip_std:%g%s step:%d", r.s.QATBits, r.s.QATClipStd, scheme, r.step)
		}
		ranks, err := r.nextStep()
		if err != nil {
			return "", err
		}
		loss, err := r.tr.StepRanks(ctx, ranks, scale, mom.At(r.step))
		if err != nil {
			return "", fmt.Errorf("train: %w (%s)", err, r.keptCheckpoint())
		}
		r.step++
		r.tokens += stepTokens
		approx := r.trainTime + time.Since(t0)
		slowest = max(slowest, approx-elapsed)
		if sched.MaxTime > 0 {
			// Under a wall-clock cap the run ends with the clock, not at
			// Iterations: size the progress total (and so its ETA) by the
			// steps the remaining time allows at the mean step time.
			left := float64(max(sched.MaxTime-approx, 0)) / (float64(approx) / float64(r.step))
			meter.SetTotal(int64(min(float64(stop), float64(r.step)+math.Ceil(left))-float64(firstStep)) * stepTokens)
		}
		meter.Add(stepTokens)
		r.history.Train = append(r.history.Train, TrainPoint{Step: r.step, TrainTimeMs: ms(approx), Loss: loss, LRScale: scale})
		if r.s.LogEvery > 0 && (r.step <= 10 || r.step%r.s.LogEvery == 0 || stopAfter >= 0) {
			r.logf("step:%d/%d train_loss:%.4f train_time:%.0fms step_avg:%.2fms",
				r.step, r.s.Iterations, loss, ms(approx), ms(approx)/float64(r.step))
		}
		if sched.MaxTime > 0 && stopAfter < 0 && approx >= sched.MaxTime {
			stopAfter = r.step
		}
		if ce := r.s.CheckpointEvery; ce > 0 && r.step%ce == 0 && r.step < stop && stopAfter < 0 {
			r.trainTime += time.Since(t0)
			if err := r.checkpoint(); err != nil {
				return "", err
			}
			t0 = time.Now()
		}
	}
	meter.Done()
	switch {
	case stopAfter >= 0 && r.step < r.s.Iterations:
		stoppedBy = "wallclock"
		r.logf("stopping_early: wallclock_cap train_time:%.0fms step:%d/%d", ms(r.trainTime), r.step, r.s.Iterations)
	case r.step < r.s.Iterations:
		stoppedBy = "max_steps"
	default:
		stoppedBy = "iterations"
	}
	return stoppedBy, r.checkpoint()
}

// hasVal reports whether the history already has an evaluation at step (a
// resumed run does not repeat the one its checkpoint ended with); full
// asks for one over the whole validation split.
func (r *runner) hasVal(step int, full bool) bool {
	n := len(r.history.Val)
	if n == 0 || r.history.Val[n-1].Step != step {
		return false
	}
	v := r.history.Val[n-1]
	return !full || v.Tokens == int64(len(r.val)-1)
}

// validate evaluates the current weights and logs the reference's line:
// over the capped split periodically, over all of it when final.
func (r *runner) validate(ctx context.Context, final bool) error {
	if r.hasVal(r.step, final) {
		v := r.history.Val[len(r.history.Val)-1]
		r.lastEval = EvalResult{ValLoss: v.ValLoss, ValBPB: v.ValBPB, Tokens: v.Tokens}
		return nil
	}
	val := r.valPeriodic
	if final {
		val = r.val
	}
	rows := max(r.s.EvalBatchTokens/r.s.SeqLen, 1)
	var targetBytes []uint16
	if r.valBytes != nil {
		targetBytes = r.valBytes[:len(val)]
	}
	res, err := r.tr.Evaluate(ctx, val, r.bytes, EvalOptions{SeqLen: r.s.SeqLen, Stride: r.s.EvalStride, BatchRows: rows, Progress: r.opts.Progress, TargetBytes: targetBytes})
	if err != nil {
		return fmt.Errorf("train: step %d: %w", r.step, err)
	}
	r.lastEval = res
	r.history.Val = append(r.history.Val, ValPoint{Step: r.step, TrainTimeMs: ms(r.trainTime), ValLoss: res.ValLoss, ValBPB: res.ValBPB, Tokens: int64(len(val) - 1)})
	r.logf("step:%d/%d val_loss:%.4f val_bpb:%.4f train_time:%.0fms step_avg:%.2fms eval_time:%.0fms val_tokens:%d",
		r.step, r.s.Iterations, res.ValLoss, res.ValBPB, ms(r.trainTime), ms(r.trainTime)/float64(max(r.step, 1)), ms(res.Duration), len(val)-1)
	return nil
}

// keptCheckpoint says which checkpoint a failed run leaves, for messages.
func (r *runner) keptCheckpoint() string {
	if r.ckptStep < 0 {
		return "no checkpoint was saved in " + r.opts.OutDir
	}
	return fmt.Sprintf("the checkpoint in %s, from step %d, is kept: the last one with finite weights", filepath.Join(r.opts.OutDir, "checkpoint"), r.ckptStep)
}

// checkpoint saves the run's state under OutDir/checkpoint.
func (r *runner) checkpoint() error {
	w, err := r.tr.Weights()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	opt, err := r.tr.OptimizerState()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if r.tr.EMA() > 0 {
		// weights.bin is the model (the EMA); the training weights go with
		// the optimizer state.
		raw := w
		if r.raw != nil {
			raw = r.raw // the EMA replaced them for the final evaluation
		} else if w, err = r.tr.EMAWeights(); err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
		for _, t := range raw {
			opt = append(opt, model.Tensor{Name: rawPrefix + t.Name, Shape: t.Shape, Data: t.Data})
		}
	}
	ls, err := r.loader.state()
	if err != nil {
		return fmt.Errorf("train: checkpoint: loader state: %w", err)
	}
	dir := filepath.Join(r.opts.OutDir, "checkpoint")
	err = SaveCheckpoint(dir, &Checkpoint{Config: r.cfg, Weights: w, Optimizer: opt, State: TrainState{
		Step: r.step, TrainTimeMs: ms(r.trainTime), Tokens: r.tokens, Loader: ls, Settings: r.s, History: r.history,
		DataDir: r.dataDir, Tokenizer: r.tok.Name(), TokenizerSHA256: r.tok.SHA256(), EmbeddedCorpus: r.embedded,
		SeqChangeStep: r.seqChangeStep, EMAApplied: r.raw != nil,
	}})
	if errors.Is(err, ErrNonFinite) {
		return fmt.Errorf("train: step %d: not saved: %w (%s)", r.step, err, r.keptCheckpoint())
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	r.ckptStep = r.step
	r.logf("checkpoint:%s step:%d", dir, r.step)
	return nil
}

// rawPrefix names the training weights in a checkpoint's optimizer state
// when weights.bin holds their EMA.
const rawPrefix = "raw/"

// applyEMA replaces the live weights by their EMA before the final
// evaluation (the record's "ema:applying EMA weights"), keeping the training
// weights for the checkpoint. It does nothing without an EMA or twice.
func (r *runner) applyEMA() error {
	if r.tr.EMA() == 0 || r.raw != nil {
		return nil
	}
	raw, err := r.tr.Weights()
	if err != nil {
		return fmt.Errorf("train: EMA: %w", err)
	}
	avg, err := r.tr.EMAWeights()
	if err != nil {
		return fmt.Errorf("train: EMA: %w", err)
	}
	if err := r.tr.SetWeights(avg); err != nil {
		return fmt.Errorf("train: EMA: %w", err)
	}
	r.raw = raw
	r.logf("ema:applying EMA weights decay:%g step:%d", r.tr.EMA(), r.step)
	return nil
}

// DataRead is a span of timed training during which a run read training
// data: [StartMs, EndMs] from the start of timed training.
type DataRead struct {
	What    string  `json:"what"`
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
}
