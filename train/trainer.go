package train

import (
	"context"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/model"
)

// Batch is one micro-batch of training data: row-major [Rows, SeqLen] token
// ids, Targets being Inputs shifted by one token (data.Loader.Next's output).
// Segments, when set (data.PackingLoader), holds each position's document
// segment id: attention stays within a segment (model.Options.Segments).
type Batch struct {
	Inputs, Targets []int32
	Segments        []int32
	Rows, SeqLen    int
}

// validate checks the batch's sizes and token range.
func (b Batch) validate(vocab int) error {
	n := b.Rows * b.SeqLen
	if b.Rows <= 0 || b.SeqLen <= 0 || len(b.Inputs) != n || len(b.Targets) != n || (b.Segments != nil && len(b.Segments) != n) {
		return fmt.Errorf("batch [%d, %d] has %d inputs, %d targets and %d segment ids", b.Rows, b.SeqLen, len(b.Inputs), len(b.Targets), len(b.Segments))
	}
	for i := range n {
		if uint32(b.Inputs[i]) >= uint32(vocab) || uint32(b.Targets[i]) >= uint32(vocab) {
			return fmt.Errorf("batch position %d: token %d -> %d outside the vocabulary of %d", i, b.Inputs[i], b.Targets[i], vocab)
		}
	}
	return nil
}

// NewBatch wraps one micro-batch of row-major [len/seqLen, seqLen] inputs and
// targets, as data.Loader.Next returns them.
func NewBatch(inputs, targets []int32, seqLen int) Batch {
	rows := 0
	if seqLen > 0 {
		rows = len(inputs) / seqLen
	}
	return Batch{Inputs: inputs, Targets: targets, Rows: rows, SeqLen: seqLen}
}

// paramSpec is one trainable parameter and how it is updated.
type paramSpec struct {
	name  string // scoped name, "block_3/attn/c_q"
	shape []int
	rule  paramRule
}

// network is what the trainer needs from a model: its per-token loss graph,
// its parameters with their update rules, and host transfers of weights.
type network struct {
	cfg    *model.Config // the model's config (nil for other networks)
	vocab  int
	lossFn eval.LossFunc // evaluation: the full model over causal rows
	// trainLoss is the training loss graph: segments (nil: none) keep
	// attention within documents; unlooped runs a depth-recurrent model
	// without its loops.
	trainLoss func(ctx *mlctx.Context, inputs, targets, segments *Node, unlooped bool) *Node
	params    []paramSpec
	// init gives every parameter its initial value in ctx for seed.
	init func(backend backends.Backend, ctx *mlctx.Context, seed int64) error
	// weights reads the parameters from ctx; load writes them.
	weights func(ctx *mlctx.Context) (model.Weights, error)
	load    func(ctx *mlctx.Context, w model.Weights) error
}

// Trainer holds a model's parameters and optimizer state on a backend and
// runs optimizer steps: forward, backward, gradient accumulation, clipping
// and the Muon/Adam updates, compiled into one graph per micro-step kind.
// It is not safe for concurrent use.
type Trainer struct {
	backend backends.Backend
	net     network
	opt     OptimizerConfig
	ctx     *mlctx.Context
	accum   int
	rules   map[string]paramRule

	execs    map[stepVariant]*stepExecs // compiled on first use
	unlooped bool                       // train without the model's loops (SetLooping)
	ema      float64                    // EMA decay (0: none)
	steps    int                        // optimizer steps applied (Adam's t of the last one)
	eval     *eval.Evaluator            // made on the first Evaluate
	devices  int                        // data-parallel ranks (distributed.go)
	mesh     *distributed.DeviceMesh    // the SPMD mesh; nil: single-device graphs
}

// stepVariant is one kind of training graph: with or without document
// segments, looped or not. Each is compiled on first use.
type stepVariant struct{ unlooped, segmented bool }

// stepExecs are a variant's micro-steps: accumulate only adds gradients,
// apply also updates the weights.
type stepExecs struct{ accumulate, apply *mlctx.Exec }

