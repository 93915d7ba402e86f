package model_test

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
)

// The baseline preset has exactly the reference's parameter count.
func ExamplePreset() {
	cfg, _ := model.Preset("baseline")
	fmt.Println(cfg.NumLayers, cfg.ModelDim, cfg.NumParams())
	// Output: 9 512 17059912
}

// Per-token losses of a freshly initialised tiny model are close to
// ln(vocab): it knows nothing yet.
func ExampleTokenLosses() {
	backend, _, err := compute.Open("go")
	if err != nil {
		panic(err)
	}
	cfg, _ := model.Preset("tiny")
	weights, _ := model.InitWeights(cfg, 1)
	ctx := mlctx.New()
	if err := model.LoadWeights(ctx, cfg, weights); err != nil {
		panic(err)
	}
	inputs := tensors.FromFlatDataAndDimensions([]int32{1, 72, 305, 20, 9}, 1, 5)
	targets := tensors.FromFlatDataAndDimensions([]int32{72, 305, 20, 9, 500}, 1, 5)
	losses, err := mlctx.ExecOnce(backend, ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) *graph.Node {
		return model.TokenLosses(ctx, cfg, in, tg, model.Options{})
	}, inputs, targets)
	if err != nil {
		panic(err)
	}
	var sum float64
	for _, l := range tensors.MustCopyFlatData[float32](losses) {
		sum += float64(l)
	}
	fmt.Printf("within 0.1 of ln(1024): %v\n", math.Abs(sum/5-math.Log(1024)) < 0.1)
	// Output: within 0.1 of ln(1024): true
}
