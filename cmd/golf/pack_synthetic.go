package main

import (
	"fmt"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/bench"
	"github.com/paramgolf/golf/quant/synthetic"
	"github.com/paramgolf/golf/train"
)

// Synthetic weights for golf pack and golf bench compress: tooling, kept in
// this file so the counted code (golf.Counted) does not depend on it.
func init() {
	syntheticSource = func(preset string) (*packSource, error) {
		d, err := synthetic.NewDraw(preset, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		w := d.Weights
		cfg, err := model.Preset(preset)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		s := train.Settings{Preset: preset, SeqLen: cfg.SeqLen}
		if _, ps, err := train.PresetSettings(preset); err == nil {
			s = ps
		}
		return &packSource{name: "synthetic " + preset, weights: w, meta: artifactMeta(cfg, s, "synthetic "+preset),
			syntheticHessians: func() (map[string]*quant.Hessian, error) {
				return quant.HessiansFromTensors(synthetic.Hessians(w, 1))
			},
			sourceEntropy: bench.SourceEntropy(d)}, nil
	}
}