// TrainerOptions are the settings fixed for a trainer's life.
type TrainerOptions struct {
	// AccumSteps is the number of micro-batches per optimizer step (>= 1);
	// their gradients are averaged, as the reference's grad_accum_steps.
	AccumSteps int
	// Seed fixes the initial weights.
	Seed int64
	// EMADecay > 0 keeps an exponential moving average of the trainable
	// weights, updated inside every optimizer step (emaUpdate) and started
	// at the initial weights (the record's EMA, §3.4).
	EMADecay float64
	// Unlooped starts a depth-recurrent model without its loops (see
	// SetLooping).
	Unlooped bool
	// Devices is the number of data-parallel ranks, one per device of the
	// backend (0 means 1); see distributed.go and Trainer.StepRanks.
	Devices int
	// ForceSPMD compiles the steps as SPMD programs even on one device, so
	// that the multi-device path can be checked on a single GPU.
	ForceSPMD bool
}

func newTrainer(backend backends.Backend, net network, opt OptimizerConfig, opts TrainerOptions) (t *Trainer, err error) {
	defer recoverGraphPanic("new trainer", &err)
	opt = opt.ResolveNewtonSchulz(isPureGo(backend))
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if opts.AccumSteps < 1 {
		return nil, fmt.Errorf("trainer: accumulation steps must be >= 1, got %d", opts.AccumSteps)
	}
	if opts.EMADecay < 0 || opts.EMADecay >= 1 {
		return nil, fmt.Errorf("trainer: EMA decay %v must be in [0, 1)", opts.EMADecay)
	}
	t = &Trainer{backend: backend, net: net, opt: opt, ctx: mlctx.New(), accum: opts.AccumSteps,
		rules: map[string]paramRule{}, execs: map[stepVariant]*stepExecs{},
		ema: opts.EMADecay, unlooped: opts.Unlooped, devices: max(opts.Devices, 1)}
	if t.devices > 1 || opts.ForceSPMD {
		t.backend = spmdBackend{backend}
		if t.mesh, err = deviceMesh(t.backend, t.devices); err != nil {
			return nil, err
		}
	}
	for _, p := range net.params {
		if p.rule.kind == muonUpdate && len(p.shape) != 2 {
			return nil, fmt.Errorf("trainer: Muon needs 2-D parameters, %q has shape %v", p.name, p.shape)
		}
		t.rules[p.name] = p.rule
	}
	if err := net.init(t.backend, t.ctx, opts.Seed); err != nil {
		return nil, fmt.Errorf("trainer: initialise weights: %w", err)
	}
	if err := t.roundStored(); err != nil {
		return nil, fmt.Errorf("trainer: initialise weights: %w", err)
	}
	if t.ema > 0 {
		if err := t.ResetEMA(); err != nil {
			return nil, fmt.Errorf("trainer: %w", err)
		}
	}
	if _, err := t.stepExecs(stepVariant{unlooped: t.unlooped}); err != nil {
		return nil, err
	}
	return t, nil
}

// stepExecs returns (creating them) the micro-step executables of v.
func (t *Trainer) stepExecs(v stepVariant) (*stepExecs, error) {
	if e, ok := t.execs[v]; ok {
		return e, nil
	}
	e := &stepExecs{}
	var err error
	if t.accum > 1 {
		if e.accumulate, err = t.newStepExec(false, v); err != nil {
			return nil, fmt.Errorf("trainer: %w", err)
		}
	}
	if e.apply, err = t.newStepExec(true, v); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	t.execs[v] = e
	return e, nil
}

// SetLooping switches a depth-recurrent model's training graph between its
// looped and unlooped layer orders for the next steps (the record turns its
// loops on at a fraction of the run). Both graphs share the weights and
// optimizer state; each is compiled on first use. Evaluation always runs
// the full (looped) model.
func (t *Trainer) SetLooping(on bool) { t.unlooped = !on }

