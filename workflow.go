package golf

import (
	"context"
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// The workflow's steps as single calls over the library packages, the ones
// the golf command makes (train.Run trains; these pack and evaluate):
//
//	packed, _ := golf.PackCheckpoint(ctx, "runs/x/checkpoint", quant.Record(), golf.PackOptions{})
//	packed.WriteFile("model.golf")
//	res, _ := golf.EvaluateArtifact(ctx, "model.golf", golf.EvalOptions{DataDir: "shards/"})
//
// They live here, above train and quant, because each needs both: the
// checkpoint and the evaluation come from train, the artifact from quant.

// CheckpointMeta is the artifact metadata of a checkpoint: its model config
// and the evaluation settings of its run.
func CheckpointMeta(ck *train.Checkpoint, source string) quant.Meta {
	return SettingsMeta(ck.Config, ck.State.Settings, source)
}

// SettingsMeta is the artifact metadata of a model trained with settings s.
func SettingsMeta(cfg model.Config, s train.Settings, source string) quant.Meta {
	return quant.Meta{Model: cfg, Source: source, Settings: quant.EvalSettings{
		Preset: s.Preset, SeqLen: s.SeqLen, EvalStride: s.EvalStride, EvalBatchTokens: s.EvalBatchTokens, ValTokens: s.ValTokens,
	}}
}

// PackOptions adjusts PackCheckpoint.
type PackOptions struct {
	// Hessians for GPTQ schemes; nil: calibrate over CalibrationTokens
	// training tokens of DataDir (default: the run's recorded data).
	Hessians          map[string]*quant.Hessian
	DataDir           string
	CalibrationTokens int              // 0: 32,768
	Backend           backends.Backend // for calibration; nil: the default backend
	Pack              quant.PackOptions
	Log               io.Writer // calibration lines (nil: none)
}

// PackCheckpoint quantizes a checkpoint's weights under scheme s (GPTQ
// Hessians from opts, or calibrated on the run's training shards) and packs
// them with the checkpoint's metadata: what golf pack --checkpoint writes.
func PackCheckpoint(ctx context.Context, dir string, s quant.Scheme, opts PackOptions) (*quant.Packed, error) {
	ck, err := train.LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	hs := opts.Hessians
	if hs == nil && s.UsesGPTQ() {
		dataDir := opts.DataDir
		if dataDir == "" {
			dataDir = ck.State.DataDir
		}
		if dataDir == "" {
			return nil, fmt.Errorf("pack %s: scheme %s needs GPTQ Hessians: give Hessians or a DataDir of training shards", dir, s.Name)
		}
		if hs, err = calibrate(ctx, ck, dataDir, opts); err != nil {
			return nil, fmt.Errorf("pack %s: %w", dir, err)
		}
	}
	p, err := quant.PackModel(ctx, CheckpointMeta(ck, "checkpoint "+dir), ck.Weights, s, quant.Options{Hessians: hs}, opts.Pack)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	return p, nil
}

func calibrate(ctx context.Context, ck *train.Checkpoint, dataDir string, opts PackOptions) (map[string]*quant.Hessian, error) {
	files, err := data.TrainFiles(dataDir)
	if err != nil {
		return nil, fmt.Errorf("calibration data: %w", err)
	}
	loader, err := data.NewLoader(files, 0, 1)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	backend := opts.Backend
	if backend == nil {
		if backend, _, err = compute.Open(""); err != nil {
			return nil, err
		}
	}
	seqLen := ck.State.Settings.SeqLen
	if seqLen <= 0 {
		seqLen = ck.Config.SeqLen
	}
	n := opts.CalibrationTokens
	if n <= 0 {
		n = 32768
	}
	hs, rep, err := quant.Calibrate(ctx, backend, ck.Config, ck.Weights, quant.LoaderSource{Loader: loader},
		quant.CalibrateOptions{SeqLen: seqLen, MaxTokens: max(n/seqLen, 1) * seqLen})
	if err != nil {
		return nil, err
	}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "calibration: %d training tokens of %s in %.1fs\n", rep.Tokens, dataDir, rep.Seconds)
	}
	return hs, nil
}

// EvalOptions adjusts Evaluate and EvaluateArtifact. Zero values (and -1
// for Stride and ValTokens) take the run's settings; the mode fields
// (DocIsolated, Tilt, TTT) choose how the targets are scored, as golf eval's
// flags do (package eval).
type EvalOptions struct {
	DataDir     string           // shards with fineweb_val_*.bin (required)
	Tokenizer   *tokenizer.Model // the shards' tokenizer; nil: the embedded sp1024
	Backend     backends.Backend // nil: the default backend (a GPU if present, else pure Go)
	SeqLen      int              // window length (the evaluation context)
	Stride      int              // sliding-window stride (-1: the run's; 0: non-overlapping)
	ValTokens   int              // cap on validation tokens (-1: the run's; 0: all)
	BatchTokens int              // tokens per graph call (0: the run's, else 65,536)
	// DocIsolated scores every target with its own document's tokens only.
	DocIsolated bool
	// Tilt adds the record's token n-gram tilt (nil: none).
	Tilt *eval.Tilt
	// TTT scores with score-first test-time training (nil: none).
	TTT *eval.TTT
	// BudgetTargets is the target count Result.Budget scales to (0: the
	// record's sp8192 validation set).
	BudgetTargets int64
	Progress      io.Writer
}

