package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "evaluate a checkpoint or a packed artifact: val_loss and val_bpb (sliding, document-isolated, n-gram tilt, score-first TTT)",
		run:     runEval,
	})
}

// evalSource is a model to evaluate: its config, its weights, and the
// settings it was trained with (for defaults such as the sequence length).
type evalSource struct {
	name     string
	cfg      model.Config
	weights  model.Weights
	settings train.Settings
	// dir is the folder the source lives in: the checkpoint directory, or
	// the artifact's folder.
	dir string
	// dataDir and tokenizer are what the run trained on, when known (from a
	// checkpoint's state.json): the defaults of --data and --tokenizer.
	dataDir, tokenizer string
	// artifact: the weights are an artifact's dequantized ones.
	artifact bool
}

// loadCheckpointSource reads a checkpoint directory.
func loadCheckpointSource(dir string) (*evalSource, error) {
	ck, err := train.LoadCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	return &evalSource{name: dir, cfg: ck.Config, weights: ck.Weights, settings: ck.State.Settings,
		dir: dir, dataDir: ck.State.DataDir, tokenizer: ck.State.Tokenizer}, nil
}

// loadEvalSource reads the checkpoint or the artifact (exactly one of them
// is given). An artifact carries its model config and evaluation settings
// (see loadArtifactSource); when it sits in a checkpoint directory, where
// golf pack writes it by default, that run's data and tokenizer are its
// defaults too.
func loadEvalSource(checkpoint, artifact string) (*evalSource, error) {
	switch {
	case checkpoint != "" && artifact != "":
		return nil, fmt.Errorf("%w: give --checkpoint DIR or --artifact FILE, not both", errUsage)
	case checkpoint != "":
		return loadCheckpointSource(checkpoint)
	case artifact != "":
		src, err := loadArtifactSource(artifact)
		if err != nil {
			return nil, err
		}
		src.dir, src.artifact = filepath.Dir(artifact), true
		if st, err := train.ReadTrainState(src.dir); err == nil {
			src.dataDir, src.tokenizer = st.DataDir, st.Tokenizer
		}
		return src, nil
	}
	return nil, fmt.Errorf("%w: need --checkpoint DIR or --artifact FILE", errUsage)
}

// hasValShards reports whether dir holds validation shards.
func hasValShards(dir string) bool {
	if dir == "" {
		return false
	}
	files, err := data.ValFiles(dir)
	return err == nil && len(files) > 0
}

// evalTokenizer picks the tokenizer: the flag's; else the one the run
// trained with when it was a file that still exists (or the embedded
// model); else the one the data folder names (its manifest.json, or the
// challenge's layout); else the embedded sp1024. Its vocabulary must be the
// model's.
func evalTokenizer(path string, src *evalSource, dataDir string) (*tokenizer.Model, error) {
	if path == "" && src.tokenizer != "" && src.tokenizer != tokenizer.DefaultModelName {
		if _, err := os.Stat(src.tokenizer); err == nil {
			path = src.tokenizer
		}
	}
	var tok *tokenizer.Model
	switch {
	case path != "":
		t, err := tokenizer.Load(path)
		if err != nil {
			return nil, err
		}
		tok = t
	case src.tokenizer == tokenizer.DefaultModelName:
		tok = tokenizer.Default()
	case dataDir != "":
		t, _, err := data.FolderTokenizer(dataDir)
		if err != nil {
			return nil, err
		}
		tok = t
	}
	if tok == nil {
		tok = tokenizer.Default()
	}
	if tok.VocabSize() != src.cfg.VocabSize {
		return nil, fmt.Errorf("%w: %s has a vocabulary of %d, tokenizer %s has %d: pass the run's --tokenizer",
			errUsage, src.name, src.cfg.VocabSize, tok.Name(), tok.VocabSize())
	}
	return tok, nil
}

// evalDataDir picks the validation shards: the flag's directory; else the
// run's own data (recorded in its checkpoint); else the source's folder when
// shards sit next to it; else "" for the embedded corpus (see
// embeddedDataDir).
func evalDataDir(flagDir string, src *evalSource) string {
	switch {
	case flagDir != "":
		return flagDir
	case hasValShards(src.dataDir):
		return src.dataDir
	case hasValShards(src.dir):
		return src.dir
	}
	return ""
}

