package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// golf train --gptq-reserve-seconds collects GPTQ Hessians after the loop,
// inside the budget, logs how long that took, and golf pack uses them;
// --qat-scheme takes QAT's bits and clips from the scheme.
func TestTrainReservesGPTQAndQATFromScheme(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small model")
	}
	dataDir := trainShards(t)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--data", dataDir, "--out", out}
	for i := 0; i < len(smallTrainFlags); i++ {
		if smallTrainFlags[i] == "--max-seconds" {
			i++ // replaced below
			continue
		}
		args = append(args, smallTrainFlags[i])
	}
	args = append(args, "--max-seconds", "600", "--gptq-reserve-seconds", "60", "--qat-scheme", "record", "--qat-start", "0.5")
	code, stdout, stderr := runGolf(t, args...)
	if code != 0 {
		t.Fatalf("golf train: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"gptq:calibration tokens:16384 ", "inside_budget:true", "qat:on bits:6 clip_std:13 scheme:record"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("log lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(out, runHessiansFile)); err != nil {
		t.Fatal(err)
	}
	art := filepath.Join(t.TempDir(), "a.golf")
	code, _, stderr = runGolf(t, "pack", "--checkpoint", filepath.Join(out, "checkpoint"), "--scheme", "gptq-int6", "--codec", "fse", "--out", art)
	if code != 0 || !strings.Contains(stderr, "the run's GPTQ Hessians from "+filepath.Join(out, runHessiansFile)) {
		t.Fatalf("golf pack: exit %d: %s", code, stderr)
	}
	for _, bad := range [][]string{
		{"--qat-scheme", "int6-mse"},                            // no closed-form clip
		{"--qat-scheme", "record", "--qat-bits", "6"},           // both ways at once
		{"--max-seconds", "10", "--gptq-reserve-seconds", "10"}, // nothing left to train
	} {
		if code, _, stderr := runGolf(t, append([]string{"train", "--data", dataDir, "--out", filepath.Join(t.TempDir(), "x")}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want a usage error: %s", bad, code, stderr)
		}
	}
}
