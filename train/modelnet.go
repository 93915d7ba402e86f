package train

import (
	"context"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/model"
)

// NewTrainer initialises cfg's parameters from opts.Seed on backend and
// prepares its optimizers. Nothing is compiled until the first Step.
//
// The optimizer's StorageDType, when auto, follows the compute dtype chosen
// for backend (OptimizerConfig.ResolveStorage); Trainer.Optimizer says what
// was chosen.
func NewTrainer(backend backends.Backend, cfg model.Config, opt OptimizerConfig, opts TrainerOptions) (*Trainer, error) {
	cfg = forBackend(backend, cfg)
	opt = opt.ResolveStorage(cfg.ComputeDType)
	net, err := modelNetwork(cfg, opt)
	if err != nil {
		return nil, err
	}
	return newTrainer(backend, net, opt, opts)
}

// Evaluate scores a model given only its weights: val_loss and val_bpb over
// valTokens (a stream whose every target after the first token is scored,
// e.g. from data.LoadValidation), with bytes from byteTable. It builds its own
// context, so it serves dequantized artifacts as well as checkpoints; it
// compiles its graph on every call (an eval.Evaluator, which this wraps,
// keeps it for many weight sets).
func Evaluate(ctx context.Context, backend backends.Backend, cfg model.Config, weights model.Weights,
	valTokens []uint16, byteTable ByteCounter, opts EvalOptions) (res EvalResult, err error) {
	if opts.SeqLen <= 0 {
		return EvalResult{}, fmt.Errorf("evaluate: sequence length must be positive, got %d", opts.SeqLen)
	}
	if byteTable == nil {
		return EvalResult{}, fmt.Errorf("evaluate: no byte table")
	}
	ev, err := eval.New(backend, cfg, weights)
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	defer ev.Close()
	r, err := ev.Evaluate(ctx, valTokens, opts.byteSource(byteTable), opts.toEval())
	if err != nil {
		return EvalResult{}, fmt.Errorf("evaluate: %w", err)
	}
	return fromEval(r), nil
}

// modelLossFn is the model's per-token loss graph for cfg.
func modelLossFn(cfg model.Config) eval.LossFunc {
	return func(ctx *mlctx.Context, inputs, targets *graph.Node) *graph.Node {
		return model.TokenLosses(ctx, cfg, inputs, targets, model.Options{})
	}
}

// Group is an optimizer group: which update rule, learning rate and weight
// decay a parameter gets. A parameter's group follows from its class alone
// (GroupOf), as the reference's optimizer split does.
type Group string

// Optimizer groups.
const (
	GroupMuon   Group = "muon"        // Attention and MLP matrices: Muon at MatrixLR
	GroupEmbed  Group = "adam_embed"  // the token embedding (at UntiedEmbedLR beside an untied head) and auxiliary tables: Adam at EmbedLR
	GroupHead   Group = "adam_head"   // an untied output head: Adam at HeadLR
	GroupScalar Group = "adam_scalar" // control parameters: Adam at ScalarLR
	GroupNone   Group = "none"        // frozen parameters: never updated
)

// GroupOf returns the optimizer group of a parameter class.
func GroupOf(c model.Class) (Group, error) {
	switch c {
	case model.Attention, model.MLP:
		return GroupMuon, nil
	case model.Embedding, model.Table:
		return GroupEmbed, nil
	case model.Head:
		return GroupHead, nil
	case model.Control:
		return GroupScalar, nil
	case model.Frozen:
		return GroupNone, nil
	}
	return "", fmt.Errorf("unknown parameter class %v", c)
}

