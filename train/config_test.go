package train

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseRunConfigOverridesPreset(t *testing.T) {
	rc, err := ParseRunConfig("c.json", []byte(`{"preset": "tiny-record",
		"model": {"num_layers": 8, "xsa_last_n": 8, "smear_gate": false},
		"train": {"max_seconds": 30, "seq_len": 128, "optimizer": {"matrix_lr": 0.05}}}`))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := PresetRunConfig("tiny-record")
	if rc.Model.NumLayers != 8 || rc.Model.XSALastN != 8 || rc.Model.SmearGate || !rc.Model.SkipGates {
		t.Errorf("model overrides not applied on the preset: %+v", rc.Model)
	}
	if rc.Settings.MaxSeconds != 30 || rc.Settings.Optimizer.MatrixLR != 0.05 ||
		rc.Settings.Optimizer.EmbedLR != base.Settings.Optimizer.EmbedLR || rc.Settings.EMADecay != base.Settings.EMADecay {
		t.Errorf("train overrides not applied on the preset: %+v", rc.Settings)
	}
	if rc.Model.SeqLen != 128 {
		t.Errorf("the model's sequence length %d does not follow train.seq_len 128", rc.Model.SeqLen)
	}
	var buf bytes.Buffer
	if err := rc.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := ParseRunConfig("printed", []byte(`{"preset":"tiny-record","model":`+jsonField(t, buf.String(), "model")+`,"train":`+jsonField(t, buf.String(), "train")+`}`))
	if err != nil || again.Model.NumLayers != 8 || again.Settings.MaxSeconds != 30 {
		t.Errorf("the printed config does not read back: %v", err)
	}
}

// jsonField cuts one top-level object field out of printed JSON.
func jsonField(t *testing.T, s, name string) string {
	t.Helper()
	var m map[string]any
	if err := decodeStrict([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(s, `"`+name+`": `)
	if i < 0 {
		t.Fatalf("no %s in %s", name, s)
	}
	rest := s[i+len(name)+4:]
	depth := 0
	for j, c := range rest {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return rest[:j+1]
			}
		}
	}
	t.Fatalf("unterminated %s", name)
	return ""
}

func TestParseRunConfigErrors(t *testing.T) {
	for body, want := range map[string]string{
		`{"preset": "tiny", "model": {"num_layer": 8}}`:                "unknown field \"num_layer\"",
		`{"preset": "tiny", "train": {"optimizer": {"matrix_rl": 1}}}`: "unknown field \"matrix_rl\"",
		`{"presets": "tiny"}`: "unknown field \"presets\"",
		`{"preset": "tiny-record", "model": {"loop_start": 4}}`: "loop range",
		`{"preset": "tiny", "train": {"batch_tokens": 1000}}`:   "batch-tokens",
		`{"preset": "tiny", "train": {"ema_decay": 1}}`:         "ema_decay",
		`{"preset": "tiny", "model": {"seq_len": 64}}`:          "train.seq_len",
		`not json`: "invalid character",
	} {
		_, err := ParseRunConfig("f.json", []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "f.json") {
			t.Errorf("%s: error %v, want one naming f.json and %q", body, err, want)
		}
	}
}

// What --print-config writes reads back as the same configuration.
func TestPrintedRunConfigReadsBack(t *testing.T) {
	for _, preset := range Presets {
		rc, err := PresetRunConfig(preset)
		if err != nil {
			t.Fatal(err)
		}
		rc.Model.VocabSize = 0 // as golf train prints a run whose vocabulary is the tokenizer's
		var buf bytes.Buffer
		if err := rc.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ParseRunConfig("printed.json", buf.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		if !reflect.DeepEqual(back.Model, rc.Model) || !reflect.DeepEqual(back.Settings, rc.Settings) || back.VocabSet {
			t.Errorf("%s: printed config reads back as\n%+v\nnot\n%+v", preset, back, rc)
		}
	}
}
