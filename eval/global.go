package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/data"
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
// Each rank's step is the record's one packed row: its sequences back to
// back, x = flat[s, s+L) and y = flat[s+1, s+L+1), with document-isolated
// attention over the segments the record's _build_cu_seqlens cuts (at every
// BOS of x and every seqLen tokens after one; data.SegmentIDs). golf's dense
// attention costs the square of a row's length, so a row longer than
// 2·seqLen is split (globalRows) at segment boundaries into rows of
// 2·seqLen; every split piece is preceded by the token before it, weighted
// 0 and isolated, which the SmearGate mixes into the piece's first token as
// it does in the packed row. Attention only sees positions' differences
// (RoPE) and no segment spans two pieces, so the layout changes no value.
// A rank with no sequence left in a step adds nothing to that step's
// average (the record's ranks would wait for each other: its settings never
// do this).
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
				rows := globalRows{width: min(min(batch, per)*seq, 2*seq)}
				for r := range ranks {
					lo, hi := n*r/ranks, n*(r+1)/ranks
					a, b := lo+bs, min(lo+bs+batch, hi)
					if a < b {
						rows.addRank(flat, start+a*seq, (b-a)*seq, seq, opts.bos(), float32(1/(float64(ranks)*float64((b-a)*seq))))
					}
				}
				if rows.n == 0 {
					continue
				}
				rows.pad(ranks)
				count, width := rows.n, rows.width
				outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(rows.x, count, width), tensors.FromFlatDataAndDimensions(rows.y, count, width),
					tensors.FromFlatDataAndDimensions(rows.seg, count, width), tensors.FromFlatDataAndDimensions(rows.weight, count, width), float32(lr))
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

// globalRows is one global SGD step's batch: rows of width tokens (inputs
// x, targets y, segment ids seg, int32, and each position's loss weight),
// n of them, flattened.
type globalRows struct {
	x, y, seg []int32
	weight    []float32
	width, n  int
}

// isolated is the segment id of the positions that only carry a token for
// the SmearGate, and of the padding: no scored position attends to them.
const isolated = -1

// addRank appends one rank's packed row, x = flat[s, s+l) and y one token
// on, every position weighted w: as one row when l fits the width, else
// split at segment boundaries into rows that each start with the token
// before their first segment (weight 0, isolated) and are filled in order
// while whole segments fit.
func (g *globalRows) addRank(flat []uint16, s, l, seq, bos int, w float32) {
	var starts []int
	for i := range l {
		if int(flat[s+i]) == bos {
			starts = append(starts, i)
		}
	}
	ids := make([]int32, l)
	data.SegmentIDs(ids, starts, seq, 0, 0)
	used := g.width // positions used in the current row: none is open
	put := func(p int, id int32, w float32) {
		g.x = append(g.x, int32(flat[s+p]))
		g.y = append(g.y, int32(flat[s+p+1]))
		g.seg = append(g.seg, id)
		g.weight = append(g.weight, w)
		used++
	}
	for a := 0; a < l; {
		e := a + 1
		for e < l && ids[e] == ids[a] {
			e++
		}
		if used+e-a > g.width {
			g.fill(used)
			used, g.n = 0, g.n+1
			if a > 0 {
				put(a-1, isolated, 0)
			}
		}
		for p := a; p < e; p++ {
			put(p, ids[p], w)
		}
		a = e
	}
	g.fill(used)
}

// fill pads the current row from used positions to the width.
func (g *globalRows) fill(used int) {
	for ; used < g.width; used++ {
		g.x, g.y, g.seg, g.weight = append(g.x, 0), append(g.y, 0), append(g.seg, isolated), append(g.weight, 0)
	}
}

// pad adds empty rows up to a multiple of m, so that steps compile to few
// shapes.
func (g *globalRows) pad(m int) {
	for g.n%max(m, 1) != 0 {
		g.fill(0)
		g.n++
	}
}

// globalExec returns the graph of one global SGD step. Inputs: inputs,
// targets and segment ids [R, T] int32, each position's loss weight [R, T]
// and the learning rate (float32); the loss is Σ_rt weight_rt nats_rt.
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
		loss := graph.ReduceAllSum(graph.Mul(nats, weight))
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
