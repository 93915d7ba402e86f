package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/internal/strictjson"
	"github.com/paramgolf/golf/model"
)

// A checkpoint is a directory:
//
//	config.json    the model.Config, as JSON
//	model.bin      the weights, in the tensor file format (see tensorfile.go),
//	               named as model.Params ("block_3/attn/c_q", "tok_emb", ...)
//	optimizer.bin  optimizer state in the same format: "muon/<param>" (Muon's
//	               momentum buffer), "adam_m/<param>" and "adam_v/<param>"
//	               (Adam's moments), in parameter order
//	state.json     TrainState: format tag, optimizer steps done, training
//	               time, the data loader's position, the run's settings, its
//	               loss history, and its data directory and tokenizer
//
// SaveCheckpoint writes all four into a temporary sibling directory and
// renames it into place only when complete, so the previous checkpoint stays
// intact until the new one is whole; a crash leaves either the old or the new
// one (plus, at worst, a stale temporary directory).
const checkpointFormat = "golf-checkpoint-v1"

// TrainState is a checkpoint's state.json.
type TrainState struct {
	Format      string          `json:"format"`
	Step        int             `json:"step"`          // optimizer steps done
	TrainTimeMs float64         `json:"train_time_ms"` // timed training so far (warm-up and eval excluded)
	Tokens      int64           `json:"tokens"`        // training tokens consumed
	Loader      json.RawMessage `json:"loader"`        // the data loader's State(), as JSON
	Settings    Settings        `json:"settings"`      // hyperparameters of the run
	History     History         `json:"history"`       // loss curve so far
	// DataDir is the absolute shard directory the run trained on (the
	// embedded corpus's build directory when it had no --data), and
	// Tokenizer the tokenizer's name (its file path, or the embedded
	// model's name): golf eval's defaults.
	DataDir   string `json:"data_dir,omitempty"`
	Tokenizer string `json:"tokenizer,omitempty"`
	// TokenizerSHA256 is the tokenizer file's digest, so that a resumed
	// run or an evaluation can tell a different tokenizer under the same
	// name; EmbeddedCorpus says the data was the embedded corpus (DataDir
	// is then only where it was built).
	TokenizerSHA256 string `json:"tokenizer_sha256,omitempty"`
	EmbeddedCorpus  bool   `json:"embedded_corpus,omitempty"`
	// SeqChangeStep is the step of the last training-context change
	// (Settings.SeqSchedule; -1 or 0 when none), for the LR re-warm.
	SeqChangeStep int `json:"seq_change_step,omitempty"`
	// EMAApplied says weights.bin is the final EMA of a finished run (the
	// training weights are in optimizer.bin as raw/<name>).
	EMAApplied bool `json:"ema_applied,omitempty"`
}

// Checkpoint is a loaded checkpoint directory.
type Checkpoint struct {
	Config    model.Config
	Weights   model.Weights
	Optimizer []model.Tensor // nil when the checkpoint has no optimizer.bin
	State     TrainState
}

const (
	configFile    = "config.json"
	weightsFile   = "model.bin"
	optimizerFile = "optimizer.bin"
	stateFile     = "state.json"
)

