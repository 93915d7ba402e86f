package eval

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// microTTT is test-time training at a size the micro model learns from.
func microTTT() TTT {
	t := RecordTTT()
	t.Rank, t.Alpha, t.Chunk, t.BatchDocs = 2, 4, 4, 4
	t.LR = 0.01
	t.PrefixDocs = 0
	return t
}

func TestChunkWindowByHand(t *testing.T) {
	for _, c := range []struct {
		ci, pred, chunk, seq int
		record               bool
		start, length, off   int
		count                int
	}{
		{0, 10, 4, 8, false, 0, 4, 0, 4},   // first chunk: targets 0..3
		{1, 10, 4, 8, false, 0, 8, 4, 4},   // window [0, 8)
		{2, 10, 4, 8, false, 4, 6, 4, 2},   // nominal end 12 -> start 4; the doc ends at 10
		{2, 10, 4, 8, true, 2, 8, 6, 2},    // the record ends the window at the doc's end: start 2
		{1, 10, 4, 8, true, 0, 8, 4, 4},    // not the last chunk: as stream order
		{5, 100, 4, 8, false, 16, 8, 4, 4}, // deep in a long doc: the last 8 tokens
	} {
		s, l, o, n := chunkWindow(c.ci, c.pred, c.chunk, c.seq, c.record)
		if s != c.start || l != c.length || o != c.off || n != c.count {
			t.Errorf("%+v: window start %d len %d, chunk at %d count %d", c, s, l, o, n)
		}
	}
	for _, c := range [][4]int{{4, 4, 32, 4}, {5, 4, 32, 8}, {17, 4, 32, 32}, {30, 48, 2560, 48}, {2000, 48, 2560, 2560}, {1537, 48, 2560, 2560}, {1536, 48, 2560, 1536}} {
		if got := rowBucket(c[0], c[1], c[2]); got != c[3] {
			t.Errorf("rowBucket(%d, chunk %d, seq %d) = %d, want %d", c[0], c[1], c[2], got, c[3])
		}
	}
}

func docLens(bs []tttBatch) [][]int {
	var out [][]int
	for _, b := range bs {
		var l []int
		for _, d := range b.docs {
			l = append(l, d.Len)
		}
		out = append(out, l)
	}
	return out
}

func TestPlanTTTStreamOrder(t *testing.T) {
	var docs []Doc
	at := 0
	for _, l := range []int{5, 9, 3, 7, 4, 6, 8} {
		docs = append(docs, Doc{Start: at, Len: l})
		at += l - 1
	}
	set := RecordTTT()
	set.Phases, set.PrefixDocs = 2, 5 // boundaries after 2 and 5 documents
	plan := planTTT(docs, set, 3)
	want := [][]int{{5, 9}, {3, 7, 4}, {6, 8}}
	if got := docLens(plan); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v (cut at the phase boundaries 2 and 5)", got, want)
	}
	if len(plan[0].phaseAfter) != 2 || len(plan[1].phaseAfter) != 5 || plan[2].phaseAfter != nil {
		t.Fatalf("phases after batches: %d, %d, %v; want the first 2, then the first 5 documents, then none",
			len(plan[0].phaseAfter), len(plan[1].phaseAfter), plan[2].phaseAfter)
	}
	if plan[1].phaseAfter[4] != docs[4] {
		t.Errorf("the second phase trains on %v, want the stream's first five documents", plan[1].phaseAfter)
	}
	// A phase with nothing left to score is skipped.
	set.Phases, set.PrefixDocs = 1, 100
	for _, b := range planTTT(docs, set, 3) {
		if b.phaseAfter != nil {
			t.Fatalf("a global phase after all documents are scored: %+v", b)
		}
	}
}

