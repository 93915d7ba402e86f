package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/train"
)

// golf train --devices 1 trains exactly as golf train did before data
// parallelism (the default on a machine with one device), step for step;
// more devices than the backend has, and the SPMD step on the pure-Go
// backend, are refused with a message saying why.
func TestTrainDevicesOne(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny model twice")
	}
	dataDir := trainShards(t)
	run := func(extra ...string) train.Result {
		t.Helper()
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"train", "--data", dataDir, "--out", out, "--json"}, smallTrainFlags...)
		code, stdout, stderr := runGolf(t, append(args, extra...)...)
		if code != 0 {
			t.Fatalf("golf train %v: exit %d: %s", extra, code, stderr)
		}
		var res train.Result
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("--json output: %v\n%s", err, stdout)
		}
		return res
	}
	base, one := run(), run("--devices", "1")
	if base.Devices != 1 || one.Devices != 1 || len(one.History.Train) != len(base.History.Train) || len(base.History.Train) == 0 {
		t.Fatalf("devices %d and %d, %d and %d steps", base.Devices, one.Devices, len(base.History.Train), len(one.History.Train))
	}
	for i, p := range base.History.Train {
		if one.History.Train[i].Loss != p.Loss {
			t.Errorf("step %d: loss %v with --devices 1, %v without", p.Step, one.History.Train[i].Loss, p.Loss)
		}
	}
	if one.ValLoss != base.ValLoss {
		t.Errorf("val_loss %v with --devices 1, %v without", one.ValLoss, base.ValLoss)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--devices", "2"}, "has 1 device"},
		{[]string{"--devices", "1", "--spmd"}, "SPMD"},
	} {
		args := append([]string{"train", "--data", dataDir, "--out", filepath.Join(t.TempDir(), "run")}, smallTrainFlags...)
		code, _, stderr := runGolf(t, append(args, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("golf train %v: exit %d, %q; want an error naming %q", tc.args, code, stderr, tc.want)
		}
	}
}