// SaveCheckpoint writes ck to dir atomically (see the format above). A nil
// ck.Optimizer writes weights only: enough for evaluation and quantization.
func SaveCheckpoint(dir string, ck *Checkpoint) error {
	dir = filepath.Clean(dir)
	if err := ck.Config.Validate(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := model.CheckOrderedWeights(ck.Config, ck.Weights); err != nil {
		return fmt.Errorf("save checkpoint %s: weights: %w", dir, err)
	}
	// A checkpoint never holds NaN or infinite values: resuming from one
	// could only fail again.
	if err := checkFinite("weights", ck.Weights); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := checkFinite("optimizer state", ck.Optimizer); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	// MkdirTemp creates the directory private (0700); a checkpoint is as
	// readable as any other output.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	st := ck.State
	st.Format = checkpointFormat
	if err := writeJSON(filepath.Join(tmp, configFile), ck.Config); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := WriteTensors(filepath.Join(tmp, weightsFile), ck.Weights); err != nil {
		return fmt.Errorf("save checkpoint %s: weights: %w", dir, err)
	}
	if ck.Optimizer != nil {
		if err := WriteTensors(filepath.Join(tmp, optimizerFile), ck.Optimizer); err != nil {
			return fmt.Errorf("save checkpoint %s: optimizer state: %w", dir, err)
		}
	}
	if err := writeJSON(filepath.Join(tmp, stateFile), st); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	// Swap. Where the platform can, in one atomic exchange (tmp then holds
	// the previous checkpoint, removed by the deferred RemoveAll); else move
	// the old checkpoint aside, the new one in, then drop the old: a kill
	// between the two renames leaves both whole under hidden names, which
	// ReadTrainState reports.
	old := ""
	if _, err := os.Stat(dir); err == nil {
		switch ok, err := atomicfile.Exchange(tmp, dir); {
		case err != nil:
			return fmt.Errorf("save checkpoint %s: swap in the new one: %w", dir, err)
		case ok:
			return syncDir(parent)
		}
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("save checkpoint %s: move the previous one aside: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir) // put the previous checkpoint back
		}
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return syncDir(parent)
}

// ErrNonFinite is wrapped by the error of SaveCheckpoint (and of a run's
// checkpoint) when the values to save hold NaN or infinities.
var ErrNonFinite = errors.New("non-finite values")

// checkFinite reports the tensors of ts that hold NaN or infinite values.
func checkFinite(what string, ts []model.Tensor) error {
	total, first := 0, ""
	for _, t := range ts {
		n := 0
		for _, x := range t.Data {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				n++
			}
		}
		if n > 0 && first == "" {
			first = fmt.Sprintf("%s: %d of %d", t.Name, n, len(t.Data))
		}
		total += n
	}
	if total > 0 {
		return fmt.Errorf("the %s hold %d %w (NaN or infinite; first %s)", what, total, ErrNonFinite, first)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ReadTrainState reads only a checkpoint directory's state.json: the step,
// settings, history and where the run's data came from, without loading
// any tensors.
func ReadTrainState(dir string) (*TrainState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			return nil, missingCheckpoint(dir)
		}
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var st TrainState
	st.Settings.Optimizer.UntiedEmbedLR = -1 // absent from checkpoints written before the field
	if err := strictjson.Decode(b, &st); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, stateFile, err)
	}
	if o := &st.Settings.Optimizer; o.UntiedEmbedLR == -1 {
		o.UntiedEmbedLR = o.EmbedLR // what such a run trained an untied head's embedding at
	}
	if st.Format != checkpointFormat {
		return nil, fmt.Errorf("checkpoint %s: %s has format %q, want %q", dir, stateFile, st.Format, checkpointFormat)
	}
	return &st, nil
}

// missingCheckpoint is the error for a checkpoint folder that does not
// exist: it names the complete checkpoints an interrupted save left beside
// it (hidden folders with a state.json) and how to put one back.
func missingCheckpoint(dir string) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	pattern := filepath.Join(parent, "."+base+".tmp-*")
	left, _ := filepath.Glob(pattern)
	var whole []string
	for _, d := range left {
		if _, err := os.Stat(filepath.Join(d, stateFile)); err == nil {
			whole = append(whole, d)
		}
	}
	if len(whole) == 0 {
		return fmt.Errorf("checkpoint %s: %w: no such folder", dir, os.ErrNotExist)
	}
	return fmt.Errorf("checkpoint %s: %w: a save was interrupted and left %s (a folder ending in .old holds the previous checkpoint, "+
		"one without it the new one): rename one to %s", dir, os.ErrNotExist, strings.Join(whole, " and "), dir)
}

// LoadCheckpoint reads a checkpoint directory written by SaveCheckpoint (or
// by `golf train`). The weights are checked against the config's parameters.
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	st, err := ReadTrainState(dir)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{State: *st}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := strictjson.Decode(b, &ck.Config); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, configFile, err)
	}
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, configFile, err)
	}
	ws, err := ReadTensors(filepath.Join(dir, weightsFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	ck.Weights = model.Weights(ws)
	if err := model.CheckOrderedWeights(ck.Config, ck.Weights); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, weightsFile, err)
	}
	// Version-1 files carry no classes or initialisers: the config's
	// registry supplies them (CheckOrderedWeights verified stored ones).
	model.Annotate(ck.Config, ck.Weights)
	opt, err := ReadTensors(filepath.Join(dir, optimizerFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	default:
		ck.Optimizer = opt
	}
	return ck, nil
}
