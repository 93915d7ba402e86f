package model

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// InitWeights returns the model's initial parameters for a seed, computed
// on the host so that the same seed gives the same weights on every backend:
//
//   - tok_emb ~ Normal(0, EmbedInitStd) (the reference's tied embedding);
//   - c_q, c_k, c_v, mlp/fc ~ Uniform(±1/sqrt(in)) (PyTorch nn.Linear);
//   - attn/proj and mlp/proj = 0 (zero-initialised output projections);
//   - q_gain = QKGainInit; attn_scale, mlp_scale, skip_weights = 1;
//     resid_mix = [1...; 0...] (start as the plain residual stream).
//
// Each parameter draws from its own PCG stream keyed by (seed, name), so
// adding a parameter never changes the others.
func InitWeights(cfg Config, seed int64) (Weights, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var w Weights
	for _, p := range cfg.Params() {
		w = append(w, Tensor{Name: p.Name, Shape: append([]int{}, p.Shape...), Data: initParam(cfg, p, seed)})
	}
	return w, nil
}

func initParam(cfg Config, p ParamSpec, seed int64) []float32 {
	data := make([]float32, p.NumElements())
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
	base := p.Name[strings.LastIndex(p.Name, "/")+1:]
	fill := func(v float32) {
		for i := range data {
			data[i] = v
		}
	}
	switch {
	case p.Name == "tok_emb":
		for i := range data {
			data[i] = float32(rng.NormFloat64() * cfg.EmbedInitStd)
		}
	case base == "proj":
		// zero init: each block starts as the identity on the stream
	case p.Class == Matrix:
		bound := 1 / math.Sqrt(float64(p.Shape[1]))
		for i := range data {
			data[i] = float32((2*rng.Float64() - 1) * bound)
		}
	case base == "q_gain":
		fill(float32(cfg.QKGainInit))
	case base == "resid_mix":
		for i := range p.Shape[1] {
			data[i] = 1
		}
	default: // attn_scale, mlp_scale, skip_weights
		fill(1)
	}
	return data
}

// variable returns the context variable of a parameter name, or nil.
func variable(ctx *mlctx.Context, name string) *mlctx.Variable {
	scope, base := mlctx.SplitScope(mlctx.RootScope + name)
	return ctx.GetVariableByScopeAndName(scope, base)
}

// WeightsFromContext copies the model's parameters from ctx to the host, in
// Params order.
func WeightsFromContext(ctx *mlctx.Context, cfg Config) (Weights, error) {
	var w Weights
	for _, p := range cfg.Params() {
		v := variable(ctx, p.Name)
		if v == nil || !v.HasValue() {
			return nil, fmt.Errorf("model weights: parameter %q is not in the context (not initialised?)", p.Name)
		}
		val, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("model weights: %s: %w", p.Name, err)
		}
		if val.DType() != dtypes.Float32 || !slices.Equal(val.Shape().Dimensions, p.Shape) {
			return nil, fmt.Errorf("model weights: %s is %s, want float32%v", p.Name, val.Shape(), p.Shape)
		}
		data, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			return nil, fmt.Errorf("model weights: %s: %w", p.Name, err)
		}
		w = append(w, Tensor{Name: p.Name, Shape: append([]int{}, p.Shape...), Data: data})
	}
	return w, nil
}

// LoadWeights sets (creating where needed) the model's variables in ctx
// from host weights, which must hold exactly cfg's parameters with their
// shapes.
func LoadWeights(ctx *mlctx.Context, cfg Config, w Weights) error {
	if err := CheckWeights(cfg, w); err != nil {
		return err
	}
	for _, p := range cfg.Params() {
		t, _ := w.Get(p.Name)
		value := tensors.FromFlatDataAndDimensions(append([]float32{}, t.Data...), p.Shape...)
		if v := variable(ctx, p.Name); v != nil {
			if err := v.SetValue(value); err != nil {
				return fmt.Errorf("load weights: %s: %w", p.Name, err)
			}
			continue
		}
		scope, base := mlctx.SplitScope(mlctx.RootScope + p.Name)
		v := ctx.InAbsPath(scope).Checked(false).VariableWithShape(base, shapes.Make(dtypes.Float32, p.Shape...))
		if err := v.SetValue(value); err != nil {
			return fmt.Errorf("load weights: %s: %w", p.Name, err)
		}
	}
	return nil
}

// CheckOrderedWeights is CheckWeights plus the order: w must list the
// parameters in Params order, the order checkpoint and artifact files keep.
func CheckOrderedWeights(cfg Config, w Weights) error {
	if err := CheckWeights(cfg, w); err != nil {
		return err
	}
	for i, p := range cfg.Params() {
		if w[i].Name != p.Name {
			return fmt.Errorf("tensor %d is %q, the model's parameter %d is %q", i, w[i].Name, i, p.Name)
		}
	}
	return nil
}

// CheckWeights reports every way w differs from cfg's parameters: missing,
// unexpected, misshapen or inconsistent tensors.
func CheckWeights(cfg Config, w Weights) error {
	var errs []error
	want := map[string][]int{}
	for _, p := range cfg.Params() {
		want[p.Name] = p.Shape
	}
	seen := map[string]bool{}
	for _, t := range w {
		shape, ok := want[t.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unexpected tensor %q", t.Name))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("tensor %q appears twice", t.Name))
		case !slices.Equal(t.Shape, shape):
			errs = append(errs, fmt.Errorf("tensor %q has shape %v, the model needs %v", t.Name, t.Shape, shape))
		default:
			if err := t.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
		seen[t.Name] = true
	}
	for _, p := range cfg.Params() {
		if !seen[p.Name] {
			errs = append(errs, fmt.Errorf("missing tensor %q", p.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("weights do not match the model config: %w", err)
	}
	return nil
}
