package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// globalScope holds the global phase's momentum buffers.
const globalScope = "/ttt_sgd"

// globalPhase fine-tunes every base weight but the Frozen ones on already
// scored documents, as the record's train_val_ttt_global_sgd_distributed
// runs on GlobalRanks ranks:
//
//   - the documents' tokens are concatenated (each BOS .. next BOS, as
//     Documents cuts them) and cut into chunks of GlobalChunkTokens;
//   - every chunk but the last (which the record skips) gives its n whole
//     seqLen-token sequences (a shorter tail is unused), rank r of W the
//     sequences [n·r/W, n·(r+1)/W);
//   - per epoch, each step takes the next GlobalBatchSeqs of every rank's
//     sequences; its loss is (1/W) Σ_r (mean loss over rank r's tokens),
//     the average the record's gradient all-reduce takes, at
//     lr_c = GlobalLR · ½(1 + cos(π c / (C − 1)));
//   - gradients are clipped to a global L2 norm of GlobalClip
//     (g ← g · min(1, clip / (‖g‖ + 1e-6))), then
//     buf ← μ·buf + g, p ← p − lr·buf (PyTorch SGD, fresh buffers per phase).
//
// Attention is document-isolated within each seqLen row. The record packs a
// rank's sequences into one row and cuts documents every eval_seq_len
// tokens from their start, so a document that runs from one of a rank's
// sequences into the next is cut at the row boundary here and not there
// (as in golf's training rows; exact when documents start at the
// sequence boundaries). A rank with no sequence left in a step adds
// nothing to that step's average (the record's ranks would wait for each
// other: its settings never do this).
func (st *tttState) globalPhase(ctx context.Context, tokens []uint16, docs []Doc, opts Options) error {
	set := st.set
	if set.GlobalEpochs <= 0 {
		return nil
	}
	var flat []uint16
	for _, d := range docs {
		flat = append(flat, tokens[d.Start:d.Start+d.Len]...)
	}
	seq := opts.SeqLen
	total := len(flat) - 1
	chunks := (total + set.GlobalChunkTokens - 1) / set.GlobalChunkTokens
	if chunks < 2 {
		return nil // only the skipped last chunk
	}
	exec, err := st.globalExec()
	if err != nil {
		return err
	}
	for _, v := range st.moms {
		if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil {
			return fmt.Errorf("ttt: reset momentum: %w", err)
		}
	}
	ranks := max(set.GlobalRanks, 1)
	for ci := range chunks - 1 {
		start := ci * set.GlobalChunkTokens
		n := (min((ci+1)*set.GlobalChunkTokens, total) - start) / seq
		if n <= 0 {
			continue
		}
		lr := set.GlobalLR * 0.5 * (1 + math.Cos(math.Pi*float64(ci)/float64(max(chunks-1, 1))))
		per := (n + ranks - 1) / ranks // the most sequences a rank has
		batch := per
		if set.GlobalBatchSeqs > 0 {
			batch = min(batch, set.GlobalBatchSeqs)
		}
		for range set.GlobalEpochs {
			for bs := 0; bs < per; bs += batch {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("ttt: %w", err)
				}
				var x, y, seg []int32
				var weight []float32
				for r := range ranks {
					lo, hi := n*r/ranks, n*(r+1)/ranks
					a, b := lo+bs, min(lo+bs+batch, hi)
					for q := a; q < b; q++ {
						s := start + q*seq
						for c := range seq {
							x = append(x, int32(flat[s+c]))
							y = append(y, int32(flat[s+c+1]))
						}
						seg = append(seg, make([]int32, seq)...)
						segmentIDs(seg[len(seg)-seq:], flat, s, opts.bos())
						weight = append(weight, float32(1/(float64(ranks)*float64((b-a)*seq))))
					}
				}
				rows := len(weight)
				if rows == 0 {
					continue
				}
				outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, rows, seq), tensors.FromFlatDataAndDimensions(y, rows, seq),
					tensors.FromFlatDataAndDimensions(seg, rows, seq), tensors.FromFlatDataAndDimensions(weight, rows), float32(lr))
				if err != nil {
					return fmt.Errorf("ttt: global chunk %d: %w", ci, err)
				}
				for _, o := range outs {
					o.FinalizeAll()
				}
			}
		}
	}
	return nil
}

// globalExec returns the graph of one global SGD step. Inputs: inputs,
// targets and segment ids [R, T] int32, each row's loss weight [R] and the
// learning rate (float32); the loss is Σ_r weight_r Σ_t nats_rt.
func (st *tttState) globalExec() (*mlctx.Exec, error) {
	if st.global != nil {
		return st.global, nil
	}
	set, cfg := st.set, st.cfg
	var trainable []model.ParamSpec
	for _, p := range cfg.Params() {
		if p.Class != model.Frozen {
			trainable = append(trainable, p)
		}
	}
	for _, p := range trainable {
		scope, base := mlctx.SplitScope(globalScope + "/" + p.Name)
		st.moms[p.Name] = st.ctx.InAbsPath(scope).Checked(false).
			VariableWithValue(base, tensors.FromShape(shapeF32(p.Shape...))).SetTrainable(false)
	}
	fn := func(ctx *mlctx.Context, x, y, seg, weight, lr *graph.Node) *graph.Node {
		nats := model.TokenLosses(ctx, cfg, x, y, model.Options{Segments: seg})
		g := nats.Graph()
		loss := graph.ReduceAllSum(graph.Mul(graph.ReduceSum(nats, 1), weight))
		vars := make([]*mlctx.Variable, len(trainable))
		values := make([]*graph.Node, len(trainable))
		for i, p := range trainable {
			scope, base := mlctx.SplitScope(mlctx.RootScope + p.Name)
			vars[i] = st.ctx.GetVariableByScopeAndName(scope, base)
			if vars[i] == nil {
				panic(fmt.Errorf("ttt: parameter %q not in the context", p.Name))
			}
			values[i] = vars[i].ValueGraph(g)
		}
		grads := graph.Gradient(loss, values...)
		if set.GlobalClip > 0 {
			var sq *graph.Node
			for _, gr := range grads {
				s := graph.ReduceAllSum(graph.Mul(gr, gr))
				if sq == nil {
					sq = s
				} else {
					sq = graph.Add(sq, s)
				}
			}
			norm := graph.Sqrt(sq)
			coef := graph.Min(graph.Div(graph.Scalar(g, dtypes.Float32, set.GlobalClip), graph.AddScalar(norm, 1e-6)),
				graph.Scalar(g, dtypes.Float32, 1))
			for i := range grads {
				grads[i] = graph.Mul(grads[i], coef)
			}
		}
		for i, p := range trainable {
			mom := st.moms[p.Name]
			buf := graph.Add(graph.MulScalar(mom.ValueGraph(g), set.GlobalMomentum), grads[i])
			mom.SetValueGraph(buf)
			vars[i].SetValueGraph(graph.Sub(values[i], graph.Mul(lr, buf)))
		}
		return loss
	}
	x, err := mlctx.NewExec(st.backend, st.ctx.Reuse(), fn)
	if err != nil {
		return nil, fmt.Errorf("ttt: build global step: %w", err)
	}
	st.global = x
	return x, nil
}