// Looping reports whether the next steps train the looped graph.
func (t *Trainer) Looping() bool { return !t.unlooped }

// Steps returns the number of optimizer steps applied so far.
func (t *Trainer) Steps() int { return t.steps }

// AccumSteps returns the number of micro-batches per optimizer step.
func (t *Trainer) AccumSteps() int { return t.accum }

// accumScope holds the gradient accumulators when AccumSteps > 1.
const accumScope = optimizerScope + "/grad_accum"

// stepGraph builds one micro-step: the per-token losses of a micro-batch,
// their mean's gradients and, when apply is set, the optimizer update with
// the gradients averaged over the accumulated micro-batches. It returns the
// micro-batch's mean loss, reduced per row first for accuracy.
//
// Inputs: inputs, targets [B, T] int32; lrScale, momentum, adamStep float32
// scalars (fed, so changing them never recompiles); segment ids [B, T] int32
// last, for a segmented variant. With an EMA, apply also moves every
// trainable weight's average towards its new value.
func (t *Trainer) stepGraph(apply bool, variant stepVariant) func(ctx *mlctx.Context, in []*Node) *Node {
	return func(ctx *mlctx.Context, in []*Node) *Node {
		inputs, targets := in[0], in[1]
		var segments *Node
		if variant.segmented {
			segments = in[5]
		}
		var losses *Node
		switch {
		case t.net.trainLoss != nil:
			losses = t.net.trainLoss(ctx, inputs, targets, segments, variant.unlooped)
		case segments == nil && !variant.unlooped:
			losses = t.net.lossFn(ctx, inputs, targets)
		default:
			panic("this network has no training loss with segments or without loops")
		}
		g := losses.Graph()
		var vars []*mlctx.Variable
		var values []*Node
		for _, p := range t.net.params {
			v := t.variable(p.name)
			if v == nil {
				panic(fmt.Sprintf("parameter %q not in the context after building the loss", p.name))
			}
			vars = append(vars, v)
			values = append(values, v.ValueGraph(g))
		}
		grads := Gradient(ReduceAllMean(losses), values...)
		for i, v := range vars {
			// A parameter held in bfloat16 (the reference's tied embedding
			// on a GPU) has a bfloat16 gradient: each micro-batch's share,
			// grad/accum, is rounded, and so is the running sum, as torch
			// accumulates loss*grad_scale backward passes into a bf16 .grad.
			bf16 := t.rules[paramName(v)].bf16Weights
			if t.accum == 1 {
				if bf16 {
					grads[i] = roundBF16(grads[i])
				}
				continue
			}
			acc := ctx.InAbsPath(subScope(accumScope, v.Scope())).Checked(false).
				WithInitializer(initializers.Zero).VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
			share := grads[i]
			if bf16 {
				share = roundBF16(MulScalar(share, 1/float64(t.accum)))
			}
			sum := Add(acc.ValueGraph(g), share)
			if bf16 {
				sum = roundBF16(sum)
			}
			if !apply {
				acc.SetValueGraph(sum)
				continue
			}
			acc.SetValueGraph(ZerosLike(sum))
			if bf16 {
				grads[i] = sum
			} else {
				grads[i] = MulScalar(sum, 1/float64(t.accum))
			}
		}
		if apply {
			// The ranks' mean (one AllReduce on several devices, nothing on
			// one) and the clip, in the order the run's reference uses.
			grads = reduceGradients(grads, t.opt, t.rankMeanOf(vars))
			hp := hyperNodes{lrScale: in[2], momentum: in[3], adamStep: in[4]}
			for i, v := range vars {
				t.opt.applyUpdate(ctx, v, grads[i], t.rules[paramName(v)], hp)
			}
			if t.ema > 0 {
				for _, v := range vars {
					e := stateVar(ctx, emaKind, v)
					e.SetValueGraph(emaUpdate(e.ValueGraph(g), v.ValueGraph(g), t.ema))
				}
			}
		}
		return ReduceAllMean(ReduceMean(losses, -1))
	}
}