// evalData resolves the shards and tokenizer that evaluating (or
// calibrating) src reads, from the --tokenizer and --data flags
// (evalDataDir, evalTokenizer), and checks the folder (data.CheckDir).
func evalData(ctx context.Context, tokPath, flagDir string, src *evalSource) (*tokenizer.Model, *data.DirCheck, error) {
	dir := evalDataDir(flagDir, src)
	tok, err := evalTokenizer(tokPath, src, dir)
	if err != nil {
		return nil, nil, err
	}
	if dir == "" {
		if dir, err = embeddedDataDir(ctx, src, tok); err != nil {
			return nil, nil, err
		}
	}
	check, err := data.CheckDir(dir, tok)
	if err != nil {
		return nil, nil, err
	}
	return tok, check, nil
}

// embeddedDataDir builds the embedded corpus once into the user cache (or
// next to the source when there is none) and returns the folder.
func embeddedDataDir(ctx context.Context, src *evalSource, tok *tokenizer.Model) (string, error) {
	dir := corpusCacheDir(tok, filepath.Join(src.dir, "data"))
	return dir, data.EnsureDefault(ctx, dir, tok, nil)
}

// evalFlags are the flags that say how to evaluate, shared by golf eval
// and golf audit.
type evalFlags struct {
	ckpt, artifact, dataDir, tokPath, backendSpec *string
	seqLen, seqLenOld, stride, valTokens          *int
	batchTokens                                   *int
	docIsolated                                   *bool
	budgetTargets                                 *int64

	tilt                           *bool
	tiltOrder                      *int
	tiltThreshold, tiltBoost       *float64
	ttt                            *bool
	tttRank, tttChunk, tttBatch    *int
	tttAlpha, tttLR, tttWD         *float64
	tttBeta1, tttBeta2             *float64
	tttTargets, tttOrder           *string
	tttWarmA                       *bool
	tttPhases, tttPrefix           *int
	tttGlobalLR, tttGlobalMom      *float64
	tttGlobalClip                  *float64
	tttGlobalChunk, tttGlobalEps   *int
	tttGlobalRanks, tttGlobalBatch *int
	tttSeed                        *int64
}