// The record's order (eval_val_ttt_phased): length-sorted batches, longest
// first; the phase trains on the first scored documents by (ascending
// batch index, position) once enough are done; the one short batch gets
// an adapter of its own.
func TestPlanTTTRecordOrder(t *testing.T) {
	var docs []Doc
	at := 0
	for _, l := range []int{5, 9, 3, 7, 4, 6, 8} {
		docs = append(docs, Doc{Start: at, Len: l})
		at += l - 1
	}
	set := RecordTTT()
	set.Order, set.Phases, set.PrefixDocs = RecordOrder, 1, 3
	plan := planTTT(docs, set, 3)
	// Sorted: 3 4 5 | 6 7 8 | 9 -> batches by longest first: [9], [6 7 8], [3 4 5].
	want := [][]int{{9}, {6, 7, 8}, {3, 4, 5}}
	if got := docLens(plan); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	if !plan[0].ownA || plan[1].ownA {
		t.Errorf("short batch ownA %v, full batch %v", plan[0].ownA, plan[1].ownA)
	}
	// After the second batch 4 documents are done (>= 3): the first three
	// by (batch index, position) are the 6, 7, 8 (index 1) before the 9
	// (index 2).
	if plan[0].phaseAfter != nil || len(plan[1].phaseAfter) != 3 {
		t.Fatalf("phase after %v / %v", plan[0].phaseAfter, plan[1].phaseAfter)
	}
	var got []int
	for _, d := range plan[1].phaseAfter {
		got = append(got, d.Len)
	}
	if !slices.Equal(got, []int{6, 7, 8}) {
		t.Errorf("the phase trains on documents of lengths %v, want [6 7 8]", got)
	}
}

// constAdapter is a LoRA with fixed per-row matrices, built from the
// values test-time training leaves, to recompute its scores independently.
type constAdapter struct {
	g     *graph.Graph
	a, b  map[[2]int]*tensors.Tensor
	scale float64
}

func (c *constAdapter) Delta(target model.AdapterTarget, slot int, x *graph.Node, out int) *graph.Node {
	k := [2]int{int(target), slot}
	if c.a[k] == nil {
		return nil
	}
	A, B := graph.Const(c.g, c.a[k]), graph.Const(c.g, c.b[k])
	return graph.MulScalar(model.MatMulNT(model.MatMulNT(x, A), B), c.scale)
}

// One document of two chunks, hand-checked: the first chunk is scored by
// the base model (B = 0); the AdamW step that follows leaves every A at
// A0·(1 − lr·wd) (its gradient is 0 while B = 0) and every B at
// −lr·g/(|g| + ε) (β1 = 0: the first step's m̂/sqrt(v̂) is sign(g)); the
// second chunk is scored with those matrices, as an independent forward
// pass with them as constants gives.
func TestTTTFirstStepByHand(t *testing.T) {
	cfg := microRecordConfig()
	tokens := []uint16{1, 5, 9, 13, 7, 22, 30, 11, 4}
	w := randomWeights(t, cfg, 11)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	set := microTTT()
	set.K = true
	res, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 8, TTT: &set})
	if err != nil {
		t.Fatal(err)
	}
	base := referenceLosses(t, cfg, w, tokens[:8], tokens[1:9], nil)
	for p := 1; p <= 4; p++ {
		if res.Nats()[p] != base[p-1] {
			t.Errorf("chunk 0, position %d: %v, base model %v (B = 0 must not change it)", p, res.Nats()[p], base[p-1])
		}
	}
	st := e.ttt
	after := map[[2]int]*tensors.Tensor{}
	bs := map[[2]int]*tensors.Tensor{}
	nonzero := 0
	for _, l := range st.loras {
		k := [2]int{int(l.target), l.slot}
		a, _ := l.a.Value()
		b, _ := l.b.Value()
		ac, err := a.LocalClone()
		if err != nil {
			t.Fatal(err)
		}
		bc, err := b.LocalClone()
		if err != nil {
			t.Fatal(err)
		}
		after[k], bs[k] = ac, bc
		bv := tensors.MustCopyFlatData[float32](b)
		for _, x := range bv {
			if x != 0 {
				nonzero++
				if math.Abs(math.Abs(float64(x))-set.LR) > 1e-6 {
					t.Fatalf("%s: B entry %v, want ±lr = %v after one step from 0", l.scopeLabel, x, set.LR)
				}
			}
		}
	}
	if nonzero == 0 {
		t.Fatal("no B moved")
	}
	st.draws = 0
	if err := st.freshA(); err != nil {
		t.Fatal(err)
	}
	decay := float32(1 - set.LR*set.WeightDecay)
	for _, l := range st.loras {
		a0, _ := l.a.Value()
		v0 := tensors.MustCopyFlatData[float32](a0)
		v1 := tensors.MustCopyFlatData[float32](after[[2]int{int(l.target), l.slot}])
		for i := range v0 {
			if v1[i] != v0[i]*decay {
				t.Fatalf("%s: A[%d] = %v after the step, want A0·(1−lr·wd) = %v", l.scopeLabel, i, v1[i], v0[i]*decay)
			}
		}
	}
	// The second chunk's scores from the adapted matrices as constants.
	ctx := mlctx.New()
	if err := model.LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	exec, err := mlctx.NewExec(backend(t), ctx, func(ctx *mlctx.Context, x, y *graph.Node) *graph.Node {
		ad := &constAdapter{g: x.Graph(), a: after, b: bs, scale: set.Alpha / float64(set.Rank)}
		return model.TokenLosses(ctx, cfg, x, y, model.Options{Adapter: ad})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	in, tg := make([]int32, 8), make([]int32, 8)
	for i := range 8 {
		in[i], tg[i] = int32(tokens[i]), int32(tokens[i+1])
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, 1, 8), tensors.FromFlatDataAndDimensions(tg, 1, 8))
	if err != nil {
		t.Fatal(err)
	}
	ref := float64s(tensors.MustCopyFlatData[float32](out[0]))
	for p := 5; p <= 8; p++ {
		if math.Abs(res.Nats()[p]-ref[p-1]) > 1e-5 {
			t.Errorf("chunk 1, position %d: %v, forward with the adapted LoRA %v", p, res.Nats()[p], ref[p-1])
		}
		if res.Nats()[p] == base[p-1] {
			t.Errorf("chunk 1, position %d: the adapter changed nothing", p)
		}
	}
}