// variable returns the parameter variable with the scoped name, or nil.
func (t *Trainer) variable(name string) *mlctx.Variable {
	scope, base := mlctx.SplitScope(mlctx.RootScope + name)
	return t.ctx.GetVariableByScopeAndName(scope, base)
}

// Step runs one optimizer step over the micro-batches (exactly AccumSteps of
// them) at the given learning-rate multiplier and Muon momentum, and returns
// the mean training loss of the micro-batches. A NaN or infinite loss is an
// error naming the step; the weights are then not to be trusted. It is
// StepRanks with one rank (distributed.go).
func (t *Trainer) Step(ctx context.Context, micro []Batch, lrScale, momentum float64) (loss float64, err error) {
	return t.StepRanks(ctx, [][]Batch{micro}, lrScale, momentum)
}

// scalarValue reads a scalar float32 result to the host.
func scalarValue(x *tensors.Tensor) (float64, error) {
	v, err := tensors.CopyFlatData[float32](x)
	if err != nil || len(v) != 1 {
		return 0, fmt.Errorf("read scalar result: %v (%d values)", err, len(v))
	}
	return float64(v[0]), nil
}

// Weights copies the current parameters to the host.
func (t *Trainer) Weights() (model.Weights, error) { return t.net.weights(t.ctx) }

// SetWeights replaces the parameters (e.g. from a checkpoint). Parameters
// held in bfloat16 (OptimizerConfig.StorageDType) are rounded to it, as the
// reference's cast of the model to bf16 does.
func (t *Trainer) SetWeights(w model.Weights) error {
	if err := t.net.load(t.ctx, w); err != nil {
		return err
	}
	return t.roundStored()
}

// roundStored rounds the values of parameters held in bfloat16.
func (t *Trainer) roundStored() error {
	for _, p := range t.net.params {
		if !p.rule.bf16Weights {
			continue
		}
		v := t.variable(p.name)
		if v == nil || !v.HasValue() {
			return fmt.Errorf("parameter %q has no value", p.name)
		}
		w := tensorFromVariable(p.name, v)
		for i, x := range w.Data {
			w.Data[i] = hostRoundBF16(x)
		}
		if err := setVariable(v, w); err != nil {
			return err
		}
	}
	return nil
}

// Optimizer returns the trainer's optimizer settings, StorageDType settled
// (see NewTrainer).
func (t *Trainer) Optimizer() OptimizerConfig { return t.opt }

// optimizerStateNames lists the state tensors of each parameter in a fixed
// order: "muon/<name>" for Muon's momentum buffer, "adam_m/<name>" and
// "adam_v/<name>" for Adam's moments.
func (t *Trainer) optimizerStateNames() []string {
	var names []string
	for _, p := range t.net.params {
		switch p.rule.kind {
		case muonUpdate:
			names = append(names, "muon/"+p.name)
		case adamUpdate:
			names = append(names, "adam_m/"+p.name, "adam_v/"+p.name)
		}
	}
	return names
}

// stateVariable returns (creating it if needed, zero-initialised) the context
// variable that holds the optimizer state tensor "kind/param".
func (t *Trainer) stateVariable(name string) (*mlctx.Variable, error) {
	kind, param, ok := strings.Cut(name, "/")
	if !ok {
		return nil, fmt.Errorf("optimizer state %q: no kind prefix", name)
	}
	v := t.variable(param)
	if v == nil {
		return nil, fmt.Errorf("optimizer state %q: no parameter %q", name, param)
	}
	return stateVar(t.ctx, kind, v), nil
}

// OptimizerState copies the optimizer's state to the host: one tensor per
// name of optimizerStateNames (zeros before the first step).
func (t *Trainer) OptimizerState() (ts []model.Tensor, err error) {
	defer recoverGraphPanic("optimizer state", &err)
	for _, name := range t.optimizerStateNames() {
		v, err := t.stateVariable(name)
		if err != nil {
			return nil, err
		}
		ts = append(ts, tensorFromVariable(name, v))
	}
	return ts, nil
}

