package quant

import (
	"context"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// CollectHessians runs the model with weights w over calibration sequences
// and returns GPTQ's Hessians: for every Attention and MLP matrix (and the
// output head: tok_emb when tied) the Gram matrix XᵀX of the activations it multiplies,
// summed over every calibration token (model.InputGrams), accumulated on
// the host in float64.
//
// tokens holds whole sequences of seqLen ids, row after row (e.g. inputs
// from a data.Loader over the training shards: the challenge accepts
// calibration on training data inside the training budget, or on text the
// model generates itself, never on validation data). batchRows sequences go
// through the graph at a time.
func CollectHessians(ctx context.Context, backend backends.Backend, cfg model.Config, w model.Weights,
	tokens []int32, seqLen, batchRows int) (hs map[string]*Hessian, err error) {
	if seqLen <= 0 || len(tokens) == 0 || len(tokens)%seqLen != 0 {
		return nil, fmt.Errorf("calibration: %d tokens are not whole sequences of %d", len(tokens), seqLen)
	}
	if batchRows <= 0 {
		batchRows = 1
	}
	mc := mlctx.New()
	if err := model.LoadWeights(mc, cfg, w); err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	defer func() {
		// Graph building reports errors by panicking; turn them into errors.
		if r := recover(); r != nil {
			hs, err = nil, fmt.Errorf("calibration: %v", r)
		}
	}()
	var names []string // the parameters with a Gram, in Params order
	exec, err := mlctx.NewExec(backend, mc.Reuse(), func(ctx *mlctx.Context, in *graph.Node) []*graph.Node {
		grams := model.InputGrams(ctx, cfg, in, model.Options{})
		names = names[:0]
		var out []*graph.Node
		for _, p := range cfg.Params() {
			if g, ok := grams[p.Name]; ok {
				names = append(names, p.Name)
				out = append(out, g)
			}
		}
		return out
	})
	if err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	defer exec.Finalize()
	hs = map[string]*Hessian{}
	rows := len(tokens) / seqLen
	for start := 0; start < rows; start += batchRows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(batchRows, rows-start)
		batch := tokens[start*seqLen : (start+n)*seqLen]
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(batch, n, seqLen))
		if err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
		for i, name := range names {
			g := tensors.MustCopyFlatData[float32](out[i])
			h := hs[name]
			if h == nil {
				h = NewHessian(out[i].Shape().Dimensions[0])
				hs[name] = h
			}
			for j, v := range g {
				h.Sum[j] += float64(v)
			}
			h.Count += n * seqLen
		}
	}
	return hs, nil
}

// HessianTensors converts Hessians into float32 tensors named after their
// matrices, the form HessiansFromTensors reads back (e.g. to save them with
// train.WriteTensors and reuse them with --hessians).
func HessianTensors(hs map[string]*Hessian, order []string) []model.Tensor {
	var ts []model.Tensor
	for _, name := range order {
		h, ok := hs[name]
		if !ok {
			continue
		}
		d := make([]float32, len(h.Sum))
		for i, v := range h.Sum {
			d[i] = float32(v)
		}
		ts = append(ts, model.Tensor{Name: name, Shape: []int{h.In, h.In}, Data: d})
	}
	return ts
}
