package eval

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/model"
)

// tttScope holds test-time training's variables in its own context.
const tttScope = "/ttt"

// loraVar is one LoRA of test-time training: for every row (document) of
// a batch, A [rows, rank, in] and B [rows, out, rank], with AdamW moments.
type loraVar struct {
	target     model.AdapterTarget
	slot       int // virtual layer; -1 for the head
	in, out    int
	a, b       *mlctx.Variable
	ma, va     *mlctx.Variable // AdamW moments of A
	mb, vb     *mlctx.Variable // and of B
	scopeLabel string
}

// tttState is test-time training's context (a copy of the base weights,
// the adapters, the optimizers' state) and its compiled graphs, kept
// across calls with the same settings.
type tttState struct {
	backend backends.Backend
	cfg     model.Config
	set     TTT
	rows    int
	ctx     *mlctx.Context
	loras   []*loraVar
	byKey   map[[2]int]*loraVar
	step    map[scoreKind]*mlctx.Exec // score a chunk, then one AdamW step
	score   map[scoreKind]*mlctx.Exec // score only (no row trains)
	reset   *mlctx.Exec               // B and the moments to zero
	global  *mlctx.Exec               // one global SGD step
	moms    map[string]*mlctx.Variable
	draws   uint64 // A initialisations so far (each draws fresh values)
	initA   aInit  // nil: the seeded uniform draw
}

// aInit gives the values of a fresh A [rows, rank, in] of the LoRA at
// target and slot for draw number draw (from 1).
type aInit func(target model.AdapterTarget, slot int, draw uint64, rows, rank, in int) []float32

func (st *tttState) close() {
	for _, m := range []map[scoreKind]*mlctx.Exec{st.step, st.score} {
		for _, x := range m {
			x.Finalize()
		}
	}
	if st.reset != nil {
		st.reset.Finalize()
	}
	if st.global != nil {
		st.global.Finalize()
	}
}

// tttFor returns the test-time training state for set and rows, building
// it (and its variables) when the settings changed.
func (e *Evaluator) tttFor(set TTT, rows int) (*tttState, error) {
	if st := e.ttt; st != nil && st.set == set && st.rows == rows {
		return st, nil
	}
	if e.ttt != nil {
		e.ttt.close()
		e.ttt = nil
	}
	st := &tttState{backend: e.backend, cfg: e.cfg, set: set, rows: rows, ctx: mlctx.New(), byKey: map[[2]int]*loraVar{},
		step: map[scoreKind]*mlctx.Exec{}, score: map[scoreKind]*mlctx.Exec{}, moms: map[string]*mlctx.Variable{},
		initA: e.initA}
	w, err := e.Weights()
	if err != nil {
		return nil, fmt.Errorf("ttt: %w", err)
	}
	if err := model.LoadWeights(st.ctx, e.cfg, w); err != nil {
		return nil, fmt.Errorf("ttt: %w", err)
	}
	cfg := e.cfg
	d := cfg.ModelDim
	width := map[model.AdapterTarget]int{model.AdaptQ: d, model.AdaptK: cfg.KVDim(), model.AdaptV: cfg.KVDim(),
		model.AdaptO: d, model.AdaptMLP: d, model.AdaptHead: cfg.VocabSize}
	for _, t := range set.Targets() {
		slots := []int{-1}
		if t != model.AdaptHead {
			slots = slots[:0]
			for s := range cfg.NumVirtualLayers() {
				slots = append(slots, s)
			}
		}
		for _, s := range slots {
			label := fmt.Sprintf("%s_%d", t, s)
			if s < 0 {
				label = t.String()
			}
			l := &loraVar{target: t, slot: s, in: d, out: width[t], scopeLabel: label}
			mk := func(kind string, dims ...int) *mlctx.Variable {
				return st.ctx.InAbsPath(tttScope+"/"+label).Checked(false).
					VariableWithValue(kind, tensors.FromShape(shapeF32(dims...))).SetTrainable(false)
			}
			l.a, l.b = mk("A", rows, set.Rank, d), mk("B", rows, l.out, set.Rank)
			l.ma, l.va = mk("A_m", rows, set.Rank, d), mk("A_v", rows, set.Rank, d)
			l.mb, l.vb = mk("B_m", rows, l.out, set.Rank), mk("B_v", rows, l.out, set.Rank)
			st.loras = append(st.loras, l)
			st.byKey[[2]int{int(t), s}] = l
		}
	}
	e.ttt = st
	return st, nil
}

