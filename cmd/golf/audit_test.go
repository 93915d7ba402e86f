package main

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/eval/audit"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/train"
)

// smallCfg is the tiny preset cut down for fast CLI tests.
func smallCfg(t *testing.T) model.Config {
	cfg, _, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.NumLayers, cfg.ModelDim, cfg.NumHeads, cfg.NumKVHeads, cfg.MLPHidden = 2, 32, 2, 1, 64
	return cfg
}

// movedCheckpoint writes a checkpoint whose every trainable parameter has
// left its initial value by noise (as after training; 0: not at all), in
// dir/checkpoint, and returns the checkpoint directory.
func movedCheckpoint(t *testing.T, cfg model.Config, dataDir, dir string, seqLen int, noise float64) string {
	t.Helper()
	_, s, err := train.PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	s.SeqLen, s.BatchTokens, s.ValTokens, s.EvalBatchTokens = seqLen, 4*seqLen, 8*seqLen, 4*seqLen
	w, err := model.InitWeights(cfg, s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range w {
		if w[i].Class == model.Frozen {
			continue
		}
		for j := range w[i].Data {
			w[i].Data[j] += float32(rng.NormFloat64() * noise)
		}
	}
	ckpt := filepath.Join(dir, "checkpoint")
	err = train.SaveCheckpoint(ckpt, &train.Checkpoint{Config: cfg, Weights: w,
		State: train.TrainState{Settings: s, DataDir: dataDir, Tokenizer: tokenizer.DefaultModelName}})
	if err != nil {
		t.Fatal(err)
	}
	return ckpt
}

// golf eval with TTT and the tilt writes a token-losses file whose columns
// give the reported val_loss and val_bpb exactly.
func TestEvalTTTTiltTokenLosses(t *testing.T) {
	dataDir := trainShards(t)
	ckpt := movedCheckpoint(t, smallCfg(t), dataDir, t.TempDir(), 64, 0.05)
	file := filepath.Join(t.TempDir(), "losses.tsv")
	o := evalJSON(t, "--checkpoint", ckpt, "--ttt", "--ttt-rank", "4", "--ttt-chunk", "16", "--ttt-batch-docs", "2",
		"--ngram-tilt", "--tilt-order", "3", "--val-tokens", "256", "--token-losses", file)
	if o.Mode != "ttt+tilt" || o.TTT == nil || o.TTT.Rank != 4 || o.Tilt == nil || o.Tokens != 256 {
		t.Fatalf("output %+v", o)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	if sc.Text() != eval.TokenLossesHeader {
		t.Fatalf("header %q", sc.Text())
	}
	var sum float64
	var n, nb int64
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		x, err := strconv.ParseFloat(c[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := strconv.Atoi(c[3])
		sum, nb, n = sum+x, nb+int64(b), n+1
	}
	loss, bpb := eval.BitsPerByte(sum, n, nb)
	if n != o.Tokens || loss != o.ValLoss || bpb != o.ValBPB {
		t.Fatalf("file: %d targets, loss %v, bpb %v; golf eval: %d, %v, %v", n, loss, bpb, o.Tokens, o.ValLoss, o.ValBPB)
	}
	var names []string
	for _, p := range o.Phases {
		names = append(names, p.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "ngram hints") || o.Budget.Seconds <= 0 || o.Budget.FullTargets != eval.RecordValTargets {
		t.Errorf("phases %v, budget %+v", names, o.Budget)
	}
}

func auditJSON(t *testing.T, want int, args ...string) audit.Report {
	t.Helper()
	code, stdout, stderr := runGolf(t, append(append([]string{"audit"}, args...), "--backend", "go", "--json", "--quiet")...)
	if code != want {
		t.Fatalf("golf audit %v: exit %d, want %d: %s\n%s", args, code, want, stderr, stdout)
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("golf audit %v: %v\n%s", args, err, stdout)
	}
	return rep
}

func find(t *testing.T, rep audit.Report, name, mode string) audit.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name && c.Mode == mode {
			return c
		}
	}
	t.Fatalf("no check %q (mode %q) in %+v", name, mode, rep.Checks)
	return audit.Check{}
}

// golf audit passes a checkpoint whose parameters all trained, in stream
// order; it fails (exit 1) an untrained one, the record's order, and a
// run whose results.json shows training data read after its budget.
func TestAuditCLI(t *testing.T) {
	dataDir := trainShards(t)
	cfg := smallCfg(t)
	runDir := t.TempDir()
	ckpt := movedCheckpoint(t, cfg, dataDir, runDir, 64, 0.05)
	common := []string{"--checkpoint", ckpt, "--modes", "plain,tilt,ttt", "--audit-tokens", "192", "--samples", "1", "--probes", "2",
		"--ttt-rank", "2", "--ttt-chunk", "16", "--tilt-order", "3"}
	rep := auditJSON(t, 0, common...)
	if !rep.Passed {
		t.Fatalf("audit failed: %+v", rep)
	}
	for _, mode := range []string{"plain", "plain+tilt", "ttt"} {
		for _, name := range []string{"causality", "normalisation", "scored once"} {
			if c := find(t, rep, name, mode); c.Status != audit.Pass {
				t.Errorf("%s %s: %s %s", mode, name, c.Status, c.Detail)
			}
		}
	}
	if c := find(t, rep, "bytes", ""); c.Status != audit.Pass {
		t.Errorf("bytes: %+v", c)
	}
	if c := find(t, rep, "training data reads", ""); c.Status != audit.NotRecorded {
		t.Errorf("no results.json: %+v", c)
	}

	// The record's order: not stream-causal.
	rep = auditJSON(t, 1, append(common, "--modes", "ttt", "--ttt-order", "record")...)
	if c := find(t, rep, "stream order", "ttt-record"); c.Status != audit.Fail {
		t.Errorf("record order: %+v", c)
	}

	// Training data read after the budget, from the run's results.json.
	res := map[string]any{"settings": map[string]any{"max_seconds": 600, "seed": 1337},
		"data_reads": []audit.DataRead{{What: "train loader", EndMs: 599000}, {What: "gptq calibration", StartMs: 599500, EndMs: 606400}}}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(runDir, "results.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep = auditJSON(t, 1, append(common, "--modes", "plain")...)
	if c := find(t, rep, "training data reads", ""); c.Status != audit.Fail || !strings.Contains(c.Failures[0], "gptq calibration") {
		t.Errorf("late read: %+v", c)
	}

	// An untrained checkpoint: every trainable parameter is still at its
	// initial value.
	fresh := movedCheckpoint(t, cfg, dataDir, t.TempDir(), 64, 0)
	rep = auditJSON(t, 1, "--checkpoint", fresh, "--modes", "plain", "--audit-tokens", "128", "--samples", "1")
	if c := find(t, rep, "trained parameters", ""); c.Status != audit.Fail || len(c.Failures) == 0 {
		t.Errorf("untrained checkpoint: %+v", c)
	}
}
