package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/paramgolf/golf/model"
)

// RunConfig is everything a run computes from: the model and the training
// settings. It is what `golf train --config FILE` reads, `--print-config`
// writes, and checkpoints and results.json keep.
type RunConfig struct {
	Model    model.Config `json:"model"`
	Settings Settings     `json:"train"`
	// VocabSet says a config file gave model.vocab_size itself; otherwise
	// golf train takes the tokenizer's vocabulary.
	VocabSet bool `json:"-"`
}

// runConfigFile is the JSON form of a config file: a preset to start from
// and the fields that override it.
//
//	{
//	  "preset": "tiny-record",
//	  "model":  {"num_layers": 8, "xsa_last_n": 8},
//	  "train":  {"max_seconds": 300, "optimizer": {"matrix_lr": 0.03}}
//	}
//
// Every field of model.Config and Settings can be given under its JSON
// name; unknown or misspelled fields are errors that name them.
type runConfigFile struct {
	Preset string          `json:"preset"`
	Model  json.RawMessage `json:"model"`
	Train  json.RawMessage `json:"train"`
}

// ParseRunConfig reads a JSON run configuration (see runConfigFile) from
// data; name is the file name used in errors. Fields override the preset's
// values (the file's "preset", else its train.preset as --print-config
// writes it, else "tiny"); the result is validated: an
// inconsistent option (a loop outside the layers, a sequence length that
// does not divide the batch) is an error saying which.
func ParseRunConfig(name string, data []byte) (RunConfig, error) {
	var f runConfigFile
	if err := decodeStrict(data, &f); err != nil {
		return RunConfig{}, fmt.Errorf("config %s: %w", name, err)
	}
	preset := f.Preset
	if preset == "" {
		// A printed config (--print-config) names its preset in train.
		var t struct {
			Preset string `json:"preset"`
		}
		_ = json.Unmarshal(f.Train, &t)
		preset = t.Preset
	}
	if preset == "" {
		preset = "tiny"
	}
	cfg, s, err := PresetSettings(preset)
	if err != nil {
		return RunConfig{}, fmt.Errorf("config %s: preset: %w", name, err)
	}
	presetSeq := cfg.SeqLen
	vocabSet := false
	if len(f.Model) > 0 {
		if err := decodeStrict(f.Model, &cfg); err != nil {
			return RunConfig{}, fmt.Errorf("config %s: model: %w", name, err)
		}
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(f.Model, &keys)
		_, vocabSet = keys["vocab_size"]
	}
	if len(f.Train) > 0 {
		if err := decodeStrict(f.Train, &s); err != nil {
			return RunConfig{}, fmt.Errorf("config %s: train: %w", name, err)
		}
	}
	rc := RunConfig{Model: cfg, Settings: s, VocabSet: vocabSet}
	if cfg.SeqLen != presetSeq && s.SeqLen != cfg.SeqLen {
		return RunConfig{}, fmt.Errorf("config %s: model.seq_len %d and train.seq_len %d disagree: give the training sequence length as train.seq_len", name, cfg.SeqLen, s.SeqLen)
	}
	rc.Model.SeqLen = rc.Settings.SeqLen
	// vocab_size 0 (as --print-config writes it for a run that takes the
	// tokenizer's) is checked with the preset's vocabulary.
	check := rc
	if check.Model.VocabSize == 0 {
		rc.VocabSet = false
		p, _ := model.Preset(preset)
		check.Model.VocabSize = p.VocabSize
	}
	if err := check.Validate(); err != nil {
		return RunConfig{}, fmt.Errorf("config %s: %w", name, err)
	}
	return rc, nil
}

// LoadRunConfig reads a run configuration file (see ParseRunConfig).
func LoadRunConfig(path string) (RunConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return RunConfig{}, fmt.Errorf("config: %w", err)
	}
	return ParseRunConfig(path, b)
}

// PresetRunConfig returns a named preset's run configuration.
func PresetRunConfig(name string) (RunConfig, error) {
	cfg, s, err := PresetSettings(name)
	if err != nil {
		return RunConfig{}, err
	}
	return RunConfig{Model: cfg, Settings: s}, nil
}

// Validate reports every inconsistency of the model, the settings and the
// two together.
func (rc RunConfig) Validate() error {
	var errs []error
	if err := rc.Model.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := rc.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	if rc.Model.SeqLen != rc.Settings.SeqLen {
		errs = append(errs, fmt.Errorf("model seq_len %d differs from the training seq_len %d", rc.Model.SeqLen, rc.Settings.SeqLen))
	}
	return errors.Join(errs...)
}

// WriteJSON writes the resolved configuration as indented JSON.
func (rc RunConfig) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rc)
}

// decodeStrict decodes JSON into v, refusing unknown fields and trailing
// data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