// SetOptimizerState restores state saved by OptimizerState after steps
// optimizer steps (Adam's bias correction continues from steps+1).
func (t *Trainer) SetOptimizerState(ts []model.Tensor, steps int) (err error) {
	defer recoverGraphPanic("set optimizer state", &err)
	if steps < 0 {
		return fmt.Errorf("optimizer state: negative step count %d", steps)
	}
	want := t.optimizerStateNames()
	if len(ts) != len(want) {
		return fmt.Errorf("optimizer state: %d tensors, this model's optimizers keep %d", len(ts), len(want))
	}
	for i, name := range want {
		if ts[i].Name != name {
			return fmt.Errorf("optimizer state: tensor %d is %q, want %q", i, ts[i].Name, name)
		}
		v, err := t.stateVariable(name)
		if err != nil {
			return err
		}
		if err := setVariable(v, ts[i]); err != nil {
			return fmt.Errorf("optimizer state: %w", err)
		}
	}
	t.steps = steps
	return nil
}

// tensorFromVariable copies a variable's value (zeros when unset) to the host.
func tensorFromVariable(name string, v *mlctx.Variable) model.Tensor {
	dims := v.Shape().Dimensions
	out := model.Tensor{Name: name, Shape: append([]int{}, dims...)}
	if !v.HasValue() {
		out.Data = make([]float32, v.Shape().Size())
		return out
	}
	val := v.MustValue()
	if val.DType() != dtypes.Float32 {
		panic(fmt.Sprintf("variable %q is %s, not float32", name, val.DType()))
	}
	out.Data = tensors.MustCopyFlatData[float32](val)
	return out
}

// setVariable replaces a variable's value with a host tensor of its shape.
func setVariable(v *mlctx.Variable, t model.Tensor) error {
	want := shapes.Make(dtypes.Float32, t.Shape...)
	if !v.Shape().Equal(want) {
		return fmt.Errorf("%q: shape %v, the variable has %v", t.Name, t.Shape, v.Shape().Dimensions)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	return v.SetValue(tensors.FromFlatDataAndDimensions(append([]float32{}, t.Data...), t.Shape...))
}

// Snapshot is a host copy of a trainer's whole state: weights, optimizer
// state and step count. The reference's warm-up takes one, runs priming
// steps that compile the graphs, and restores it.
type Snapshot struct {
	values map[*mlctx.Variable]*tensors.Tensor
	steps  int
}

// Snapshot copies the trainer's current state to the host.
func (t *Trainer) Snapshot() (*Snapshot, error) {
	s := &Snapshot{values: map[*mlctx.Variable]*tensors.Tensor{}, steps: t.steps}
	for v := range t.ctx.IterVariables() {
		if !v.HasValue() {
			continue
		}
		c, err := v.MustValue().LocalClone()
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", v.ScopeAndName(), err)
		}
		s.values[v] = c
	}
	return s, nil
}

// Restore returns the trainer to a snapshot it took: every value is put back,
// optimizer state created since is zeroed, and the step count is reset.
func (t *Trainer) Restore(s *Snapshot) error {
	for v := range t.ctx.IterVariables() {
		var val *tensors.Tensor
		if saved, ok := s.values[v]; ok {
			c, err := saved.LocalClone()
			if err != nil {
				return fmt.Errorf("restore %s: %w", v.ScopeAndName(), err)
			}
			val = c
		} else {
			val = tensors.FromShape(v.Shape())
		}
		if err := v.SetValue(val); err != nil {
			return fmt.Errorf("restore %s: %w", v.ScopeAndName(), err)
		}
	}
	t.steps = s.steps
	return nil
}

