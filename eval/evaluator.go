package eval

import (
	"context"
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// Evaluator scores a model on validation streams. Its graphs are compiled
// once per shape and kept for every later call (the plain, sliding and
// document-isolated passes, with or without the tilt; test-time training's
// score and update steps), so scoring many weight sets of one config —
// training's periodic validation, a quantization benchmark — compiles
// once. It is not safe for concurrent use.
type Evaluator struct {
	backend backends.Backend
	cfg     model.Config
	ctx     *mlctx.Context // the model's variables
	live    bool           // ctx belongs to someone else (a trainer)
	execs   map[scoreKind]*mlctx.Exec
	ttt     *tttState // test-time training's own context and graphs, made on first use
	loss    LossFunc  // NewFromLoss: the network's loss instead of the model's
	// initA, when set (parity tests only), gives the values of a fresh A
	// in place of the seeded uniform draw: see tttState.freshA.
	initA aInit
}

// LossFunc is a network's per-token loss graph: int32 inputs and targets
// [B, T] to float32 nats [B, T].
type LossFunc func(ctx *mlctx.Context, inputs, targets *graph.Node) *graph.Node

// NewFromLoss returns an evaluator of any network given as its per-token
// loss over the variables of a live context, with vocab its vocabulary
// size. It runs the plain and sliding passes; what needs the model itself
// (document isolation, the tilt, test-time training, whole distributions,
// Weights and SetWeights) is an error.
func NewFromLoss(backend backends.Backend, ctx *mlctx.Context, vocab int, loss LossFunc) *Evaluator {
	return &Evaluator{backend: backend, cfg: model.Config{VocabSize: vocab}, ctx: ctx, live: true, loss: loss,
		execs: map[scoreKind]*mlctx.Exec{}}
}

// ForBackend returns cfg with its matmul precision settled for backend when
// the config leaves it open (ComputeDType ""): bfloat16 on accelerators, as
// the reference's autocast does, float32 on the pure-Go backend, where
// bfloat16 matmuls are about 3x slower.
func ForBackend(backend backends.Backend, cfg model.Config) model.Config {
	if _, pureGo := backend.(*simplego.Backend); cfg.ComputeDType == "" && !pureGo {
		cfg.ComputeDType = "bfloat16"
	}
	return cfg
}

// New returns an evaluator of cfg holding weights in its own context on
// backend (checkpoints and dequantized artifacts alike). The config's
// precision is settled with ForBackend.
func New(backend backends.Backend, cfg model.Config, weights model.Weights) (*Evaluator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	cfg = ForBackend(backend, cfg)
	ctx := mlctx.New()
	if err := model.LoadWeights(ctx, cfg, weights); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return &Evaluator{backend: backend, cfg: cfg, ctx: ctx, execs: map[scoreKind]*mlctx.Exec{}}, nil
}

// NewFromContext returns an evaluator over the model variables of a live
// context, such as a trainer's, with cfg exactly as that context's graphs
// use it. Scoring reads the variables as they are at each call; test-time
// training copies them and never changes ctx.
func NewFromContext(backend backends.Backend, ctx *mlctx.Context, cfg model.Config) (*Evaluator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return &Evaluator{backend: backend, cfg: cfg, ctx: ctx, live: true, execs: map[scoreKind]*mlctx.Exec{}}, nil
}

// Config returns the model config the evaluator's graphs use.
func (e *Evaluator) Config() model.Config { return e.cfg }

// SetWeights replaces the weights the evaluator scores; the compiled graphs
// are kept. On an evaluator from NewFromContext it writes into that context.
func (e *Evaluator) SetWeights(w model.Weights) error {
	if e.loss != nil {
		return errNoModel
	}
	if err := model.LoadWeights(e.ctx, e.cfg, w); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// Weights copies the weights the evaluator scores to the host.
func (e *Evaluator) Weights() (model.Weights, error) {
	if e.loss != nil {
		return nil, errNoModel
	}
	return model.WeightsFromContext(e.ctx, e.cfg)
}

var errNoModel = fmt.Errorf("eval: an evaluator of a loss function has no model weights")

// Close frees the compiled graphs (and test-time training's context).
func (e *Evaluator) Close() {
	for _, x := range e.execs {
		x.Finalize()
	}
	e.execs = map[scoreKind]*mlctx.Exec{}
	if e.ttt != nil {
		e.ttt.close()
		e.ttt = nil
	}
}

// Evaluate scores every target of tokens (a validation stream: each token
// after the first is a target) in the mode opts describe and returns
// val_loss and val_bpb, the per-target losses and the time per phase. Byte
// counts come from bytes. Losses come back to the host per target and are
// summed there in float64, in stream order.
func (e *Evaluator) Evaluate(ctx context.Context, tokens []uint16, bytes ByteSource, opts Options) (res *Result, err error) {
	defer recoverGraphPanic("eval", &err)
	start := time.Now()
	if bytes == nil {
		return nil, fmt.Errorf("eval: no byte source")
	}
	if err := e.check(tokens, opts); err != nil {
		return nil, err
	}
	counts, err := bytes.StreamBytes(tokens)
	if err != nil {
		return nil, err
	}
	res = &Result{}
	m, err := e.mode(tokens, opts, res)
	if err != nil {
		return nil, err
	}
	t := newTally(len(tokens))
	if err := m.Score(ctx, tokens, t); err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := res.finish(tokens, t.nats, counts); err != nil {
		return nil, err
	}
	res.Duration = time.Since(start)
	res.Budget = estimateBudget(res, opts.BudgetTargets)
	return res, nil
}

// Mode returns the evaluation mode opts describe over tokens, for callers
// that record scores themselves (the audit). Its phase times go to timing
// when that is not nil.
func (e *Evaluator) Mode(tokens []uint16, opts Options, timing *Result) (Mode, error) {
	if err := e.check(tokens, opts); err != nil {
		return nil, err
	}
	if timing == nil {
		timing = &Result{}
	}
	return e.mode(tokens, opts, timing)
}

func (e *Evaluator) check(tokens []uint16, opts Options) error {
	if err := opts.Validate(e.cfg); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if len(tokens) < 2 {
		return fmt.Errorf("eval: need at least 2 validation tokens, got %d", len(tokens))
	}
	for i, t := range tokens {
		if int(t) >= e.cfg.VocabSize {
			return fmt.Errorf("eval: token %d at position %d is outside the vocabulary of %d", t, i, e.cfg.VocabSize)
		}
	}
	return nil
}

// mode builds the Mode of opts; hint computation (a phase of its own) is
// part of scoring, so it is timed inside Score.
func (e *Evaluator) mode(tokens []uint16, opts Options, timing *Result) (Mode, error) {
	if e.loss != nil && (opts.TTT != nil || opts.Tilt != nil || opts.DocIsolated) {
		return nil, fmt.Errorf("eval: document isolation, the tilt and test-time training need a model (this evaluator scores a loss function)")
	}
	if opts.TTT != nil {
		return &tttMode{e: e, opts: opts, timing: timing}, nil
	}
	if len(tokens)-1 < opts.SeqLen {
		return nil, fmt.Errorf("eval: %d validation targets are fewer than one window of %d", len(tokens)-1, opts.SeqLen)
	}
	return &windowMode{e: e, opts: opts, timing: timing}, nil
}

// hintsFor computes the tilt's hints of tokens when opts asks for the tilt,
// timing it as the "ngram hints" phase.
func hintsFor(tokens []uint16, opts Options, timing *Result) (*Hints, error) {
	if opts.Tilt == nil {
		return nil, nil
	}
	t0 := time.Now()
	h, err := opts.Tilt.Hints(tokens)
	if err != nil {
		return nil, err
	}
	timing.addPhase("ngram hints", time.Since(t0))
	return h, nil
}

// addPhase adds d to the named phase.
func (r *Result) addPhase(name string, d time.Duration) {
	for i := range r.Phases {
		if r.Phases[i].Name == name {
			r.Phases[i].Duration += d
			return
		}
	}
	r.Phases = append(r.Phases, Phase{Name: name, Duration: d})
}

// scoreKind selects a variant of the scoring graph.
type scoreKind struct {
	isolated bool // segment ids input: document-isolated attention
	hints    bool // hint ids input: the hints' losses as a second output
	probe    bool // probe index input: one row position's log-distribution as an output
}

// scoreExec returns the compiled scoring graph of kind k over the model's
// context (compiled per shape on first use, then reused).
func (e *Evaluator) scoreExec(k scoreKind) (*mlctx.Exec, error) {
	if x := e.execs[k]; x != nil {
		return x, nil
	}
	fn := scoreGraph(e.cfg, k, nil)
	if e.loss != nil {
		if k != (scoreKind{}) {
			return nil, fmt.Errorf("eval: an evaluator of a loss function cannot give whole distributions")
		}
		fn = func(ctx *mlctx.Context, in []*graph.Node) []*graph.Node {
			return []*graph.Node{e.loss(ctx, in[0], in[1])}
		}
	}
	x, err := mlctx.NewExec(e.backend, e.ctx.Reuse(), fn)
	if err != nil {
		return nil, fmt.Errorf("eval: build graph: %w", err)
	}
	x.SetMaxCache(-1)
	e.execs[k] = x
	return x, nil
}

// scoreGraph is the scoring graph of kind k. Inputs, in order: inputs and
// targets [B, T] int32, then segments [B, T] int32 (isolated), hints
// [B, T] int32 (hints), probe [B] int32 (probe). Outputs: the targets'
// losses [B, T] float32, then the hints' losses [B, T] (hints), then the
// log-distribution at each row's probe position [B, V] (probe). adapter,
// when set, is built inside the graph from its context (test-time
// training).
func scoreGraph(cfg model.Config, k scoreKind, adapter func(ctx *mlctx.Context, g *graph.Graph) model.Adapter) func(ctx *mlctx.Context, in []*graph.Node) []*graph.Node {
	return func(ctx *mlctx.Context, in []*graph.Node) []*graph.Node {
		inputs, targets := in[0], in[1]
		i := 2
		var opts model.Options
		if k.isolated {
			opts.Segments = in[i]
			i++
		}
		if adapter != nil {
			opts.Adapter = adapter(ctx, inputs.Graph())
		}
		z := model.Logits(ctx, cfg, inputs, opts)
		s := newScorer(z)
		out := []*graph.Node{s.losses(targets)}
		if k.hints {
			out = append(out, s.losses(in[i]))
			i++
		}
		if k.probe {
			out = append(out, s.logDistribution(in[i]))
		}
		return out
	}
}

// scorer computes losses from logits z [B, T, V] the way
// model.TokenLosses does (the same operations, so the same values):
//
//	loss[b,t] = logsumexp(z[b,t,:]) − z[b,t,y[b,t]]
type scorer struct {
	z, flat, lse *graph.Node
	b, t, v      int
}

func newScorer(z *graph.Node) *scorer {
	d := z.Shape().Dimensions
	s := &scorer{z: z, b: d[0], t: d[1], v: d[2]}
	n := s.b * s.t
	s.flat = graph.Reshape(z, n, s.v)
	m := graph.StopGradient(graph.ReduceAndKeep(s.flat, graph.ReduceMax, -1))
	s.lse = graph.Add(graph.Log(graph.ReduceSum(graph.Exp(graph.Sub(s.flat, m)), -1)), graph.Reshape(m, n))
	return s
}

// losses returns −log p(ids) [B, T] for int32 ids [B, T].
func (s *scorer) losses(ids *graph.Node) *graph.Node {
	onehot := graph.OneHot(graph.Reshape(ids, s.b*s.t), s.v, dtypes.Float32)
	return graph.Reshape(graph.Sub(s.lse, graph.ReduceSum(graph.Mul(s.flat, onehot), -1)), s.b, s.t)
}

// logDistribution returns log p(· | row b, position probe[b]) [B, V].
func (s *scorer) logDistribution(probe *graph.Node) *graph.Node {
	sel := graph.OneHot(probe, s.t, dtypes.Float32)                                       // [B, T]
	zrow := graph.Reshape(model.MatMulNN(graph.Reshape(sel, s.b, 1, s.t), s.z), s.b, s.v) // [B, V]
	lse := graph.ReduceSum(graph.Mul(graph.Reshape(s.lse, s.b, s.t), sel), -1)            // [B]
	return graph.Sub(zrow, graph.Reshape(lse, s.b, 1))
}

// recoverGraphPanic turns a panic raised while building or running a graph
// (gomlx reports shape errors by panicking) into an error, so that none
// crosses the package boundary.
func recoverGraphPanic(op string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: %v", op, r)
	}
}
