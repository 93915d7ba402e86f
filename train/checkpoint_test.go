package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
)

// randomWeights returns cfg's parameters filled with seeded Gaussian values.
func randomWeights(cfg model.Config, seed uint64, std float64) model.Weights {
	rng := rand.New(rand.NewPCG(seed, 3))
	var w model.Weights
	for _, p := range cfg.Params() {
		t := model.Tensor{Name: p.Name, Shape: append([]int{}, p.Shape...), Class: p.Class, Init: p.Init}
		t.Data = make([]float32, t.NumElements())
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * std)
		}
		w = append(w, t)
	}
	return w
}

// testCheckpoint is a checkpoint of the tiny preset with random weights and
// a made-up run state.
func testCheckpoint(t *testing.T, seed uint64) *Checkpoint {
	t.Helper()
	cfg, s, err := PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	opt := make([]model.Tensor, 0)
	for _, p := range cfg.Params() {
		opt = append(opt, model.Tensor{Name: "adam_m/" + p.Name, Shape: p.Shape, Data: make([]float32, model.Tensor{Shape: p.Shape}.NumElements())})
	}
	opt[0].Data[0] = 0.25
	return &Checkpoint{
		Config: cfg, Weights: randomWeights(cfg, seed, 0.02), Optimizer: opt,
		State: TrainState{Step: 7, TrainTimeMs: 1234.5, Tokens: 7 * 4096, Loader: json.RawMessage(`{"file":0,"pos":28679}`),
			Settings: s, History: History{Train: []TrainPoint{{Step: 7, TrainTimeMs: 1234.5, Loss: 5.5, LRScale: 1}}},
			DataDir: "/data/shards", Tokenizer: "fineweb_1024_bpe.model"},
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "checkpoint")
	ck := testCheckpoint(t, 1)
	if err := SaveCheckpoint(dir, ck); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{configFile, weightsFile, optimizerFile, stateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("checkpoint lacks %s: %v", f, err)
		}
	}
	got, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, ck.Config) {
		t.Fatalf("config %+v, saved %+v", got.Config, ck.Config)
	}
	if !reflect.DeepEqual(got.Weights, ck.Weights) || !reflect.DeepEqual(got.Optimizer, ck.Optimizer) {
		t.Fatal("tensors differ after the round trip")
	}
	want := ck.State
	want.Format = checkpointFormat
	// The loader state is opaque JSON, saved indented: compare it compacted.
	var loader bytes.Buffer
	if err := json.Compact(&loader, got.State.Loader); err != nil || loader.String() != string(want.Loader) {
		t.Fatalf("loader state %s (%v), saved %s", got.State.Loader, err, want.Loader)
	}
	got.State.Loader = want.Loader
	if !reflect.DeepEqual(got.State, want) {
		t.Fatalf("state %+v\nsaved %+v", got.State, want)
	}
	st, err := ReadTrainState(dir)
	if err != nil || st.Step != 7 || st.DataDir != "/data/shards" {
		t.Fatalf("ReadTrainState: %+v, %v", st, err)
	}
	// Weights only (for evaluation and packing): no optimizer.bin.
	only := filepath.Join(t.TempDir(), "weights")
	ck.Optimizer = nil
	if err := SaveCheckpoint(only, ck); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadCheckpoint(only); err != nil || got.Optimizer != nil {
		t.Fatalf("weights-only checkpoint: optimizer %v, err %v", got.Optimizer, err)
	}
}

// A save that fails leaves the previous checkpoint as it was, and no
// temporary directories behind; a successful one replaces it whole.
func TestCheckpointReplaceIsAtomic(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "checkpoint")
	first := testCheckpoint(t, 1)
	if err := SaveCheckpoint(dir, first); err != nil {
		t.Fatal(err)
	}
	bad := testCheckpoint(t, 2)
	bad.Weights[1].Data = bad.Weights[1].Data[:3] // shape says more
	if err := SaveCheckpoint(dir, bad); err == nil {
		t.Fatal("weights not matching their shapes were saved")
	}
	bad = testCheckpoint(t, 2)
	bad.Weights = bad.Weights[1:] // a parameter missing
	if err := SaveCheckpoint(dir, bad); err == nil || !strings.Contains(err.Error(), "missing tensor") {
		t.Fatalf("weights missing a parameter: err %v", err)
	}
	got, err := LoadCheckpoint(dir)
	if err != nil || !reflect.DeepEqual(got.Weights, first.Weights) {
		t.Fatalf("the previous checkpoint did not survive a failed save: %v", err)
	}
	second := testCheckpoint(t, 3)
	second.State.Step = 8
	if err := SaveCheckpoint(dir, second); err != nil {
		t.Fatal(err)
	}
	got, err = LoadCheckpoint(dir)
	if err != nil || got.State.Step != 8 || !reflect.DeepEqual(got.Weights, second.Weights) {
		t.Fatalf("replaced checkpoint: step %d, err %v", got.State.Step, err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("left behind: %v", names)
	}
}

