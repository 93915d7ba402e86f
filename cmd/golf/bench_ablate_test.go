package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// golf bench ablate trains the full stack and the stack without each named
// technique for the same steps, scores every variant on the capped
// validation prefix, and reports the deltas as JSON (and a PNG).
func TestBenchAblateCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two variants")
	}
	dir := t.TempDir()
	png := filepath.Join(dir, "ablate.png")
	code, stdout, stderr := runGolf(t, "bench", "ablate", "--preset", "tiny-record", "--steps", "1", "--options", "xsa",
		"--val-tokens", "512", "--scheme", "", "--out", filepath.Join(dir, "runs"), "--png", png, "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res ablateResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if res.ValTokens != 512 || len(res.Rows) != 2 || res.Rows[0].Variant != "full" || res.Rows[1].Variant != "-xsa" {
		t.Fatalf("result %+v", res)
	}
	full, noXSA := res.Rows[0], res.Rows[1]
	if full.Steps != 1 || noXSA.Steps != 1 || math.Abs(noXSA.Delta-(noXSA.ValBPB-full.ValBPB)) > 1e-12 || full.ValBPB == noXSA.ValBPB {
		t.Fatalf("rows %+v", res.Rows)
	}
	var results struct {
		ValTokens int `json:"val_tokens"`
	}
	raw, err := os.ReadFile(filepath.Join(noXSA.RunDir, "results.json"))
	if err != nil || json.Unmarshal(raw, &results) != nil || results.ValTokens != 512 {
		t.Fatalf("the variant's results.json: %v, val_tokens %d (want the 512-token cap)", err, results.ValTokens)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("png: %v", err)
	}
}
