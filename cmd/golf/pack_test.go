package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/bench"
	"github.com/paramgolf/golf/quant/synthetic"
	"github.com/paramgolf/golf/train"
)

func runGolf(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestPackSyntheticTiny(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tiny.golf")
	js := filepath.Join(dir, "pack.json")
	code, stdout, stderr := runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "int6-sd", "--codec", "fse", "--out", out, "--json-out", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"model (artifact file)", "code (", "total", "budget", "margin", "16000000"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	a, err := quant.ReadArtifact(out)
	if err != nil {
		t.Fatal(err)
	}
	var res packResult
	b, err := os.ReadFile(js)
	if err != nil || json.Unmarshal(b, &res) != nil {
		t.Fatalf("JSON %s: %v", js, err)
	}
	if !res.Written || res.Size.ModelBytes != a.FileBytes || res.Size.TotalBytes != a.FileBytes+res.Size.Code.Bytes ||
		res.Size.Margin != quant.Budget-res.Size.TotalBytes || res.Size.Code.Bytes < 10_000 {
		t.Fatalf("size accounting %+v for a %d-byte artifact", res.Size, a.FileBytes)
	}
}

// GPTQ schemes on synthetic weights calibrate on synthetic Hessians, and
// the artifact reads back as the preset's model.
func TestPackSyntheticRecordScheme(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.golf")
	code, stdout, stderr := runGolf(t, "pack", "--synthetic", "tiny-record", "--scheme", "record-all", "--codec", "cm",
		"--group", "class", "--sort-rows", "--layout", "cols", "--out", out, "-v")
	if code != 0 || !strings.Contains(stderr, "synthetic GPTQ Hessians") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"side symbols (LQER", "row orders", "counted code:", "quant/codec", "attention (", "margin"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	a, err := quant.ReadArtifact(out)
	if err != nil {
		t.Fatal(err)
	}
	cfg, w, err := a.Model()
	if err != nil || cfg.Name != "tiny-record" || w[0].Init.Kind == 0 {
		t.Fatalf("model %q, %v", cfg.Name, err)
	}
}

func TestPackRefusesOverBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("packs the 17 M-parameter synthetic model")
	}
	out := filepath.Join(t.TempDir(), "big.golf")
	// int8 symbols stored raw: 17.2 MB, over the budget.
	code, _, stderr := runGolf(t, "pack", "--synthetic", "baseline", "--scheme", "int8-ref", "--codec", "store", "--out", out)
	if code != 1 || !strings.Contains(stderr, "bytes over the 16000000-byte budget") || !strings.Contains(stderr, "--allow-over-budget") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("over-budget artifact was written: %v", err)
	}
	code, _, stderr = runGolf(t, "pack", "--synthetic", "baseline", "--scheme", "int8-ref", "--codec", "store", "--out", out, "--allow-over-budget")
	if code != 0 {
		t.Fatalf("with --allow-over-budget: exit %d: %s", code, stderr)
	}
	if st, err := os.Stat(out); err != nil || st.Size() < quant.Budget {
		t.Fatalf("artifact %v, %v", st, err)
	}
}

func TestPackBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"pack"},
		{"pack", "--synthetic", "tiny", "--scheme", "int3-magic"},
		{"pack", "--synthetic", "tiny", "--codec", "lz4"},
		{"pack", "--synthetic", "tiny", "--layout", "diagonal"},
		{"pack", "--synthetic", "huge"},
		{"pack", "--synthetic", "tiny", "--checkpoint", "x"},
		{"pack", "--synthetic", "tiny", "extra"},
		{"pack", "--synthetic", "tiny", "--max-stream-symbols", "1000"},                   // needs --group class
		{"pack", "--synthetic", "tiny", "--group", "class", "--max-stream-symbols", "-1"}, // negative
	} {
		if code, _, stderr := runGolf(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
	if code, _, stderr := runGolf(t, "pack", "--checkpoint", filepath.Join(t.TempDir(), "missing")); code != 1 || !strings.Contains(stderr, "missing") {
		t.Errorf("missing checkpoint: exit %d, %q", code, stderr)
	}
}

func TestBenchCompressSynthetic(t *testing.T) {
	dir := t.TempDir()
	png, js := filepath.Join(dir, "b.png"), filepath.Join(dir, "b.json")
	code, stdout, stderr := runGolf(t, "bench", "compress", "--synthetic", "tiny", "--schemes", "int8-ref,int6-sd",
		"--codecs", "zstd-best,cm", "--externals=false", "--packings", "rows,packed", "--png", png, "--json-out", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "synthetic weights") || strings.Count(stdout, "int6-sd") != 1 {
		t.Fatalf("table:\n%s", stdout)
	}
	var res bench.Result
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &res); err != nil || len(res.Rows) != 8 || res.Budget != quant.Budget || res.Code.Bytes < 10_000 {
		t.Fatalf("JSON: %v, %d rows, budget %d, code %+v", err, len(res.Rows), res.Budget, res.Code)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("PNG: %v", err)
	}
	// The floor under any coder comes with int6-sd's round-to-nearest
	// symbols, not with the reference's percentile clip, and lies below cm.
	for _, row := range res.Rows {
		switch {
		case row.Scheme == "int8-ref" && row.SourceBytes != nil:
			t.Errorf("int8-ref: a source entropy %v", *row.SourceBytes)
		case row.Scheme == "int6-sd" && row.Codec == "cm" && (row.SourceBytes == nil || *row.SourceBytes > float64(row.SymbolBytes)):
			t.Errorf("int6-sd %s: source entropy %v, cm %d symbol bytes", row.Packing, row.SourceBytes, row.SymbolBytes)
		}
	}
	// Each row's bytes are what golf pack writes with the same scheme,
	// codec and packing.
	for _, row := range res.Rows {
		if row.Scheme != "int6-sd" || row.Codec != "cm" {
			continue
		}
		out := filepath.Join(dir, row.Packing+".golf")
		if code, _, stderr := runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "int6-sd", "--codec", "cm", "--layout", row.Packing, "--out", out, "--quiet"); code != 0 {
			t.Fatalf("golf pack: %s", stderr)
		}
		if st, err := os.Stat(out); err != nil || int(st.Size()) != row.ModelBytes {
			t.Errorf("packing %s: golf pack wrote %v bytes, bench compress reports %d", row.Packing, st.Size(), row.ModelBytes)
		}
	}
	if code, _, _ := runGolf(t, "bench", "compress", "--synthetic", "tiny", "--codecs", "nope"); code != 2 {
		t.Fatalf("unknown codec: exit %d", code)
	}
	if code, _, _ := runGolf(t, "bench", "compress", "--synthetic", "tiny", "--data", dir); code != 2 {
		t.Fatalf("--data without a checkpoint: exit %d", code)
	}
}

// GPTQ schemes take their Hessians from a tensor file.
func TestPackGPTQWithHessianFile(t *testing.T) {
	w, err := synthetic.Weights("tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	var hs []model.Tensor
	for _, x := range w {
		if len(x.Shape) != 2 || x.Class == model.Control {
			continue
		}
		in := x.Shape[1]
		// A diagonally dominant symmetric Gram matrix.
		h := model.Tensor{Name: x.Name, Shape: []int{in, in}, Data: make([]float32, in*in)}
		for i := range in {
			for j := range in {
				h.Data[i*in+j] = float32(1 / (1 + float64((i-j)*(i-j))))
			}
			h.Data[i*in+i] += float32(in)
		}
		hs = append(hs, h)
	}
	dir := t.TempDir()
	hp := filepath.Join(dir, "hessians.bin")
	if err := train.WriteTensors(hp, hs); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "g.golf")
	code, _, stderr := runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "gptq-int6", "--codec", "fse", "--hessians", hp, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := quant.ReadArtifact(out); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "gptq-int6", "--hessians", filepath.Join(dir, "none")); code != 1 || !strings.Contains(stderr, "none") {
		t.Fatalf("missing Hessian file: exit %d, %q", code, stderr)
	}
}

// A GPTQ scheme on a checkpoint collects its Hessians from the run's
// training shards (no --hessians needed), can save them, and the saved file
// gives the same artifact when passed back with --hessians.
func TestPackGPTQCalibratesFromTheRun(t *testing.T) {
	dataDir := trainShards(t)
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	ckpt := initCheckpoint(t, cfg, dataDir, t.TempDir(), 64)
	dir := t.TempDir()
	saved, first, second := filepath.Join(dir, "h.bin"), filepath.Join(dir, "a.golf"), filepath.Join(dir, "b.golf")
	code, _, stderr := runGolf(t, "pack", "--checkpoint", ckpt, "--scheme", "gptq-int6", "--codec", "fse",
		"--calibrate", "256", "--save-hessians", saved, "--out", first, "--backend", "go")
	if code != 0 || !strings.Contains(stderr, "calibration: GPTQ Hessians from 256 training tokens of "+dataDir) {
		t.Fatalf("golf pack gptq: exit %d: %s", code, stderr)
	}
	ts, err := train.ReadTensors(saved)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := quant.HessiansFromTensors(ts); err != nil || h["block_0/mlp/fc"] == nil || h["tok_emb"] == nil {
		t.Fatalf("saved Hessians: %d tensors, %v", len(ts), err)
	}
	if code, _, stderr := runGolf(t, "pack", "--checkpoint", ckpt, "--scheme", "gptq-int6", "--codec", "fse",
		"--hessians", saved, "--out", second); code != 0 {
		t.Fatalf("golf pack --hessians: exit %d: %s", code, stderr)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("artifacts from calibration (%d bytes) and from the saved Hessians (%d bytes) differ", len(a), len(b))
	}
	if code, _, stderr := runGolf(t, "pack", "--checkpoint", ckpt, "--scheme", "gptq-int6", "--calibrate", "0", "--out", first); code != 2 ||
		!strings.Contains(stderr, "--calibrate") {
		t.Errorf("GPTQ without Hessians or calibration: exit %d: %s", code, stderr)
	}
}

