package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "evaluate a checkpoint or a packed artifact: val_loss and val_bpb, optionally with a sliding window",
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
		src.dir = filepath.Dir(artifact)
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

// evalTokenizer picks the tokenizer: the flag's, else the one the run
// trained with when it was a file that still exists, else the embedded
// sp1024. Its vocabulary must be the model's.
func evalTokenizer(path string, src *evalSource) (*tokenizer.Model, error) {
	if path == "" && src.tokenizer != "" && src.tokenizer != tokenizer.DefaultModelName {
		if _, err := os.Stat(src.tokenizer); err == nil {
			path = src.tokenizer
		}
	}
	tok, err := loadTokenizer(path)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() != src.cfg.VocabSize {
		return nil, fmt.Errorf("%w: %s has a vocabulary of %d, tokenizer %s has %d: pass the run's --tokenizer",
			errUsage, src.name, src.cfg.VocabSize, tok.Name(), tok.VocabSize())
	}
	return tok, nil
}

// evalDataDir picks the validation shards: the flag's directory; else the
// run's own data (recorded in its checkpoint); else the source's folder when
// shards sit next to it; else the embedded corpus, built once into the user
// cache (or next to the source when there is none).
func evalDataDir(ctx context.Context, flagDir string, src *evalSource, tok *tokenizer.Model) (string, error) {
	switch {
	case flagDir != "":
		return flagDir, nil
	case hasValShards(src.dataDir):
		return src.dataDir, nil
	case hasValShards(src.dir):
		return src.dir, nil
	}
	dir := corpusCacheDir(tok, filepath.Join(src.dir, "data"))
	return dir, train.EnsureDefaultData(ctx, dir, tok, nil)
}

// evalSettings are a run's evaluation settings as artifacts store them.
func evalSettings(s train.Settings) quant.EvalSettings {
	return golf.SettingsMeta(model.Config{}, s, "").Settings
}

// evalOutput is golf eval's JSON output.
type evalOutput struct {
	Source  string `json:"source"`
	Data    string `json:"data"`
	Backend string `json:"backend"`
	SeqLen  int    `json:"seq_len"`
	Stride  int    `json:"eval_stride"`
	// ByteSource is where the bytes come from: "byte table" or "byte
	// sidecar" (CaseOps data).
	ByteSource string `json:"byte_source"`
	train.EvalResult
}

func runEval(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "eval", "")
	ckpt := fs.String("checkpoint", "", "checkpoint directory written by golf train")
	artifact := fs.String("artifact", "", "artifact written by golf pack (dequantized weights), instead of --checkpoint")
	dataDir := fs.String("data", "", "shard directory with fineweb_val_*.bin (default: the run's own data when recorded, "+
		"shards next to the checkpoint or artifact, else the embedded corpus)")
	tokPath := fs.String("tokenizer", "", "SentencePiece .model of the shards (default: the run's, else the embedded sp1024)")
	stride := fs.Int("eval-stride", -1, "sliding-window stride; 0 = non-overlapping windows (default: the run's)")
	seqLen := fs.Int("seq-len", 0, "window length (default: the run's training sequence length)")
	valTokens := fs.Int("val-tokens", -1, "cap on validation tokens; 0 = all (default: the run's)")
	batchTokens := fs.Int("batch-tokens", 0, "tokens per evaluation graph call (default: the run's, else 65536)")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	src, err := loadEvalSource(*ckpt, *artifact)
	if err != nil {
		return err
	}
	if *batchTokens < 0 || (*seqLen == 0 && src.settings.SeqLen <= 0) {
		return fmt.Errorf("%w: need seq-len > 0 and batch-tokens >= 0 (seq-len %d, batch-tokens %d)", errUsage, *seqLen, *batchTokens)
	}
	tok, err := evalTokenizer(*tokPath, src)
	if err != nil {
		return err
	}
	dir, err := evalDataDir(ctx, *dataDir, src, tok)
	if err != nil {
		return err
	}
	backend, desc, err := compute.Open(*backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	eo := golf.EvalOptions{DataDir: dir, Tokenizer: tok, Backend: backend, SeqLen: *seqLen, Stride: *stride,
		ValTokens: *valTokens, BatchTokens: *batchTokens}
	if !*asJSON {
		eo.Progress = env.stderr
	}
	ev, err := golf.Evaluate(ctx, src.cfg, src.weights, evalSettings(src.settings), eo)
	if err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	if ev.ByteSource == "byte sidecar" {
		fmt.Fprintln(env.stderr, "val_bpb:byte_sidecar:enabled")
	}
	res, byteSource := ev.EvalResult, ev.ByteSource
	if *asJSON {
		return report.WriteJSON(env.stdout, evalOutput{Source: src.name, Data: dir, Backend: desc, SeqLen: ev.SeqLen,
			Stride: ev.Stride, ByteSource: byteSource, EvalResult: res})
	}
	t := report.NewTable(fmt.Sprintf("golf eval: %s on %s", src.name, desc), "metric", "value")
	t.Add("val_loss", fmt.Sprintf("%.4f", res.ValLoss))
	t.Add("val_bpb", fmt.Sprintf("%.4f", res.ValBPB))
	t.Add("tokens", res.Tokens)
	t.Add("bytes", res.Bytes)
	t.Add("seq_len", ev.SeqLen)
	t.Add("stride", ev.Stride)
	t.Add("windows", res.Windows)
	t.Add("data", dir)
	t.Add("bytes from", byteSource)
	t.Add("eval_time", res.Duration.Round(1e6).String())
	return t.Print(env.stdout)
}
