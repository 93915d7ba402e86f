package train

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
)

// Every technique the record stack uses can be switched off, each edit
// changes the configuration and leaves it valid, and the add-ons add
// parameters.
func TestTechniquesSwitchOff(t *testing.T) {
	base, err := PresetRunConfig("tiny-record")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tech := range Techniques() {
		if seen[tech.Name] {
			t.Errorf("technique %s listed twice", tech.Name)
		}
		seen[tech.Name] = true
		if !tech.Applies(base) {
			t.Errorf("%s does not apply to tiny-record", tech.Name)
			continue
		}
		rc := base
		rc.Model.VELayers = append([]int(nil), rc.Model.VELayers...)
		tech.Edit(&rc)
		if reflect.DeepEqual(rc, base) {
			t.Errorf("%s: the edit changed nothing", tech.Name)
		}
		if tech.Applies(rc) {
			t.Errorf("%s still applies after its edit", tech.Name)
		}
		if err := rc.Validate(); err != nil {
			t.Errorf("%s: edited config invalid: %v", tech.Name, err)
		}
		if tech.AddOn && rc.Model.NumParams() <= base.Model.NumParams() {
			t.Errorf("%s: an add-on must add parameters", tech.Name)
		}
	}
	if _, err := TechniqueByName("+bigram_hash"); err != nil {
		t.Error(err)
	}
	if _, err := TechniqueByName("xsaa"); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Errorf("unknown technique: %v", err)
	}
}

// Ablate trains the full stack and one variant per technique on the same
// data, and the rows' deltas are against the full stack.
func TestAblateSmall(t *testing.T) {
	o := smallRun(t, writeShards(t, 1024))
	o.Settings.Iterations, o.Settings.ValEvery, o.Settings.WarmupSteps = 2, 0, 0
	m := o.Model
	m.AttnGate, m.AttnGateScale, m.GateWindow = "sparse", 0.5, 8
	m.XSALastN = 2
	base := RunConfig{Model: m, Settings: o.Settings}
	base.Model.SeqLen = base.Settings.SeqLen
	out := t.TempDir()
	var artifacts []string
	rows, err := Ablate(context.Background(), AblateOptions{
		Base: base, Techniques: []string{"xsa", "+value_embed"}, DataDir: o.DataDir, Backend: o.Backend, OutDir: out,
		ArtifactBytes: func(cfg model.Config, dir string) (int64, error) {
			artifacts = append(artifacts, dir)
			return int64(cfg.NumParams()), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Variant != "full" || rows[1].Variant != "-xsa" || rows[2].Variant != "+value_embed" {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].Delta != 0 || rows[1].Delta != rows[1].ValBPB-rows[0].ValBPB || rows[1].ValBPB == rows[0].ValBPB {
		t.Errorf("deltas %+v", rows)
	}
	if rows[2].Params <= rows[0].Params || rows[2].ArtifactBytes != int64(rows[2].Params) || len(artifacts) != 3 {
		t.Errorf("value embeddings row %+v (artifact calls %v)", rows[2], artifacts)
	}
	for _, r := range rows {
		if _, err := os.Stat(filepath.Join(r.RunDir, "results.json")); err != nil {
			t.Errorf("%s: %v", r.Variant, err)
		}
	}
	png := filepath.Join(out, "ablate.png")
	if err := PlotAblation(png, "test", rows); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Errorf("no PNG written: %v", err)
	}
	if _, err := Ablate(context.Background(), AblateOptions{Base: base, Techniques: []string{"depth_recurrence"}, OutDir: out}); err == nil ||
		!strings.Contains(err.Error(), "does not use depth_recurrence") {
		t.Errorf("ablating a technique the base lacks: %v", err)
	}
}