// A second pack into a folder another writer holds fails at once, naming
// it; a killed pack's hidden temporary artifact is removed by the next.
func TestPackLocksAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tiny.golf")
	l, err := outlock.Acquire(dir, "golf pack (the first)")
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "int8-ref", "--codec", "zlib-9", "--out", out)
	if code == 0 || !strings.Contains(stderr, "(the first)") {
		t.Fatalf("pack into a locked folder: exit %d: %s", code, stderr)
	}
	l.Release()
	killed := filepath.Join(dir, ".tiny.golf.tmp-123456")
	os.WriteFile(killed, []byte("a whole artifact a killed pack never renamed"), 0o644)
	code, _, stderr = runGolf(t, "pack", "--synthetic", "tiny", "--scheme", "int8-ref", "--codec", "zlib-9", "--out", out)
	if code != 0 {
		t.Fatalf("pack: %s", stderr)
	}
	if _, err := os.Stat(killed); !os.IsNotExist(err) || !strings.Contains(stderr, "killed pack") {
		t.Fatalf("the killed pack's file: %v; stderr %s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, outlock.FileName)); !os.IsNotExist(err) {
		t.Fatalf("lock file left: %v", err)
	}
}

// Artifacts written by the library and by the CLI read each other: the
// library's (golf.PackCheckpoint) evaluates with golf eval --artifact to
// the same val_bpb as golf.EvaluateArtifact, and the CLI's (golf pack)
// reads through the library with its model config and settings.
func TestLibraryAndCLIArtifactsInteroperate(t *testing.T) {
	dataDir := trainShards(t)
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	ckpt := initCheckpoint(t, cfg, dataDir, t.TempDir(), 64)
	ctx := context.Background()
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	scheme, _ := quant.SchemeByName("record-all")
	packed, err := golf.PackCheckpoint(ctx, ckpt, scheme, golf.PackOptions{Backend: backend, CalibrationTokens: 512, Pack: quant.PackOptions{Codec: "cm", Group: quant.GroupClass}})
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(t.TempDir(), "lib.golf")
	if err := packed.WriteFile(lib); err != nil {
		t.Fatal(err)
	}
	viaCLI := evalJSON(t, "--artifact", lib, "--data", dataDir)
	viaLib, err := golf.EvaluateArtifact(ctx, lib, golf.EvalOptions{DataDir: dataDir, Backend: backend, Stride: -1, ValTokens: 0}) // golf eval scores the whole split by default
	if err != nil {
		t.Fatal(err)
	}
	if viaCLI.ValBPB != viaLib.ValBPB || viaCLI.Tokens != viaLib.Tokens {
		t.Fatalf("golf eval --artifact: %+v; golf.EvaluateArtifact: %+v", viaCLI.Result, viaLib.Result)
	}
	cli := filepath.Join(t.TempDir(), "cli.golf")
	if code, _, stderr := runGolf(t, "pack", "--checkpoint", ckpt, "--scheme", "int6-sd", "--codec", "fse", "--out", cli, "--quiet"); code != 0 {
		t.Fatalf("golf pack: exit %d: %s", code, stderr)
	}
	a, err := quant.ReadArtifact(cli)
	if err != nil {
		t.Fatal(err)
	}
	got, w, err := a.Model()
	if err != nil || got.ModelDim != cfg.ModelDim || got.Name != cfg.Name || a.Meta.Settings.SeqLen != 64 || len(w) != len(cfg.Params()) {
		t.Fatalf("CLI artifact through the library: config %+v, settings %+v, %v", got, a.Meta.Settings, err)
	}
}