func TestLoadCheckpointRejectsDamage(t *testing.T) {
	ck := testCheckpoint(t, 4)
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"no state", func(d string) error { return os.Remove(filepath.Join(d, stateFile)) }, stateFile},
		{"foreign format", func(d string) error {
			return os.WriteFile(filepath.Join(d, stateFile), []byte(`{"format":"torch"}`), 0o644)
		}, `format "torch"`},
		{"bad config", func(d string) error {
			return os.WriteFile(filepath.Join(d, configFile), []byte(`{"vocab_size":-1}`), 0o644)
		}, configFile},
		{"unknown config field", func(d string) error {
			return os.WriteFile(filepath.Join(d, configFile), []byte(`{"colour":"blue"}`), 0o644)
		}, configFile},
		{"flipped weight byte", func(d string) error {
			p := filepath.Join(d, weightsFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, "checksum"},
		{"truncated optimizer state", func(d string) error {
			p := filepath.Join(d, optimizerFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b[:len(b)-9], 0o644)
		}, optimizerFile},
		{"weights of another model", func(d string) error {
			w := randomWeights(ck.Config, 1, 1)
			w[0].Name = "wte"
			return WriteTensors(filepath.Join(d, weightsFile), w)
		}, `"wte"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			if err := SaveCheckpoint(dir, ck); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCheckpoint(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err = %v, want one naming %s and %q", err, dir, tc.want)
			}
		})
	}
}

// A state.json written before OptimizerConfig.UntiedEmbedLR existed resumes
// with the learning rate such a run gave an untied head's embedding (its
// EmbedLR); a checkpoint that has the field keeps it.
func TestReadTrainStateUntiedEmbedLRDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoint")
	ck := testCheckpoint(t, 2)
	ck.State.Settings.Optimizer.EmbedLR = 0.07
	ck.State.Settings.Optimizer.UntiedEmbedLR = 0.5
	if err := SaveCheckpoint(dir, ck); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadTrainState(dir); err != nil || st.Settings.Optimizer.UntiedEmbedLR != 0.5 {
		t.Fatalf("saved 0.5, read %+v (%v)", st, err)
	}
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	opt := raw["settings"].(map[string]any)["optimizer"].(map[string]any)
	if _, ok := opt["untied_embed_lr"]; !ok {
		t.Fatal("state.json has no untied_embed_lr")
	}
	delete(opt, "untied_embed_lr")
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadTrainState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Settings.Optimizer.UntiedEmbedLR; got != 0.07 {
		t.Fatalf("old state.json: untied embedding lr %v, want its EmbedLR 0.07", got)
	}
}

// A save killed between its two renames (where there is no atomic
// exchange) leaves the checkpoint folder missing and the complete previous
// one under a hidden name: reading the checkpoint says so and names it.
func TestMissingCheckpointNamesInterruptedSave(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "checkpoint")
	if _, err := ReadTrainState(dir); err == nil || !errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("no checkpoint at all: err %v", err)
	}
	if err := SaveCheckpoint(dir, testCheckpoint(t, 1)); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(parent, ".checkpoint.tmp-123.old")
	if err := os.Rename(dir, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, ".checkpoint.tmp-456"), 0o755); err != nil { // an unfinished write: no state.json
		t.Fatal(err)
	}
	_, err := LoadCheckpoint(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), old) || strings.Contains(err.Error(), "tmp-456") {
		t.Fatalf("interrupted save: err %v, want one naming %s only", err, old)
	}
	if err := os.Rename(old, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(dir); err != nil {
		t.Fatalf("the restored checkpoint: %v", err)
	}
}
