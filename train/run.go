package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
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

	// DataDir holds the shards (fineweb_train_*.bin, fineweb_val_*.bin).
	// Empty: the embedded corpus, built once into CacheDir.
	DataDir  string
	CacheDir string // where the embedded corpus is built; empty: OutDir/data
	// Tokenizer is the tokenizer of the shards, for the byte table of
	// val_bpb; nil: the embedded sp1024.
	Tokenizer *tokenizer.Model

	Backend     backends.Backend // nil: opened with compute.Open(BackendSpec)
	BackendSpec string

	// OutDir receives train.log, results.json, loss.png and checkpoint/.
	OutDir string
	// Resume continues the run saved in this checkpoint directory: weights,
	// optimizer state, step, training time, loader position and history.
	Resume string

	Log      io.Writer // the key:value log lines (also written to OutDir/train.log); nil: discard
	Progress io.Writer // periodic progress lines; nil: none

	// AfterTraining, when set, runs when the training loop ends, with the
	// final weights, the training shards' folder and the end of the
	// wall-clock budget (zero without a cap): GPTQ calibration inside the
	// budget (see Settings.GPTQReserveSeconds). Its line is logged.
	AfterTraining func(ctx context.Context, backend backends.Backend, w model.Weights, dataDir string, deadline time.Time) (logLine string, err error)
}

// Result summarises a run; it is also written to OutDir/results.json.
type Result struct {
	Preset      string       `json:"preset"`
	Backend     string       `json:"backend"`
	Params      int          `json:"params"`
	Steps       int          `json:"steps"`
	Tokens      int64        `json:"tokens"`
	TrainTimeMs float64      `json:"train_time_ms"`
	StepAvgMs   float64      `json:"step_avg_ms"`
	TokensPerS  float64      `json:"tokens_per_s"`
	WarmupMs    float64      `json:"warmup_ms"`  // compile and priming steps, not in TrainTimeMs
	StoppedBy   string       `json:"stopped_by"` // "iterations", "max_steps" or "wallclock"
	Final       EvalResult   `json:"final"`
	ValLoss     float64      `json:"val_loss"`
	ValBPB      float64      `json:"val_bpb"`
	Checkpoint  string       `json:"checkpoint"`
	Settings    Settings     `json:"settings"`
	Model       model.Config `json:"model"`
	History     History      `json:"history"`
}