// Evaluation is what Evaluate measured and how.
type Evaluation struct {
	eval.Result
	SeqLen     int    `json:"seq_len"`
	Stride     int    `json:"eval_stride"`
	ValTokens  int    `json:"val_tokens_cap"` // 0: the whole split
	ByteSource string `json:"byte_source"`    // "byte table" or "byte sidecar"
}

// Evaluate scores a model's weights on the validation split in
// opts.DataDir with the run's evaluation settings s (as an artifact stores
// them), overridden by opts, through the compile-once evaluator (package
// eval): val_loss and val_bpb with the challenge's byte rule (or a CaseOps
// byte sidecar when the folder has one), in the mode opts chooses. golf eval
// makes this call for checkpoints and artifacts alike.
func Evaluate(ctx context.Context, cfg model.Config, w model.Weights, s quant.EvalSettings, opts EvalOptions) (*Evaluation, error) {
	ev := &Evaluation{SeqLen: s.SeqLen, Stride: s.EvalStride, ValTokens: s.ValTokens, ByteSource: "byte table"}
	if opts.SeqLen > 0 {
		ev.SeqLen = opts.SeqLen
	}
	if opts.Stride >= 0 {
		ev.Stride = opts.Stride
	}
	if opts.ValTokens >= 0 {
		ev.ValTokens = opts.ValTokens
	}
	batch := opts.BatchTokens
	if batch == 0 {
		batch = s.EvalBatchTokens
	}
	if batch == 0 {
		batch = 65536
	}
	if ev.SeqLen <= 0 || ev.Stride < 0 || ev.Stride > ev.SeqLen || batch <= 0 {
		return nil, fmt.Errorf("evaluate: need seq-len > 0, 0 <= stride <= seq-len and batch tokens > 0 (seq-len %d, stride %d, batch %d)", ev.SeqLen, ev.Stride, batch)
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("evaluate: no data directory")
	}
	tok := opts.Tokenizer
	if tok == nil {
		tok = tokenizer.Default()
	}
	if tok.VocabSize() != cfg.VocabSize {
		return nil, fmt.Errorf("evaluate: the model's vocabulary is %d, tokenizer %s has %d", cfg.VocabSize, tok.Name(), tok.VocabSize())
	}
	stream, err := LoadValidationStream(opts.DataDir, tok, ev.SeqLen, ev.ValTokens)
	if err != nil {
		return nil, err
	}
	if stream.Sidecar {
		ev.ByteSource = "byte sidecar"
	}
	backend := opts.Backend
	if backend == nil {
		if backend, _, err = compute.Open(""); err != nil {
			return nil, err
		}
		defer backend.Finalize()
	}
	e, err := eval.New(backend, cfg, w)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	res, err := e.Evaluate(ctx, stream.Tokens, stream.Bytes, eval.Options{SeqLen: ev.SeqLen, Stride: ev.Stride, DocIsolated: opts.DocIsolated,
		BOS: tok.BOS(), BatchTokens: max(batch, ev.SeqLen), Tilt: opts.Tilt, TTT: opts.TTT, BudgetTargets: opts.BudgetTargets,
		Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	ev.Result = *res
	return ev, nil
}

// ValidationStream is a data folder's validation stream, capped as
// Evaluate caps it, with the bytes val_bpb counts for each target.
type ValidationStream struct {
	Tokens []uint16
	// Bytes counts the targets' bytes: the folder's CaseOps byte sidecar
	// when it has one (then Sidecar is true), else the tokenizer's byte
	// table.
	Bytes   eval.ByteSource
	Sidecar bool
}

// LoadValidationStream reads the validation shards of dir
// (data.LoadValidation for sequences of seqLen), keeps the first whole
// sequences holding at most maxTokens targets (data.CapValidation; 0: all)
// and takes their bytes from dir's byte sidecar, or from tok's byte table
// when dir has none. Evaluate scores this stream; golf audit inspects it.
func LoadValidationStream(dir string, tok *tokenizer.Model, seqLen, maxTokens int) (*ValidationStream, error) {
	files, err := data.ValFiles(dir)
	if err != nil {
		return nil, err
	}
	val, err := data.LoadValidation(files, seqLen)
	if err != nil {
		return nil, err
	}
	st := &ValidationStream{Tokens: data.CapValidation(val, seqLen, maxTokens), Bytes: eval.TableBytes(tok.ByteTable())}
	if data.HasValidationBytes(dir) {
		counts, err := data.LoadValidationBytes(dir, len(st.Tokens))
		if err != nil {
			return nil, err
		}
		st.Bytes, st.Sidecar = eval.SidecarBytes(counts), true
	}
	return st, nil
}

// EvaluateArtifact reads an artifact (quant.ReadArtifact: its model config,
// dequantized weights and evaluation settings) and evaluates it: the
// round-trip val_bpb from the artifact alone.
func EvaluateArtifact(ctx context.Context, path string, opts EvalOptions) (*Evaluation, error) {
	a, err := quant.ReadArtifact(path)
	if err != nil {
		return nil, err
	}
	cfg, w, err := a.Model()
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", path, err)
	}
	ev, err := Evaluate(ctx, cfg, w, a.Meta.Settings, opts)
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", path, err)
	}
	return ev, nil
}