// rule returns the update rule of group g under opt; ok is false for
// GroupNone.
func (g Group) rule(opt OptimizerConfig) (r paramRule, ok bool) {
	switch g {
	case GroupMuon:
		return paramRule{kind: muonUpdate, lr: opt.MatrixLR, wd: opt.MuonWeightDecay}, true
	case GroupEmbed:
		return paramRule{kind: adamUpdate, lr: opt.EmbedLR, wd: opt.EmbedWeightDecay}, true
	case GroupHead:
		return paramRule{kind: adamUpdate, lr: opt.HeadLR, wd: opt.EmbedWeightDecay}, true
	case GroupScalar:
		return paramRule{kind: adamUpdate, lr: opt.ScalarLR, wd: opt.ScalarWeightDecay}, true
	}
	return paramRule{}, false
}

// modelNetwork adapts a model config to the trainer: the loss graph, each
// trainable parameter's update rule (from its class, GroupOf), and weight
// transfers. Frozen parameters are created by the loss graph but get no
// gradient and no update.
func modelNetwork(cfg model.Config, opt OptimizerConfig) (network, error) {
	if err := cfg.Validate(); err != nil {
		return network{}, fmt.Errorf("trainer: %w", err)
	}
	bf16 := opt.StorageDType == dtypes.BFloat16
	var params []paramSpec
	for _, p := range cfg.Params() {
		g, err := GroupOf(p.Class)
		if err != nil {
			return network{}, fmt.Errorf("trainer: parameter %q: %w", p.Name, err)
		}
		r, trainable := g.rule(opt)
		if !trainable {
			continue
		}
		if p.Class == model.Embedding && cfg.UntiedHead {
			r.lr = opt.UntiedEmbedLR // the baseline's EMBED_LR when the head is its own
		}
		if r.kind == muonUpdate && len(p.Shape) != 2 {
			return network{}, fmt.Errorf("trainer: matrix parameter %q has shape %v, Muon needs 2-D", p.Name, p.Shape)
		}
		// The reference's bf16 storage (StorageDType): the model is cast to
		// bf16 and only CastedLinear layers (an untied head among them) and
		// small/control parameters go back to fp32, so embedding tables stay
		// bf16; every Muon update passes through a bf16 buffer.
		switch {
		case r.kind == muonUpdate:
			r.bf16Update = bf16
		case p.Class == model.Embedding || p.Class == model.Table:
			r.bf16Weights = bf16
		}
		params = append(params, paramSpec{name: p.Name, shape: p.Shape, rule: r})
	}
	return network{
		cfg:    &cfg,
		vocab:  cfg.VocabSize,
		lossFn: modelLossFn(cfg),
		trainLoss: func(ctx *mlctx.Context, inputs, targets, segments *graph.Node, unlooped bool) *graph.Node {
			return model.TokenLosses(ctx, cfg, inputs, targets, model.Options{Segments: segments, Unlooped: unlooped})
		},
		params: params,
		init: func(_ backends.Backend, ctx *mlctx.Context, seed int64) error {
			return initModel(ctx, cfg, seed)
		},
		weights: func(ctx *mlctx.Context) (model.Weights, error) { return model.WeightsFromContext(ctx, cfg) },
		load:    func(ctx *mlctx.Context, w model.Weights) error { return model.LoadWeights(ctx, cfg, w) },
	}, nil
}

// initModel gives cfg's parameters in ctx their initial values for seed:
// model.InitWeights, computed on the host, so the same seed starts the same
// model on every backend.
func initModel(ctx *mlctx.Context, cfg model.Config, seed int64) error {
	w, err := model.InitWeights(cfg, seed)
	if err != nil {
		return err
	}
	return model.LoadWeights(ctx, cfg, w)
}

// TrainFLOPsPerToken is the model's training arithmetic per token at
// sequence length seqLen for the full (looped) graph: three forward passes
// of model.Config.FLOPsPerToken, the weight matmuls once per virtual layer
// (depth recurrence reruns shared weights) plus attention's q·kᵀ and p·v at
// seqLen (PaLM's appendix B convention, every key counted).
func TrainFLOPsPerToken(cfg model.Config, seqLen int) float64 {
	return cfg.FLOPsPerToken(seqLen, true).Train()
}