// Run trains a model as the reference does and evaluates it:
//
//  1. WarmupSteps optimizer steps compile and prime the graphs; their weight
//     and optimizer changes are undone and the data loader rewound, and their
//     time is not counted.
//  2. Each step takes BatchTokens tokens as AccumSteps micro-batches, at the
//     schedule's learning rate and Muon's momentum; training stops at
//     Iterations (or MaxSteps) or once the timed training reaches MaxSeconds.
//  3. Validation runs every ValEvery steps and at the end, outside the timed
//     budget; checkpoints likewise.
//
// Files under OutDir: train.log (the log lines), results.json (Result),
// loss.png and checkpoint/ (see SaveCheckpoint). A NaN or infinite loss
// stops the run with an error naming the step and leaves the last
// checkpoint untouched.
func Run(ctx context.Context, opts Options) (res *Result, err error) {
	defer recoverGraphPanic("train", &err)
	if opts.OutDir == "" {
		return nil, errors.New("train: no output directory")
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
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
	// dataDir is the shard directory in use; tokName names the tokenizer.
	dataDir, tokName string
	tr               *Trainer
	loader           *data.Loader
	val              []uint16
	valBytes         []uint16 // the byte sidecar of val, when the data has one
	bytes            ByteCounter
	accum            int
	micro            int

	step      int
	qatOn     bool // fake quantization switched on (Settings.QATStart reached)
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
	}
	if err := r.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := r.s.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	defer r.tr.Close()
	defer r.loader.Close()
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
	if o.AfterTraining != nil {
		w, err := r.tr.Weights()
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		var deadline time.Time
		if r.s.MaxSeconds > 0 {
			deadline = time.Now().Add(time.Duration(r.s.MaxSeconds*float64(time.Second)) - r.trainTime)
		}
		line, err := o.AfterTraining(ctx, r.backend, w, r.dataDir, deadline)
		if err != nil {
			return nil, fmt.Errorf("train: after training: %w", err)
		}
		r.logf("%s", line)
	}
	final := r.history.Val[len(r.history.Val)-1]
	res := &Result{
		Preset: r.s.Preset, Backend: r.desc, Params: r.cfg.NumParams(), Steps: r.step, Tokens: r.tokens,
		TrainTimeMs: ms(r.trainTime), WarmupMs: ms(warmup), StoppedBy: stoppedBy,
		ValLoss: final.ValLoss, ValBPB: final.ValBPB, Final: r.lastEval,
		Checkpoint: filepath.Join(o.OutDir, "checkpoint"), Settings: r.s, Model: r.cfg, History: r.history,
	}
	if r.step > 0 {
		res.StepAvgMs = res.TrainTimeMs / float64(r.step)
	}
	if r.trainTime > 0 {
		res.TokensPerS = float64(r.tokens) / r.trainTime.Seconds()
	}
	if err := PlotLoss(filepath.Join(o.OutDir, "loss.png"), fmt.Sprintf("golf %s: %d steps", r.s.Preset, r.step), r.history); err != nil {
		return nil, fmt.Errorf("train: %w", err)
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
	if r.backend == nil {
		b, desc, err := compute.Open(o.BackendSpec)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		r.backend, r.desc, r.ownBackend = b, desc, true
	} else {
		r.desc = r.backend.Description()
	}
	tok := o.Tokenizer
	if tok == nil {
		tok = tokenizer.Default()
	}
	if tok.VocabSize() != r.cfg.VocabSize {
		return fmt.Errorf("train: tokenizer %s has %d tokens, the model's vocabulary is %d", tok.Name(), tok.VocabSize(), r.cfg.VocabSize)
	}
	r.bytes = tok.ByteTable()
	r.tokName = tok.Name()
	dir := o.DataDir
	if dir == "" {
		dir = o.CacheDir
		if dir == "" {
			dir = filepath.Join(o.OutDir, "data")
		}
		if err := EnsureDefaultData(ctx, dir, tok, r.log); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	r.dataDir = dir
	trainFiles, err := data.TrainFiles(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	valFiles, err := data.ValFiles(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.val, err = data.LoadValidation(valFiles, r.s.SeqLen); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if cap := r.s.ValTokens; cap > 0 && len(r.val)-1 > cap {
		n := max(cap/r.s.SeqLen, 1) * r.s.SeqLen
		r.val = r.val[:n+1]
	}
	if data.HasValidationBytes(dir) {
		if r.valBytes, err = data.LoadValidationBytes(dir, len(r.val)); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if r.loader, err = data.NewLoader(trainFiles, 0, 1); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	capTokens := acceleratorMicroTokens
	if isPureGo(r.backend) {
		capTokens = cpuMicroTokens
	}
	r.micro, r.accum = r.s.MicroBatch(capTokens)
	tcfg := r.cfg // the trainer's graph; checkpoints keep r.cfg, without QAT
	if r.s.QATBits > 0 {
		tcfg.QAT = &model.QATConfig{Bits: r.s.QATBits, ClipStd: r.s.QATClipStd, ByClass: r.s.QATByClass}
	}
	if r.tr, err = NewTrainer(r.backend, tcfg, r.s.Optimizer, TrainerOptions{AccumSteps: r.accum, Seed: r.s.Seed}); err != nil {
		r.loader.Close()
		return fmt.Errorf("train: %w", err)
	}
	r.logf("backend:%s", r.desc)
	r.logf("preset:%s model_params:%d vocab:%d", r.s.Preset, r.cfg.NumParams(), r.cfg.VocabSize)
	r.logf("data:%s train_shards:%d val_tokens:%d", dir, len(trainFiles), len(r.val)-1)
	if r.valBytes != nil {
		r.logf("val_bpb:byte_sidecar:enabled")
	}
	r.logf("world_size:1 grad_accum_steps:%d micro_batch_tokens:%d", r.accum, r.micro)
	op := r.s.Optimizer
	r.logf("embed_lr:%g matrix_lr:%g scalar_lr:%g muon_momentum:%g muon_dtype:%s grad_clip_norm:%g",
		op.EmbedLR, op.MatrixLR, op.ScalarLR, op.MuonMomentum, op.NewtonSchulzDType, op.GradClipNorm)
	r.logf("train_batch_tokens:%d train_seq_len:%d iterations:%d warmup_steps:%d warmdown:%d max_wallclock_seconds:%.3f",
		r.s.BatchTokens, r.s.SeqLen, r.s.Iterations, r.s.WarmupSteps, r.s.Warmdown, r.s.MaxSeconds)
	r.logf("seed:%d", r.s.Seed)
	return nil
}

// EnsureDefaultData builds the embedded corpus's shards (data.BuildDefault)
// into dir with tok, unless dir already holds training and validation
// shards, so that repeated runs tokenize it once. A line goes to log (nil:
// none) when it builds.
func EnsureDefaultData(ctx context.Context, dir string, tok *tokenizer.Model, log io.Writer) error {
	if files, err := data.ValFiles(dir); err == nil && len(files) > 0 {
		if files, err := data.TrainFiles(dir); err == nil && len(files) > 0 {
			return nil
		}
	}
	fmt.Fprintf(orDiscard(log), "data: building the embedded corpus into %s\n", dir)
	if _, err := data.BuildDefault(ctx, dir, tok); err != nil {
		return fmt.Errorf("build the embedded corpus into %s: %w", dir, err)
	}
	return nil
}

// restore loads a checkpoint's weights, optimizer state and run state.
func (r *runner) restore(ck *Checkpoint) error {
	if err := r.tr.SetWeights(ck.Weights); err != nil {
		return err
	}
	if err := r.tr.SetOptimizerState(ck.Optimizer, ck.State.Step); err != nil {
		return err
	}
	var st data.LoaderState
	if err := json.Unmarshal(ck.State.Loader, &st); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	if err := r.loader.Restore(st); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	r.step = ck.State.Step
	r.trainTime = time.Duration(ck.State.TrainTimeMs * float64(time.Millisecond))
	r.tokens = ck.State.Tokens
	r.history = ck.State.History
	r.logf("resumed:%s step:%d train_time:%.0fms", r.opts.Resume, r.step, ck.State.TrainTimeMs)
	return nil
}

// nextStep reads one optimizer step's micro-batches.
func (r *runner) nextStep() ([]Batch, error) {
	micro := make([]Batch, r.accum)
	for i := range micro {
		in, tg, err := r.loader.Next(r.s.BatchTokens, r.s.SeqLen, r.accum)
		if err != nil {
			return nil, fmt.Errorf("train: data: %w", err)
		}
		micro[i] = NewBatch(in, tg, r.s.SeqLen)
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
	loaderState := r.loader.State()
	for i := range r.s.WarmupSteps {
		micro, err := r.nextStep()
		if err != nil {
			return 0, err
		}
		if _, err := r.tr.Step(ctx, micro, 1, r.s.Optimizer.Momentum().At(i)); err != nil {
			return 0, fmt.Errorf("train: warm-up: %w", err)
		}
		r.logf("warmup_step:%d/%d", i+1, r.s.WarmupSteps)
	}
	if err := r.tr.Restore(snap); err != nil {
		return 0, fmt.Errorf("train: warm-up: %w", err)
	}
	if err := r.loader.Restore(loaderState); err != nil {
		return 0, fmt.Errorf("train: warm-up: rewind loader: %w", err)
	}
	d := time.Since(start)
	r.logf("warmup_time:%.0fms", ms(d))
	return d, nil
}

// loop is the timed training loop, the reference's main loop.
func (r *runner) loop(ctx context.Context) (stoppedBy string, err error) {
	sched := r.s.Schedule()
	mom := r.s.Optimizer.Momentum()
	stop := r.s.stopStep()
	stopAfter := -1 // set when the wall clock runs out
	stepTokens := int64(r.s.BatchTokens)
	firstStep := r.step
	meter := progress.New(r.opts.Progress, "train", "tokens", int64(max(stop-r.step, 0))*stepTokens)
	t0 := time.Now()
	for {
		last := r.step >= stop || (stopAfter >= 0 && r.step >= stopAfter)
		if last || (r.s.ValEvery > 0 && r.step%r.s.ValEvery == 0 && !r.hasVal(r.step)) {
			r.trainTime += time.Since(t0)
			if err := r.validate(ctx); err != nil {
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
		scale := sched.LRScale(r.step, elapsed)
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
		micro, err := r.nextStep()
		if err != nil {
			return "", err
		}
		loss, err := r.tr.Step(ctx, micro, scale, mom.At(r.step))
		if err != nil {
			return "", fmt.Errorf("train: %w (the last checkpoint is kept as it was)", err)
		}
		r.step++
		r.tokens += stepTokens
		approx := r.trainTime + time.Since(t0)
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
// resumed run does not repeat the one its checkpoint ended with).
func (r *runner) hasVal(step int) bool {
	n := len(r.history.Val)
	return n > 0 && r.history.Val[n-1].Step == step
}

// validate evaluates the current weights and logs the reference's line.
func (r *runner) validate(ctx context.Context) error {
	if r.hasVal(r.step) {
		v := r.history.Val[len(r.history.Val)-1]
		r.lastEval = EvalResult{ValLoss: v.ValLoss, ValBPB: v.ValBPB}
		return nil
	}
	rows := max(r.s.EvalBatchTokens/r.s.SeqLen, 1)
	res, err := r.tr.Evaluate(ctx, r.val, r.bytes, EvalOptions{SeqLen: r.s.SeqLen, Stride: r.s.EvalStride, BatchRows: rows, Progress: r.opts.Progress, TargetBytes: r.valBytes})
	if err != nil {
		return fmt.Errorf("train: step %d: %w", r.step, err)
	}
	r.lastEval = res
	r.history.Val = append(r.history.Val, ValPoint{Step: r.step, TrainTimeMs: ms(r.trainTime), ValLoss: res.ValLoss, ValBPB: res.ValBPB})
	r.logf("step:%d/%d val_loss:%.4f val_bpb:%.4f train_time:%.0fms step_avg:%.2fms eval_time:%.0fms",
		r.step, r.s.Iterations, res.ValLoss, res.ValBPB, ms(r.trainTime), ms(r.trainTime)/float64(max(r.step, 1)), ms(res.Duration))
	return nil
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
	ls, err := json.Marshal(r.loader.State())
	if err != nil {
		return fmt.Errorf("train: checkpoint: loader state: %w", err)
	}
	dir := filepath.Join(r.opts.OutDir, "checkpoint")
	err = SaveCheckpoint(dir, &Checkpoint{Config: r.cfg, Weights: w, Optimizer: opt, State: TrainState{
		Step: r.step, TrainTimeMs: ms(r.trainTime), Tokens: r.tokens, Loader: ls, Settings: r.s, History: r.history,
		DataDir: r.dataDir, Tokenizer: r.tokName,
	}})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	r.logf("checkpoint:%s step:%d", dir, r.step)
	return nil
}
