package model

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// InitWeights returns the model's initial parameters for a seed, computed
// on the host so that the same seed gives the same weights on every backend.
// Each parameter is filled by the initialiser its module declares (see
// Config.Params; e.g. the baseline: tok_emb ~ Normal(0, EmbedInitStd),
// c_q/c_k/c_v/fc ~ Uniform(±1/sqrt(in)) as PyTorch's nn.Linear, output
// projections 0, q_gain = QKGainInit, scales and skip weights 1,
// resid_mix = [1; 0]), from its own PCG stream keyed by (seed, name), so
// adding a parameter never changes the others.
func InitWeights(cfg Config, seed int64) (Weights, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var w Weights
	for _, p := range cfg.Params() {
		data, err := p.Init.fill(p.Shape, paramRNG(seed, p.Name))
		if err != nil {
			return nil, fmt.Errorf("initialise %s: %w", p.Name, err)
		}
		w = append(w, p.tensor(data))
	}
	return w, nil
}

// tensor returns a Tensor of this parameter (name, shape, class,
// initialiser) holding data.
func (p ParamSpec) tensor(data []float32) Tensor {
	return Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Class: p.Class, Init: p.Init, Data: data}
}

// Annotate sets the Class and Init of every tensor of w that is one of
// cfg's parameters (from files that do not store them).
func Annotate(cfg Config, w Weights) {
	specs := map[string]ParamSpec{}
	for _, p := range cfg.Params() {
		specs[p.Name] = p
	}
	for i := range w {
		if p, ok := specs[w[i].Name]; ok {
			w[i].Class, w[i].Init = p.Class, p.Init
		}
	}
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
		w = append(w, p.tensor(data))
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
	want := map[string]ParamSpec{}
	for _, p := range cfg.Params() {
		want[p.Name] = p
	}
	seen := map[string]bool{}
	for _, t := range w {
		shape, ok := want[t.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("unexpected tensor %q", t.Name))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("tensor %q appears twice", t.Name))
		case !slices.Equal(t.Shape, shape.Shape):
			errs = append(errs, fmt.Errorf("tensor %q has shape %v, the model needs %v", t.Name, t.Shape, shape.Shape))
		case t.Class != 0 && t.Class != shape.Class:
			errs = append(errs, fmt.Errorf("tensor %q has class %v, the model's parameter is %v", t.Name, t.Class, shape.Class))
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