// The global phase trains every base weight but the frozen softcaps on the
// documents already scored, the documents after it are scored by the
// updated model, and the evaluator's own weights stay as they were.
func TestTTTGlobalPhase(t *testing.T) {
	cfg := microRecordConfig()
	tokens := stream(120, cfg.VocabSize, 20, 40, 12)
	docs := Documents(tokens, 1)
	if len(docs) < 3 {
		t.Fatalf("%d documents", len(docs))
	}
	w := randomWeights(t, cfg, 13)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	set := microTTT()
	set.BatchDocs = 1
	set.LR = 0 // adapters inert: only the global phase changes scores
	noPhase := set
	set.PrefixDocs, set.Phases, set.GlobalChunkTokens, set.GlobalLR = 1, 1, 8, 0.05
	opts := Options{SeqLen: 8}
	opts.TTT = &noPhase
	before, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.TTT = &set
	after, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	first := docs[0]
	for p := first.FirstTarget(); p < first.Start+first.Len; p++ {
		if after.Nats()[p] != before.Nats()[p] {
			t.Fatalf("position %d of the first document changed (%v -> %v) though it is scored before the phase", p, before.Nats()[p], after.Nats()[p])
		}
	}
	changed := 0
	for p := docs[1].FirstTarget(); p < len(tokens); p++ {
		if after.Nats()[p] != before.Nats()[p] {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("the global phase changed no later score")
	}
	var phase bool
	for _, ph := range after.Phases {
		phase = phase || (ph.Name == "ttt global sgd" && ph.Duration > 0)
	}
	if !phase {
		t.Errorf("no global phase timed: %+v", after.Phases)
	}
	tuned, err := model.WeightsFromContext(e.ttt.ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.Weights()
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range tuned {
		same := slices.Equal(p.Data, own[i].Data)
		if p.Class == model.Frozen && !same {
			t.Errorf("frozen %s was updated", p.Name)
		}
		if p.Class != model.Frozen && same {
			t.Errorf("trainable %s was not updated by the global phase", p.Name)
		}
		if !slices.Equal(own[i].Data, w[i].Data) {
			t.Errorf("the evaluator's own %s changed", p.Name)
		}
	}
}

// On documents that repeat a pattern, adapting to each document's earlier
// chunks lowers the loss of its later ones.
func TestTTTLearnsRepeatedDocuments(t *testing.T) {
	cfg := microConfig()
	pattern := []uint16{7, 19, 3, 33, 12, 40, 8, 26}
	var tokens []uint16
	for d := range 4 {
		tokens = append(tokens, 1)
		for range 12 {
			for _, p := range pattern {
				tokens = append(tokens, uint16((int(p)+5*d)%46+2))
			}
		}
	}
	e := newEval(t, cfg, 14)
	set := microTTT()
	set.LR = 0.003
	base, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, DocIsolated: true, Stride: 4})
	if err != nil {
		t.Fatal(err)
	}
	ttt, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, TTT: &set})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("val_loss base %.4f, ttt %.4f", base.ValLoss, ttt.ValLoss)
	if ttt.ValLoss > base.ValLoss-0.1 {
		t.Errorf("TTT val_loss %v, base %v: no gain on repeated documents", ttt.ValLoss, base.ValLoss)
	}
}