// loadBase copies the evaluator's weights into the TTT context (the
// global phase changes them there).
func (st *tttState) loadBase(e *Evaluator) error {
	w, err := e.Weights()
	if err != nil {
		return err
	}
	return model.LoadWeights(st.ctx, st.cfg, w)
}

// freshA draws new A matrices for every row, U(±1/sqrt(in)) as the
// record's BatchedLinearLoRA, from the settings' seed and a draw counter.
// Draws are numbered from 1 as the record constructs its adapters: the
// first, a short batch's own, the fresh one after each global phase (and,
// without WarmStartA, one per batch).
func (st *tttState) freshA() error {
	st.draws++
	for _, l := range st.loras {
		var data []float32
		if st.initA != nil {
			data = st.initA(l.target, l.slot, st.draws, st.rows, st.set.Rank, l.in)
		} else {
			h := fnv.New64a()
			h.Write([]byte(l.scopeLabel))
			rng := rand.New(rand.NewPCG(uint64(st.set.Seed), h.Sum64()^st.draws*0x9e3779b97f4a7c15))
			bound := 1 / math.Sqrt(float64(l.in))
			data = make([]float32, st.rows*st.set.Rank*l.in)
			for i := range data {
				data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		if err := l.a.SetValue(tensors.FromFlatDataAndDimensions(data, st.rows, st.set.Rank, l.in)); err != nil {
			return fmt.Errorf("ttt: set %s/A: %w", l.scopeLabel, err)
		}
	}
	return nil
}

// saveA and restoreA keep the A matrices across a batch that must not
// touch them (the record's short batch gets an adapter of its own).
func (st *tttState) saveA() ([][]float32, error) {
	out := make([][]float32, len(st.loras))
	for i, l := range st.loras {
		v, err := l.a.Value()
		if err != nil {
			return nil, err
		}
		if out[i], err = tensors.CopyFlatData[float32](v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (st *tttState) restoreA(saved [][]float32) error {
	for i, l := range st.loras {
		if err := l.a.SetValue(tensors.FromFlatDataAndDimensions(saved[i], st.rows, st.set.Rank, l.in)); err != nil {
			return err
		}
	}
	return nil
}

// resetBatch zeroes every B and the AdamW moments (a new batch starts from
// B = 0 with a fresh optimizer, A kept).
func (st *tttState) resetBatch() error {
	if st.reset == nil {
		x, err := mlctx.NewExec(st.backend, st.ctx.Reuse(), func(ctx *mlctx.Context, g *graph.Graph) *graph.Node {
			for _, l := range st.loras {
				for _, v := range []*mlctx.Variable{l.b, l.ma, l.va, l.mb, l.vb} {
					v.SetValueGraph(graph.ZerosLike(v.ValueGraph(g)))
				}
			}
			return graph.ScalarZero(g, dtypes.Float32)
		})
		if err != nil {
			return fmt.Errorf("ttt: build reset: %w", err)
		}
		st.reset = x
	}
	out, err := st.reset.Exec()
	if err != nil {
		return fmt.Errorf("ttt: reset adapters: %w", err)
	}
	for _, o := range out {
		o.FinalizeAll()
	}
	return nil
}

// adapter is the per-row LoRA of one graph:
//
//	Δ(x) = (x Aᵀ) Bᵀ · α/r    per row, x [B, T, in]
type adapter struct {
	st    *tttState
	g     *graph.Graph
	scale float64
	dtype dtypes.DType
}

func (a *adapter) Delta(target model.AdapterTarget, slot int, x *graph.Node, out int) *graph.Node {
	l := a.st.byKey[[2]int{int(target), slot}]
	if l == nil {
		return nil
	}
	A, B := l.a.ValueGraph(a.g), l.b.ValueGraph(a.g)
	if a.dtype != dtypes.Float32 {
		x, A, B = graph.ConvertDType(x, a.dtype), graph.ConvertDType(A, a.dtype), graph.ConvertDType(B, a.dtype)
	}
	d := model.MatMulNT(model.MatMulNT(x, A), B) // [B,T,r] then [B,T,out]
	return graph.MulScalar(graph.ConvertDType(d, dtypes.Float32), a.scale)
}

func (st *tttState) newAdapter(g *graph.Graph) *adapter {
	dt := dtypes.Float32
	if st.cfg.ComputeDType == "bfloat16" {
		dt = dtypes.BFloat16
	}
	return &adapter{st: st, g: g, scale: st.set.Alpha / float64(st.set.Rank), dtype: dt}
}

// scoreExec returns the score-only graph of kind k with the adapters.
func (st *tttState) scoreExec(k scoreKind) (*mlctx.Exec, error) {
	if x := st.score[k]; x != nil {
		return x, nil
	}
	x, err := mlctx.NewExec(st.backend, st.ctx.Reuse(), scoreGraph(st.cfg, k, func(_ *mlctx.Context, g *graph.Graph) model.Adapter {
		return st.newAdapter(g)
	}))
	if err != nil {
		return nil, fmt.Errorf("ttt: build score graph: %w", err)
	}
	x.SetMaxCache(-1)
	st.score[k] = x
	return x, nil
}

// stepExec returns the graph that scores a chunk and then takes one AdamW
// step of the adapters on it. Inputs: those of scoreGraph for kind k
// (without the probe), then the loss weights [B, T] float32 (1/chunk on
// the positions a row trains on), the row mask [B] float32 (1 for rows
// holding a document of the batch), and three float32 scalars: the weight
// decay factor 1 − lr·wd, the step size lr/(1 − β1^t) and sqrt(1 − β2^t);
// then the probe [B] (k.probe). Outputs: scoreGraph's, from the adapters
// before the step. AdamW as PyTorch's:
//
//	p ← p·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
//	p ← p − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + ε)
//
// applied only to the rows of the mask.
func (st *tttState) stepExec(k scoreKind) (*mlctx.Exec, error) {
	if x := st.step[k]; x != nil {
		return x, nil
	}
	set := st.set
	fn := func(ctx *mlctx.Context, in []*graph.Node) []*graph.Node {
		i := 2
		if k.isolated {
			i++
		}
		if k.hints {
			i++
		}
		weights, rowMask, decay, stepSize, bc2 := in[i], in[i+1], in[i+2], in[i+3], in[i+4]
		scoreIn := slices.Clone(in[:i])
		if k.probe {
			scoreIn = append(scoreIn, in[i+5])
		}
		outs := scoreGraph(st.cfg, k, func(_ *mlctx.Context, g *graph.Graph) model.Adapter {
			return st.newAdapter(g)
		})(ctx, scoreIn)
		g := weights.Graph()
		loss := graph.ReduceAllSum(graph.Mul(outs[0], weights))
		var params []*graph.Node
		var vars [][3]*mlctx.Variable
		for _, l := range st.loras {
			params = append(params, l.a.ValueGraph(g), l.b.ValueGraph(g))
			vars = append(vars, [3]*mlctx.Variable{l.a, l.ma, l.va}, [3]*mlctx.Variable{l.b, l.mb, l.vb})
		}
		grads := graph.Gradient(loss, params...)
		for j, gr := range grads {
			p, mv, vv := vars[j][0], vars[j][1], vars[j][2]
			rank := p.Shape().Rank()
			rm := graph.Reshape(rowMask, append([]int{st.rows}, make1s(rank-1)...)...)
			on := graph.BroadcastToDims(graph.GreaterThan(rm, graph.ScalarZero(g, dtypes.Float32)), p.Shape().Dimensions...)
			keep := func(newV, old *graph.Node) *graph.Node { return graph.Where(on, newV, old) }
			pOld, mOld, vOld := params[j], mv.ValueGraph(g), vv.ValueGraph(g)
			m := graph.Add(graph.MulScalar(mOld, set.Beta1), graph.MulScalar(gr, 1-set.Beta1))
			v := graph.Add(graph.MulScalar(vOld, set.Beta2), graph.MulScalar(graph.Mul(gr, gr), 1-set.Beta2))
			denom := graph.AddScalar(graph.Div(graph.Sqrt(v), bc2), set.Eps)
			pNew := graph.Sub(graph.Mul(pOld, decay), graph.Mul(stepSize, graph.Div(m, denom)))
			p.SetValueGraph(keep(pNew, pOld))
			mv.SetValueGraph(keep(m, mOld))
			vv.SetValueGraph(keep(v, vOld))
		}
		return outs
	}
	x, err := mlctx.NewExec(st.backend, st.ctx.Reuse(), fn)
	if err != nil {
		return nil, fmt.Errorf("ttt: build step graph: %w", err)
	}
	x.SetMaxCache(-1)
	st.step[k] = x
	return x, nil
}

func make1s(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// tttMode scores by score-first LoRA test-time training.
type tttMode struct {
	e      *Evaluator
	opts   Options
	timing *Result
	// trainBeforeScore breaks the mode on purpose (the audit's tests
	// only): each chunk is trained on before it is scored.
	trainBeforeScore bool
}

// tttBatch is one batch of documents adapted side by side.
type tttBatch struct {
	docs  []Doc
	index int // the record order's batch index (ascending length), for the global phase's selection
	// phaseAfter, when set, lists the documents (in order) the global
	// phase trains on once this batch is scored.
	phaseAfter []Doc
	// ownA: the batch must not change the warm A matrices (the record
	// gives its one short batch an adapter of its own).
	ownA bool
}

// planTTT orders the documents into batches and places the global phases.
//
// Stream order: batches of rows consecutive documents, cut at the phase
// boundaries; after the batch that completes boundary k (= PrefixDocs·k/
// Phases documents) the global phase trains on all documents before it.
// A phase after which no document is left to score is skipped.
//
// Record order (eval_val_ttt_phased): documents stably sorted by length,
// cut into batches of rows, processed in order of their longest document,
// longest first; once the completed count reaches a boundary, the global
// phase trains on the first boundary documents by (batch index, position).
func planTTT(docs []Doc, set TTT, rows int) []tttBatch {
	prefix := min(set.PrefixDocs, len(docs))
	var bounds []int
	if prefix > 0 {
		for k := range set.Phases {
			bounds = append(bounds, prefix*(k+1)/set.Phases)
		}
	}
	var out []tttBatch
	if set.order() == StreamOrder {
		next := 0 // index into bounds
		for i := 0; i < len(docs); {
			for next < len(bounds) && bounds[next] <= i {
				next++
			}
			end := min(i+rows, len(docs))
			if next < len(bounds) {
				end = min(end, bounds[next])
			}
			b := tttBatch{docs: docs[i:end], index: len(out)}
			if next < len(bounds) && end == bounds[next] && end < len(docs) {
				b.phaseAfter = docs[:end]
			}
			out = append(out, b)
			i = end
		}
		return out
	}
	sorted := slices.Clone(docs)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].Len < sorted[b].Len })
	var batches []tttBatch
	for i := 0; i < len(sorted); i += rows {
		batches = append(batches, tttBatch{docs: sorted[i:min(i+rows, len(sorted))], index: len(batches)})
	}
	maxLen := func(b tttBatch) int {
		m := 0
		for _, d := range b.docs {
			m = max(m, d.Len)
		}
		return m
	}
	sort.SliceStable(batches, func(a, b int) bool { return maxLen(batches[a]) > maxLen(batches[b]) })
	var scored []struct {
		batch, pos int
		doc        Doc
	}
	phase := 0
	for bi := range batches {
		b := &batches[bi]
		b.ownA = len(b.docs) < rows
		for p, d := range b.docs {
			scored = append(scored, struct {
				batch, pos int
				doc        Doc
			}{b.index, p, d})
		}
		if phase < len(bounds) && len(scored) >= bounds[phase] {
			sel := slices.Clone(scored)
			sort.SliceStable(sel, func(x, y int) bool {
				if sel[x].batch != sel[y].batch {
					return sel[x].batch < sel[y].batch
				}
				return sel[x].pos < sel[y].pos
			})
			sel = sel[:bounds[phase]]
			if bi < len(batches)-1 {
				for _, s := range sel {
					b.phaseAfter = append(b.phaseAfter, s.doc)
				}
			}
			phase++
		}
	}
	return batches
}

// chunkWindow is the window of chunk ci of a document with predLen
// targets: the row holds the document's inputs [start, start+len), and the
// chunk's targets are row positions [offset, offset+count).
//
// Stream order fixes the window by the chunk index alone: it ends at
// (ci+1)·chunk (or the document's end) and starts seqLen before that, so a
// target's context never depends on where its document ends. The record
// ends a document's last chunk's window at the document's end and starts
// it seqLen before, which gives that chunk up to chunk−1 more tokens of
// context, chosen by the document's length (a token after the target).
func chunkWindow(ci, predLen, chunk, seqLen int, record bool) (start, length, offset, count int) {
	nc := (predLen + chunk - 1) / chunk
	nominal := (ci + 1) * chunk
	end := min(nominal, predLen)
	start = max(0, nominal-seqLen)
	if record && ci == nc-1 {
		end = predLen
		start = max(0, end-seqLen)
	}
	return start, end - start, ci*chunk - start, end - ci*chunk
}

// rowBucket is the row length compiled for a chunk whose windows need up
// to need tokens: the smallest chunk·2^k at least need, capped at seqLen,
// so that a document of any length runs through a handful of shapes.
func rowBucket(need, chunk, seqLen int) int {
	b := chunk
	for b < need {
		b *= 2
	}
	return min(b, seqLen)
}

func (m *tttMode) Score(ctx context.Context, tokens []uint16, rec Recorder) (err error) {
	defer recoverGraphPanic("ttt", &err)
	opts, set := m.opts, *m.opts.TTT
	hints, err := hintsFor(tokens, opts, m.timing)
	if err != nil {
		return err
	}
	docs := Documents(tokens, opts.bos())
	if len(docs) == 0 {
		return fmt.Errorf("ttt: the stream holds no document")
	}
	rows := min(set.BatchDocs, len(docs))
	st, err := m.e.tttFor(set, rows)
	if err != nil {
		return err
	}
	if err := st.loadBase(m.e); err != nil {
		return fmt.Errorf("ttt: %w", err)
	}
	st.draws = 0
	if err := st.freshA(); err != nil {
		return err
	}
	probing := false
	for p := 1; p < len(tokens) && !probing; p++ {
		probing = rec.Probe(p)
	}
	run := &tttRun{m: m, st: st, tokens: tokens, hints: hints, rec: rec, probing: probing,
		meter: progress.New(opts.Progress, "ttt", "targets", int64(len(tokens)-1))}
	for _, b := range planTTT(docs, set, rows) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ttt: %w", err)
		}
		var saved [][]float32
		if b.ownA {
			if saved, err = st.saveA(); err != nil {
				return fmt.Errorf("ttt: %w", err)
			}
			if err := st.freshA(); err != nil {
				return err
			}
		} else if !set.WarmStartA {
			if err := st.freshA(); err != nil {
				return err
			}
		}
		if err := st.resetBatch(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := run.batch(b.docs); err != nil {
			return err
		}
		m.timing.addPhase("ttt chunks", time.Since(t0))
		if saved != nil {
			if err := st.restoreA(saved); err != nil {
				return fmt.Errorf("ttt: %w", err)
			}
		}
		if b.phaseAfter != nil {
			t1 := time.Now()
			if err := st.globalPhase(ctx, tokens, b.phaseAfter, opts); err != nil {
				return err
			}
			m.timing.addPhase("ttt global sgd", time.Since(t1))
			if err := st.freshA(); err != nil { // the record starts a new adapter
				return err
			}
		}
	}
	run.meter.Done()
	return nil
}

// tttRun holds one Score call's state.
type tttRun struct {
	m       *tttMode
	st      *tttState
	tokens  []uint16
	hints   *Hints
	rec     Recorder
	probing bool
	meter   *progress.Meter
}

// batch scores and adapts one batch of documents chunk by chunk.
func (r *tttRun) batch(docs []Doc) error {
	st, set, opts := r.st, r.st.set, r.m.opts
	rows, seq, chunk := st.rows, opts.SeqLen, set.Chunk
	record := set.order() == RecordOrder
	vocab := st.cfg.VocabSize
	nc := make([]int, len(docs))
	maxNC := 0
	for i, d := range docs {
		nc[i] = (d.Targets() + chunk - 1) / chunk
		maxNC = max(maxNC, nc[i])
	}
	kind := scoreKind{hints: r.hints != nil, probe: r.probing}
	steps := 0
	for ci := range maxNC {
		T := rowBucket(min((ci+1)*chunk, seq), chunk, seq)
		n := rows * T
		x, y := make([]int32, n), make([]int32, n)
		var hint []int32
		if kind.hints {
			hint = make([]int32, n)
		}
		weights := make([]float32, n)
		rowMask := make([]float32, rows)
		probe := make([]int32, rows)
		probed := make([]int, rows)
		type span struct{ base, offset, count int } // stream position of row position 0's target minus 1
		spans := make([]span, rows)
		train := false
		active := 0
		for b, d := range docs {
			rowMask[b] = 1
			if ci >= nc[b] {
				continue
			}
			active++
			start, length, offset, count := chunkWindow(ci, d.Targets(), chunk, seq, record)
			base := d.Start + start
			for c := range length {
				x[b*T+c] = int32(r.tokens[base+c])
				y[b*T+c] = int32(r.tokens[base+c+1])
				if hint != nil {
					hint[b*T+c] = int32(r.hints.Tok[base+c+1])
				}
			}
			spans[b] = span{base, offset, count}
			if ci < nc[b]-1 {
				train = true
				for c := offset; c < offset+chunk; c++ {
					weights[b*T+c] = 1 / float32(chunk)
				}
			}
			if r.probing {
				for c := offset; c < offset+count; c++ {
					if pos := base + c + 1; r.rec.Probe(pos) {
						if probed[b] != 0 {
							return fmt.Errorf("ttt: probed positions %d and %d fall in one chunk", probed[b], pos)
						}
						probe[b], probed[b] = int32(c), pos
					}
				}
			}
		}
		var stepIn []any
		if train {
			steps++
			t := float64(steps)
			stepIn = []any{float32(1 - set.LR*set.WeightDecay), float32(set.LR / (1 - math.Pow(set.Beta1, t))), float32(math.Sqrt(1 - math.Pow(set.Beta2, t)))}
		}
		// args are the inputs of the step graph (train) or the score graph.
		args := func(train bool) []any {
			a := []any{tensors.FromFlatDataAndDimensions(x, rows, T), tensors.FromFlatDataAndDimensions(y, rows, T)}
			if hint != nil {
				a = append(a, tensors.FromFlatDataAndDimensions(hint, rows, T))
			}
			if train {
				a = append(a, tensors.FromFlatDataAndDimensions(weights, rows, T), tensors.FromFlatDataAndDimensions(rowMask, rows))
				a = append(a, stepIn...)
			}
			if r.probing {
				a = append(a, tensors.FromFlatDataAndDimensions(probe, rows))
			}
			return a
		}
		var outs []*tensors.Tensor
		switch {
		case train && r.m.trainBeforeScore:
			// The deliberately broken order of the audit's tests: the step
			// sees the chunk, then the chunk is scored.
			if err := r.run(kind, true, args(true)); err != nil {
				return fmt.Errorf("ttt: chunk %d: %w", ci, err)
			}
			fallthrough
		case !train:
			exec, err := st.scoreExec(kind)
			if err != nil {
				return err
			}
			if outs, err = exec.Exec(args(false)...); err != nil {
				return fmt.Errorf("ttt: chunk %d: %w", ci, err)
			}
		default:
			exec, err := st.stepExec(kind)
			if err != nil {
				return err
			}
			if outs, err = exec.Exec(args(true)...); err != nil {
				return fmt.Errorf("ttt: chunk %d: %w", ci, err)
			}
		}
		got, err := readOutputs(outs, n, kind, rows*vocab)
		if err != nil {
			return err
		}
		scored := 0
		for b := range docs {
			if ci >= nc[b] {
				continue
			}
			sp := spans[b]
			for c := sp.offset; c < sp.offset+sp.count; c++ {
				pos := sp.base + c + 1
				at := b*T + c
				nats := float64(got.nats[at])
				var hn float64
				gated := r.hints != nil && r.hints.Gate[pos]
				if gated {
					hn = float64(got.hintNats[at])
					nats = tiltNats(nats, hn, r.tokens[pos] == r.hints.Tok[pos], r.hints.Boost)
				}
				r.rec.Score(pos, nats)
				if probed[b] == pos {
					logp := float64s(got.probe[b*vocab : (b+1)*vocab])
					if gated {
						tiltDistribution(logp, int(r.hints.Tok[pos]), hn, r.hints.Boost)
					}
					r.rec.Distribution(pos, logp)
				}
			}
			scored += sp.count
		}
		r.m.timing.Windows += active
		r.meter.Add(int64(scored))
	}
	return nil
}

// run executes the step (train) or score graph of kind k and discards its
// outputs.
func (r *tttRun) run(k scoreKind, train bool, args []any) error {
	exec, err := r.st.scoreExec(k)
	if train {
		exec, err = r.st.stepExec(k)
	}
	if err != nil {
		return err
	}
	outs, err := exec.Exec(args...)
	for _, o := range outs {
		o.FinalizeAll()
	}
	return err
}

func shapeF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