func bindEvalFlags(fs *flag.FlagSet) *evalFlags {
	rt, tl := eval.RecordTTT(), eval.RecordTilt()
	f := &evalFlags{
		ckpt:     fs.String("checkpoint", "", "checkpoint directory written by golf train"),
		artifact: fs.String("artifact", "", "artifact written by golf pack (dequantized weights), instead of --checkpoint"),
		dataDir: fs.String("data", "", "shard directory with fineweb_val_*.bin (default: the run's own data when recorded, "+
			"shards next to the checkpoint or artifact, else the embedded corpus)"),
		tokPath:     fs.String("tokenizer", "", "SentencePiece .model of the shards (default: the run's, else the embedded sp1024)"),
		backendSpec: fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec"),
		seqLen:      fs.Int("eval-seq-len", 0, "evaluation context in tokens: window length, and TTT's longest context (default: the run's training sequence length; the record uses 2560)"),
		seqLenOld:   fs.Int("seq-len", 0, "the same as --eval-seq-len (older name)"),
		stride:      fs.Int("eval-stride", -1, "sliding-window stride; 0 = non-overlapping windows (default: the run's)"),
		valTokens:   fs.Int("val-tokens", -1, "cap on validation tokens (whole windows); 0 = all (default: the run's)"),
		batchTokens: fs.Int("batch-tokens", 0, "tokens per evaluation graph call (default: the run's, else 65536)"),
		docIsolated: fs.Bool("doc-isolated", false, "document-isolated attention: no target sees tokens before its document's BOS"),
		budgetTargets: fs.Int64("budget-targets", eval.RecordValTargets,
			"validation targets the 10-minute 8xH100 budget estimate scales to (the record's sp8192 set)"),

		tilt:          fs.Bool("ngram-tilt", false, "token n-gram tilt (PR #2135), exactly normalised"),
		tiltOrder:     fs.Int("tilt-order", tl.Order, "n-gram order of the tilt (context = order-1 previous targets)"),
		tiltThreshold: fs.Float64("tilt-threshold", tl.Threshold, "tilt gate: the hint's share of its context's occurrences"),
		tiltBoost:     fs.Float64("tilt-boost", tl.Boost, "tilt boost β"),

		ttt:        fs.Bool("ttt", false, "score-first LoRA test-time training with the phased global SGD (PR #2135)"),
		tttRank:    fs.Int("ttt-rank", rt.Rank, "LoRA rank"),
		tttAlpha:   fs.Float64("ttt-alpha", rt.Alpha, "LoRA alpha (scale alpha/rank)"),
		tttTargets: fs.String("ttt-targets", "q,v,o,mlp,head", "adapted targets, comma-separated from q, k, v, o, mlp, head"),
		tttChunk:   fs.Int("ttt-chunk", rt.Chunk, "targets scored, then trained on, per step"),
		tttLR:      fs.Float64("ttt-lr", rt.LR, "AdamW learning rate of the adapters"),
		tttBeta1:   fs.Float64("ttt-beta1", rt.Beta1, "AdamW beta1"),
		tttBeta2:   fs.Float64("ttt-beta2", rt.Beta2, "AdamW beta2"),
		tttWD:      fs.Float64("ttt-weight-decay", rt.WeightDecay, "AdamW decoupled weight decay"),
		tttBatch:   fs.Int("ttt-batch-docs", rt.BatchDocs, "documents adapted side by side"),
		tttWarmA:   fs.Bool("ttt-warm-a", rt.WarmStartA, "keep the A matrices from batch to batch"),
		tttOrder: fs.String("ttt-order", string(rt.Order), "document order: stream (causal) or record (PR #2135's length order, "+
			"which golf audit reports as not stream-causal)"),
		tttPhases:      fs.Int("ttt-phases", rt.Phases, "global SGD phases over the prefix documents"),
		tttPrefix:      fs.Int("ttt-prefix-docs", rt.PrefixDocs, "documents the global phases train on; 0 = no global phase"),
		tttGlobalLR:    fs.Float64("ttt-global-lr", rt.GlobalLR, "global SGD learning rate (cosine to 0 over its chunks)"),
		tttGlobalMom:   fs.Float64("ttt-global-momentum", rt.GlobalMomentum, "global SGD momentum"),
		tttGlobalClip:  fs.Float64("ttt-global-clip", rt.GlobalClip, "global SGD gradient-norm clip; 0 = none"),
		tttGlobalChunk: fs.Int("ttt-global-chunk", rt.GlobalChunkTokens, "tokens per global SGD chunk (one cosine LR value each)"),
		tttGlobalRanks: fs.Int("ttt-global-ranks", rt.GlobalRanks, "ranks whose data-parallel global SGD step is reproduced: a chunk's sequences split over them, the loss the mean of their means (the record's 8 GPUs); 1 = one mean"),
		tttGlobalBatch: fs.Int("ttt-global-batch-seqs", rt.GlobalBatchSeqs, "sequences per rank per global SGD step; 0 = a rank's whole share of the chunk"),
		tttGlobalEps:   fs.Int("ttt-global-epochs", rt.GlobalEpochs, "passes over each global chunk"),
		tttSeed:        fs.Int64("ttt-seed", rt.Seed, "seed of the adapters' A matrices"),
	}
	return f
}

// tttSettings returns the test-time training settings of the flags.
func (f *evalFlags) tttSettings() (*eval.TTT, error) {
	t := eval.RecordTTT()
	t.Q, t.K, t.V, t.O, t.MLP, t.Head = false, false, false, false, false, false
	for _, name := range splitList(*f.tttTargets) {
		switch name {
		case "q":
			t.Q = true
		case "k":
			t.K = true
		case "v":
			t.V = true
		case "o":
			t.O = true
		case "mlp":
			t.MLP = true
		case "head":
			t.Head = true
		default:
			return nil, fmt.Errorf("%w: --ttt-targets: unknown target %q (have q, k, v, o, mlp, head)", errUsage, name)
		}
	}
	t.Rank, t.Alpha, t.Chunk, t.LR = *f.tttRank, *f.tttAlpha, *f.tttChunk, *f.tttLR
	t.Beta1, t.Beta2, t.WeightDecay, t.BatchDocs, t.WarmStartA = *f.tttBeta1, *f.tttBeta2, *f.tttWD, *f.tttBatch, *f.tttWarmA
	t.Order = eval.Order(*f.tttOrder)
	t.Phases, t.PrefixDocs = *f.tttPhases, *f.tttPrefix
	t.GlobalLR, t.GlobalMomentum, t.GlobalClip = *f.tttGlobalLR, *f.tttGlobalMom, *f.tttGlobalClip
	t.GlobalChunkTokens, t.GlobalEpochs, t.Seed = *f.tttGlobalChunk, *f.tttGlobalEps, *f.tttSeed
	t.GlobalRanks, t.GlobalBatchSeqs = *f.tttGlobalRanks, *f.tttGlobalBatch
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return &t, nil
}