// Evaluate scores the trainer's current weights (see the package function
// Evaluate for the metric) through an eval.Evaluator over the trainer's own
// variables, kept with its compiled graphs for the next call.
func (t *Trainer) Evaluate(ctx context.Context, valTokens []uint16, bytes ByteCounter, opts EvalOptions) (res EvalResult, err error) {
	if bytes == nil {
		return EvalResult{}, fmt.Errorf("evaluate: no byte table")
	}
	if opts.SeqLen <= 0 {
		return EvalResult{}, fmt.Errorf("evaluate: sequence length must be positive, got %d", opts.SeqLen)
	}
	if t.eval == nil {
		if t.net.cfg != nil {
			if t.eval, err = eval.NewFromContext(t.backend, t.ctx, *t.net.cfg); err != nil {
				return EvalResult{}, fmt.Errorf("evaluate: %w", err)
			}
		} else {
			t.eval = eval.NewFromLoss(t.backend, t.ctx, t.net.vocab, t.net.lossFn)
		}
	}
	r, err := t.eval.Evaluate(ctx, valTokens, opts.byteSource(bytes), opts.toEval())
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	return fromEval(r), nil
}

// SetQAT switches the fake quantization of a model built with
// model.Config.QAT on or off for the next steps and evaluations, without
// recompiling (see model.SetQATEnabled).
func (t *Trainer) SetQAT(on bool) error { return model.SetQATEnabled(t.ctx, on) }

// emaKind is the optimizer-state kind that holds the EMA of a weight.
const emaKind = "ema"

// EMA reports the trainer's EMA decay (0: no EMA).
func (t *Trainer) EMA() float64 { return t.ema }

// ResetEMA sets every trainable weight's average to its current value.
func (t *Trainer) ResetEMA() (err error) {
	defer recoverGraphPanic("reset EMA", &err)
	for _, p := range t.net.params {
		v := t.variable(p.name)
		if v == nil || !v.HasValue() {
			return fmt.Errorf("reset EMA: parameter %q has no value", p.name)
		}
		if err := setVariable(stateVar(t.ctx, emaKind, v), tensorFromVariable(p.name, v)); err != nil {
			return fmt.Errorf("reset EMA: %w", err)
		}
	}
	return nil
}

// EMAWeights returns the model with every trainable weight replaced by its
// average (frozen parameters, which never change, as they are). Parameters
// held in bfloat16 get their average rounded to it, as the record casts its
// fp32 EMA back to each parameter's dtype.
func (t *Trainer) EMAWeights() (w model.Weights, err error) {
	defer recoverGraphPanic("EMA weights", &err)
	if t.ema == 0 {
		return nil, fmt.Errorf("EMA weights: the trainer keeps no EMA")
	}
	if w, err = t.Weights(); err != nil {
		return nil, err
	}
	for i := range w {
		r, ok := t.rules[w[i].Name]
		if !ok {
			continue // frozen
		}
		avg := tensorFromVariable(w[i].Name, stateVar(t.ctx, emaKind, t.variable(w[i].Name)))
		if r.bf16Weights {
			for j, x := range avg.Data {
				avg.Data[j] = hostRoundBF16(x)
			}
		}
		w[i].Data = avg.Data
	}
	return w, nil
}

// SetEMA replaces the averages of the trainable weights (a resumed run's,
// from its checkpoint).
func (t *Trainer) SetEMA(w model.Weights) (err error) {
	defer recoverGraphPanic("set EMA", &err)
	if t.ema == 0 {
		return fmt.Errorf("set EMA: the trainer keeps no EMA")
	}
	for _, p := range t.net.params {
		x, ok := w.Get(p.name)
		if !ok {
			return fmt.Errorf("set EMA: no tensor %q", p.name)
		}
		if err := setVariable(stateVar(t.ctx, emaKind, t.variable(p.name)), x); err != nil {
			return fmt.Errorf("set EMA: %w", err)
		}
	}
	return nil
}

// Close frees the compiled graphs.
func (t *Trainer) Close() {
	for _, e := range t.execs {
		if e.accumulate != nil {
			e.accumulate.Finalize()
		}
		e.apply.Finalize()
	}
	t.execs = map[stepVariant]*stepExecs{}
	if t.eval != nil {
		t.eval.Close()
		t.eval = nil
	}
}
