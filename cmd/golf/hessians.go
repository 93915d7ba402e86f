package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/train"
)

// hessianFlags are the flags that give GPTQ schemes their Hessians: a saved
// file, or a calibration pass over training tokens of the run's data.
type hessianFlags struct {
	path, save *string
	calibrate  *int
}

func addHessianFlags(fs *flag.FlagSet) hessianFlags {
	return hessianFlags{
		path: fs.String("hessians", "", "tensor file of GPTQ input Hessians (X^T X per matrix, named as the matrix), e.g. from --save-hessians"),
		calibrate: fs.Int("calibrate", 32768, "training tokens to collect GPTQ Hessians from when a GPTQ scheme needs them and no "+
			"--hessians is given (the run's training shards, never validation)"),
		save: fs.String("save-hessians", "", "write the collected Hessians to this tensor file for reuse with --hessians"),
	}
}

// load returns the Hessians for GPTQ, or nil when need is false and none
// were given. src is the checkpoint (nil for synthetic weights), dataDir
// the folder with its training shards, backendSpec the backend to run the
// calibration on.
func (h hessianFlags) load(ctx context.Context, log io.Writer, need bool, src *evalSource, dataDir, backendSpec string) (map[string]*quant.Hessian, error) {
	if *h.path != "" {
		ts, err := train.ReadTensors(*h.path)
		if err != nil {
			return nil, err
		}
		hs, err := quant.HessiansFromTensors(ts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", *h.path, err)
		}
		return hs, nil
	}
	if !need {
		return nil, nil
	}
	if src == nil || *h.calibrate <= 0 {
		return nil, fmt.Errorf("%w: GPTQ schemes need --hessians FILE, or --checkpoint with --calibrate N > 0", errUsage)
	}
	hs, err := calibrate(ctx, log, src.cfg, src.weights, src.settings.SeqLen, dataDir, *h.calibrate, backendSpec)
	if err != nil {
		return nil, err
	}
	if *h.save != "" {
		var names []string
		for _, p := range src.cfg.Params() {
			names = append(names, p.Name)
		}
		if err := train.WriteTensors(*h.save, quant.HessianTensors(hs, names)); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// calibrate collects GPTQ Hessians over the first n tokens of the training
// shards in dataDir, in sequences of seqLen.
func calibrate(ctx context.Context, log io.Writer, cfg model.Config, w model.Weights, seqLen int, dataDir string, n int, backendSpec string) (map[string]*quant.Hessian, error) {
	if seqLen <= 0 {
		seqLen = cfg.SeqLen
	}
	files, err := data.TrainFiles(dataDir)
	if err != nil {
		return nil, fmt.Errorf("calibration data: %w", err)
	}
	loader, err := data.NewLoader(files, 0, 1)
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	n = max(n/seqLen, 1) * seqLen
	backend, desc, err := compute.Open(backendSpec)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "calibration: GPTQ Hessians from %d training tokens of %s on %s\n", n, dataDir, desc)
	hs, rep, err := quant.Calibrate(ctx, backend, cfg, w, quant.LoaderSource{Loader: loader},
		quant.CalibrateOptions{SeqLen: seqLen, BatchRows: max(8192/seqLen, 1), MaxTokens: n})
	if err != nil {
		return nil, fmt.Errorf("calibration data %s: %w", dataDir, err)
	}
	fmt.Fprintf(log, "calibration: %d tokens in %d batches, %.1fs\n", rep.Tokens, rep.Batches, rep.Seconds)
	return hs, nil
}

// runHessiansFile is where golf train --gptq-reserve-seconds saves the
// Hessians it collected inside the training budget, in the run's folder
// (next to checkpoint/); golf pack uses them by default.
const runHessiansFile = "gptq_hessians.bin"

// gptqCalibration returns the training run's after-training step: GPTQ
// Hessians from the final weights over the run's training shards (as many
// tokens as 32 optimizer steps read, the record's GPTQ_CALIBRATION_BATCHES,
// or fewer if the budget ends first), saved to path.
func gptqCalibration(s train.Settings, path string) func(context.Context, backends.Backend, model.Config, model.Weights, string, time.Time) (string, error) {
	return func(ctx context.Context, backend backends.Backend, cfg model.Config, w model.Weights, dataDir string, deadline time.Time) (string, error) {
		files, err := data.TrainFiles(dataDir)
		if err != nil {
			return "", fmt.Errorf("calibration data: %w", err)
		}
		loader, err := data.NewLoader(files, 0, 1)
		if err != nil {
			return "", err
		}
		defer loader.Close()
		hs, rep, err := quant.Calibrate(ctx, backend, cfg, w, quant.LoaderSource{Loader: loader}, quant.CalibrateOptions{
			SeqLen: s.SeqLen, BatchRows: max(8192/s.SeqLen, 1), MaxTokens: 32 * s.BatchTokens, Deadline: deadline})
		if err != nil {
			return "", err
		}
		var names []string
		for _, p := range cfg.Params() {
			names = append(names, p.Name)
		}
		if err := train.WriteTensors(path, quant.HessianTensors(hs, names)); err != nil {
			return "", err
		}
		return fmt.Sprintf("gptq:calibration tokens:%d batches:%d time:%.2fs budget_left:%.2fs inside_budget:%v stopped_early:%v hessians:%s",
			rep.Tokens, rep.Batches, rep.Seconds, rep.SecondsLeft, rep.InsideBudget, rep.StoppedEarly, path), nil
	}
}