// tiltSettings returns the tilt of the flags.
func (f *evalFlags) tiltSettings() (*eval.Tilt, error) {
	t := eval.Tilt{Order: *f.tiltOrder, Threshold: *f.tiltThreshold, Boost: *f.tiltBoost}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return &t, nil
}

// evalRun is everything an evaluation needs, resolved from the flags.
// golf eval hands dir to golf.Evaluate, which reads the validation
// stream itself; golf audit, which inspects the stream, reads it once
// with golf.LoadValidationStream.
type evalRun struct {
	src   *evalSource
	tok   *tokenizer.Model
	dir   string
	opts  eval.Options
	limit int // the validation cap (0: the whole split)
}

// resolve loads the source and tokenizer, checks the data folder and
// builds the evaluation options; the configured modes follow the flags.
func (f *evalFlags) resolve(ctx context.Context) (*evalRun, error) {
	src, err := loadEvalSource(*f.ckpt, *f.artifact)
	if err != nil {
		return nil, err
	}
	opts := eval.Options{SeqLen: src.settings.SeqLen, Stride: src.settings.EvalStride, DocIsolated: *f.docIsolated,
		BudgetTargets: *f.budgetTargets}
	switch {
	case *f.seqLen > 0:
		opts.SeqLen = *f.seqLen
	case *f.seqLenOld > 0:
		opts.SeqLen = *f.seqLenOld
	}
	if *f.stride >= 0 {
		opts.Stride = *f.stride
	}
	limit := 0 // the whole split: a run's cap is for its periodic validation
	if *f.valTokens >= 0 {
		limit = *f.valTokens
	}
	bt := *f.batchTokens
	if bt == 0 {
		bt = src.settings.EvalBatchTokens
		if bt == 0 {
			bt = 65536
		}
	}
	if opts.SeqLen <= 0 || opts.Stride > opts.SeqLen || bt <= 0 {
		return nil, fmt.Errorf("%w: need eval-seq-len > 0, eval-stride <= eval-seq-len and batch-tokens > 0 (eval-seq-len %d, stride %d, batch-tokens %d)",
			errUsage, opts.SeqLen, opts.Stride, bt)
	}
	opts.BatchTokens = max(bt, opts.SeqLen)
	if *f.tilt {
		if opts.Tilt, err = f.tiltSettings(); err != nil {
			return nil, err
		}
	}
	if *f.ttt {
		if opts.TTT, err = f.tttSettings(); err != nil {
			return nil, err
		}
	}
	tok, check, err := evalData(ctx, *f.tokPath, *f.dataDir, src)
	if err != nil {
		return nil, err
	}
	opts.BOS = tok.BOS()
	return &evalRun{src: src, tok: tok, dir: check.Dir, opts: opts, limit: limit}, nil
}

// modeName describes the mode of opts: "plain", "sliding-64",
// "doc-isolated", "ttt", "ttt-record", with "+tilt".
func modeName(o eval.Options) string {
	var parts []string
	switch {
	case o.TTT != nil && o.TTT.Order == eval.RecordOrder:
		parts = append(parts, "ttt-record")
	case o.TTT != nil:
		parts = append(parts, "ttt")
	default:
		if o.DocIsolated {
			parts = append(parts, "doc-isolated")
		}
		if o.Stride > 0 && o.Stride < o.SeqLen {
			parts = append(parts, fmt.Sprintf("sliding-%d", o.Stride))
		}
		if len(parts) == 0 {
			parts = append(parts, "plain")
		}
	}
	if o.Tilt != nil {
		parts = append(parts, "tilt")
	}
	return strings.Join(parts, "+")
}

