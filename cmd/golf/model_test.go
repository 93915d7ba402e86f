package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelCommandRecord(t *testing.T) {
	code, out, errOut := runGolf(t, "model", "--preset", "record")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"35,945,673 parameters", "11 physical / 17 virtual", "block_10/mlp/fc", "orthogonal(1)", "softcap_pos", "frozen", "none", "encoder layers [0 1 2 3 4 5 3 4]"} {
		if !strings.Contains(out, want) {
			t.Errorf("golf model --preset record lacks %q", want)
		}
	}
	code, out, _ = runGolf(t, "model", "--preset", "baseline", "--json")
	var rep modelReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("exit %d, output %.200s", code, out)
	}
	if rep.Total != 17_059_912 || len(rep.Parameters) != 2+9*10 {
		t.Errorf("baseline: %d parameters in %d tensors", rep.Total, len(rep.Parameters))
	}
	sum := 0
	for _, p := range rep.Parameters {
		sum += p.Params
		if p.Group == "" || p.Storage == "" || p.Class == 0 {
			t.Errorf("%s: empty column in %+v", p.Name, p)
		}
	}
	if sum != rep.Total {
		t.Errorf("rows sum to %d, total %d", sum, rep.Total)
	}
}

func TestModelCommandConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"preset": "tiny-record", "model": {"num_layers": 8, "xsa_last_n": 8}}`)
	code, out, errOut := runGolf(t, "model", "--config", good)
	if code != 0 || !strings.Contains(out, "8 physical") || !strings.Contains(out, "block_7/attn/c_q") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"typo.json":  {`{"preset": "tiny", "model": {"num_layer": 8}}`, `unknown field "num_layer"`},
		"loop.json":  {`{"preset": "tiny-record", "model": {"loop_end": 9}}`, "loop range"},
		"seq.json":   {`{"preset": "tiny", "model": {"seq_len": 512}}`, "train.seq_len"},
		"bad.json":   {`{"preset": "huge"}`, "unknown model preset"},
		"trail.json": {`{"preset": "tiny"} {}`, "trailing data"},
	} {
		code, _, errOut := runGolf(t, "model", "--config", write(name, tc.body))
		if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, name) {
			t.Errorf("%s: exit %d, stderr %q; want an error naming the file and %q", name, code, errOut, tc.want)
		}
	}
}

func TestTrainConfigAndPrintConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "run.json")
	os.WriteFile(good, []byte(`{"preset": "tiny-record", "model": {"num_layers": 8, "xsa_last_n": 8}, "train": {"max_seconds": 30}}`), 0o644)
	code, out, errOut := runGolf(t, "train", "--config", good, "--seq-len", "128", "--ema-decay", "0.9", "--print-config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rc struct {
		Model struct {
			NumLayers int `json:"num_layers"`
		} `json:"model"`
		Train map[string]any `json:"train"`
	}
	if err := json.Unmarshal([]byte(out), &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Model.NumLayers != 8 || rc.Train["max_seconds"] != 30.0 || rc.Train["seq_len"] != 128.0 || rc.Train["ema_decay"] != 0.9 {
		t.Errorf("resolved config %s", out)
	}
	if !strings.Contains(out, `"seq_len": 128`) || strings.Count(out, `"seq_len": 128`) != 2 {
		t.Errorf("the model's and the run's sequence lengths differ:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"preset": "tiny", "train": {"max_secnds": 30}}`), 0o644)
	code, _, errOut = runGolf(t, "train", "--config", bad)
	if code == 0 || !strings.Contains(errOut, "bad.json") || !strings.Contains(errOut, "max_secnds") {
		t.Errorf("misspelled field: exit %d, %q", code, errOut)
	}
	if code, _, _ := runGolf(t, "train", "--config", good, "--preset", "tiny"); code != 2 {
		t.Errorf("--config with --preset: exit %d, want 2", code)
	}
}
