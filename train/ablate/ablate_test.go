package ablate

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/train"
)

// smallBase is the tiny preset narrowed to 2 blocks of width 64 with
// seconds-long step-counted runs, and a folder of toy shards (a token
// mostly follows from the previous one) for it.
func smallBase(t *testing.T) (train.RunConfig, string) {
	t.Helper()
	dir := t.TempDir()
	for name, n := range map[string]int{"fineweb_train_000000.bin": 60000, "fineweb_val_000000.bin": 4097} {
		rng := rand.New(rand.NewPCG(uint64(n), 11))
		s := make([]uint16, n)
		for i := 1; i < n; i++ {
			if rng.IntN(8) == 0 {
				s[i] = uint16(rng.IntN(1024))
			} else {
				s[i] = uint16((int(s[i-1])*3 + 1) % 1024)
			}
		}
		if err := data.WriteShard(filepath.Join(dir, name), s); err != nil {
			t.Fatal(err)
		}
	}
	m, err := model.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m.NumLayers, m.ModelDim, m.NumHeads, m.NumKVHeads, m.MLPHidden = 2, 64, 2, 1, 128
	m.AttnGate, m.AttnGateScale, m.GateWindow, m.XSALastN = "sparse", 0.5, 8, 2
	st.BatchTokens, st.SeqLen, st.MicroBatchTokens = 512, 64, 256
	st.Iterations, st.Warmdown, st.WarmupSteps, st.MaxSeconds = 2, 3, 0, 0
	st.ValEvery, st.LogEvery, st.ValTokens, st.EvalBatchTokens = 0, 1, 1024, 512
	m.SeqLen = st.SeqLen
	rc := train.RunConfig{Model: m, Settings: st}
	return rc, dir
}

// Every technique the record stack uses can be switched off, each edit
// changes the configuration and leaves it valid, and the add-ons add
// parameters.
func TestTechniquesSwitchOff(t *testing.T) {
	base, err := train.PresetRunConfig("tiny-record")
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
	if _, err := ByName("+bigram_hash"); err != nil {
		t.Error(err)
	}
	if _, err := ByName("xsaa"); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Errorf("unknown technique: %v", err)
	}
}

// Ablate trains the full stack and one variant per technique on the same
// data, and the rows' deltas are against the full stack.
func TestAblateSmall(t *testing.T) {
	base, dir := smallBase(t)
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var artifacts []string
	rows, err := Run(context.Background(), Options{
		Base: base, Techniques: []string{"xsa", "+value_embed"}, DataDir: dir, Backend: backend, OutDir: out,
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
		for _, f := range []string{"results.json", "loss.png"} {
			if _, err := os.Stat(filepath.Join(r.RunDir, f)); err != nil {
				t.Errorf("%s: %v", r.Variant, err)
			}
		}
	}
	png := filepath.Join(out, "ablate.png")
	if err := Plot(png, "test", rows); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Errorf("no PNG written: %v", err)
	}
	if _, err := Run(context.Background(), Options{Base: base, Techniques: []string{"depth_recurrence"}, OutDir: out}); err == nil ||
		!strings.Contains(err.Error(), "does not use depth_recurrence") {
		t.Errorf("ablating a technique the base lacks: %v", err)
	}
}