// evalOutput is golf eval's JSON output.
type evalOutput struct {
	Source  string     `json:"source"`
	Data    string     `json:"data"`
	Backend string     `json:"backend"`
	Mode    string     `json:"mode"`
	SeqLen  int        `json:"seq_len"`
	Stride  int        `json:"eval_stride"`
	Tilt    *eval.Tilt `json:"ngram_tilt,omitempty"`
	TTT     *eval.TTT  `json:"ttt,omitempty"`
	// ByteSource is where the bytes come from: "byte table" or "byte
	// sidecar" (CaseOps data).
	ByteSource  string `json:"byte_source"`
	TokenLosses string `json:"token_losses,omitempty"`
	eval.Result
}

func runEval(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "eval", "")
	f := bindEvalFlags(fs)
	tokenLosses := fs.String("token-losses", "", "write every target's loss to this file: header \"pos\ttarget\tnats\tbytes\", one line per target in stream order")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	run, err := f.resolve(ctx)
	if err != nil {
		return err
	}
	if data.HasValidationBytes(run.dir) {
		fmt.Fprintln(env.stderr, "val_bpb:byte_sidecar:enabled")
	}
	backend, desc, err := compute.Open(*f.backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	run.opts.Progress = outf.progress(env)
	o := run.opts
	ev, err := golf.Evaluate(ctx, run.src.cfg, run.src.weights, quant.EvalSettings{EvalBatchTokens: o.BatchTokens}, golf.EvalOptions{
		DataDir: run.dir, Tokenizer: run.tok, Backend: backend, SeqLen: o.SeqLen, Stride: o.Stride, ValTokens: run.limit,
		BatchTokens: o.BatchTokens, DocIsolated: o.DocIsolated, Tilt: o.Tilt, TTT: o.TTT, BudgetTargets: o.BudgetTargets, Progress: o.Progress})
	if err != nil {
		return fmt.Errorf("%s: %w", run.src.name, err)
	}
	res := &ev.Result
	if *tokenLosses != "" {
		if err := atomicfile.Write(*tokenLosses, res.WriteTokenLosses); err != nil {
			return fmt.Errorf("token losses: %w", err)
		}
	}
	out := evalOutput{Source: run.src.name, Data: run.dir, Backend: desc, Mode: modeName(run.opts), SeqLen: run.opts.SeqLen,
		Stride: max(run.opts.Stride, 0), Tilt: run.opts.Tilt, TTT: run.opts.TTT, ByteSource: ev.ByteSource,
		TokenLosses: *tokenLosses, Result: *res}
	return outf.emit(env, out, func(w io.Writer) error { return printEval(w, out) })
}

// printEval writes golf eval's table.
func printEval(w io.Writer, o evalOutput) error {
	t := report.NewTable(fmt.Sprintf("golf eval: %s on %s", o.Source, o.Backend), "metric", "value")
	t.Add("val_loss", fmt.Sprintf("%.6f", o.ValLoss))
	t.Add("val_bpb", fmt.Sprintf("%.6f", o.ValBPB))
	t.Add("mode", o.Mode)
	t.Add("tokens", o.Tokens)
	t.Add("bytes", o.Bytes)
	t.Add("eval_seq_len", o.SeqLen)
	t.Add("stride", o.Stride)
	t.Add("rows run", o.Windows)
	t.Add("data", o.Data)
	t.Add("bytes from", o.ByteSource)
	t.Add("eval_time", progress.Duration(o.Duration))
	for _, p := range o.Phases {
		t.Add("  "+p.Name, progress.Duration(p.Duration))
	}
	fit := "over"
	if o.Budget.Fits {
		fit = "within"
	}
	t.Add(fmt.Sprintf("estimate on %d of this device", o.Budget.Devices), fmt.Sprintf("%.0f s (%s the %d s budget)", o.Budget.Seconds, fit, int(o.Budget.LimitSeconds)))
	if o.TokenLosses != "" {
		t.Add("token losses", o.TokenLosses)
	}
	if err := t.Print(w); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "estimate: %s\n", o.Budget.Assumption)
	return err
}
