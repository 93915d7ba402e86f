package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
)

// golf bench train on the CPU: one result per preset and attention, the
// derived figures consistent with the measured ones (tokens/s from ms/step,
// TFLOP/s from the FLOPs count, the peak fraction from the same run's peak),
// and --profile writing a CPU profile per run.
func TestBenchTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("times tiny training steps")
	}
	prof := t.TempDir()
	jsonOut := filepath.Join(t.TempDir(), "bench.json")
	code, stdout, stderr := runGolf(t, "bench", "train", "--backend", "go", "--preset", "tiny", "--attention", "materialized,chunked",
		"--batch-tokens", "512", "--steps", "1", "--profile", prof, "--json", "--json-out", jsonOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep benchTrainReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	saved, err := os.ReadFile(jsonOut)
	if err != nil || strings.TrimSpace(string(saved)) != strings.TrimSpace(stdout) {
		t.Errorf("--json-out file differs from --json output (%v)", err)
	}
	if rep.Peak.TFLOPs <= 0 || rep.Peak.DType != "float32" || len(rep.Results) != 2 {
		t.Fatalf("report: peak %+v, %d results", rep.Peak, len(rep.Results))
	}
	cfg, _ := model.Preset("tiny")
	flops := cfg.FLOPsPerToken(256, true).Train()
	for i, r := range rep.Results {
		if want := []string{"materialized", "chunked"}[i]; r.Attention != want || r.Preset != "tiny" || r.BatchTokens != 512 || r.Devices != 1 {
			t.Errorf("result %d: %s/%s, %d tokens, %d devices; want tiny/%s, 512, 1", i, r.Preset, r.Attention, r.BatchTokens, r.Devices, want)
		}
		if r.ComputeDType != "float32" || r.NewtonSchulzDType != "Float32" {
			t.Errorf("%s: compute %s, Newton-Schulz %s on the pure-Go backend; want float32 for both", r.Attention, r.ComputeDType, r.NewtonSchulzDType)
		}
		close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }
		if !close(r.TokensPerS, 512/(r.StepMs/1000)) || r.TrainFLOPsPerToken != flops ||
			!close(r.ModelTFLOPs, flops*r.TokensPerS/1e12) || !close(r.PeakFraction, r.ModelTFLOPs/rep.Peak.TFLOPs) || r.CompileMs <= 0 {
			t.Errorf("%s: inconsistent figures %+v", r.Attention, r)
		}
		if fi, err := os.Stat(filepath.Join(prof, "cpu-tiny-"+r.Attention+".pprof")); err != nil || fi.Size() == 0 {
			t.Errorf("no CPU profile for %s: %v", r.Attention, err)
		}
	}
	if code, _, stderr := runGolf(t, "bench", "train", "--backend", "go", "--attention", "flash"); code != 2 || !strings.Contains(stderr, "flash") {
		t.Errorf("--attention flash: exit %d, %s", code, stderr)
	}
}

func TestSummarizeXLAMemory(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"module_0001.jit_step.sm_9.0_gpu_after_optimizations-buffer-assignment.txt": "BufferAssignment:\n...\nTotal bytes used: 1073741824 (1.00GiB)\n",
		"module_0002.jit_eval.sm_9.0_gpu_after_optimizations-buffer-assignment.txt": "Total bytes used: 2048 (2.0KiB)\n",
		"module_0002.jit_eval.txt": "HloModule eval\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "memory.txt")
	lines, err := summarizeXLAMemory(dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "module_0001.jit_step") || !strings.Contains(lines[0], "1073741824 bytes (1.00 GiB)") ||
		!strings.Contains(lines[1], "2048 bytes") {
		t.Errorf("summary %q", lines)
	}
	if data, _ := os.ReadFile(out); strings.Count(string(data), "\n") != 2 {
		t.Errorf("memory.txt: %q", data)
	}
	empty, err := summarizeXLAMemory(t.TempDir(), filepath.Join(t.TempDir(), "m.txt"))
	if err != nil || len(empty) != 1 || !strings.Contains(empty[0], "no buffer assignment") {
		t.Errorf("no dumps: %q %v", empty, err)
	}
}
