package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// microRecordConfig switches on every technique of the record stack (and
// the ablation-only ones) at a size small enough for finite differences.
func microRecordConfig() Config {
	c := microConfig()
	c.NumLayers = 5
	c.recordTechniques()
	c.RopeDims = 2
	c.GateWindow = 6
	c.XSALastN = 3
	c.NumLoops, c.LoopStart, c.LoopEnd = 1, 1, 2
	c.ParallelStartLayer = 3
	c.SmearBOSFix = true
	c.UntiedHead = true
	c.BigramVocab, c.BigramDim = 11, 6
	c.VEDim, c.VELayers = 4, []int{1, 4}
	return c
}

func TestRecordPresetParams(t *testing.T) {
	cfg, err := Preset("record")
	if err != nil {
		t.Fatal(err)
	}
	// record-stack.md §1: matrices 35,913,728 + 11 blocks x 2,152 + skips
	// 8,192 + lanes 66 + smear 13 + softcaps 2.
	if got := cfg.NumParams(); got != 35_945_673 {
		t.Errorf("record preset has %d parameters, PR #2135 logs 35,945,673", got)
	}
	const d, kv, f, v, l = 512, 256, 2048, 8192, 11
	matrices := v*d + l*(2*d*d+2*kv*d+2*f*d)
	if matrices != 35_913_728 {
		t.Fatalf("hand count of matrices %d", matrices)
	}
	if want := matrices + l*(512+512+2*512+8+8*12) + 2*8*512 + l*6 + 13 + 2; cfg.NumParams() != want {
		t.Errorf("record parameters %d, hand count %d", cfg.NumParams(), want)
	}
	enc, dec := cfg.LayerOrder(true)
	if !slices.Equal(enc, []int{0, 1, 2, 3, 4, 5, 3, 4}) || !slices.Equal(dec, []int{5, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("looped order %v / %v, the record's [0 1 2 3 4 5 3 4] / [5 3 4 5 6 7 8 9 10]", enc, dec)
	}
	enc, dec = cfg.LayerOrder(false)
	if !slices.Equal(enc, []int{0, 1, 2, 3, 4}) || !slices.Equal(dec, []int{5, 6, 7, 8, 9, 10}) {
		t.Errorf("unlooped order %v / %v", enc, dec)
	}
	if cfg.NumSkips() != 8 || cfg.NumVirtualLayers() != 17 {
		t.Errorf("skips %d (want 8), virtual layers %d (want 17)", cfg.NumSkips(), cfg.NumVirtualLayers())
	}
	classes := map[string]Class{
		"tok_emb": Embedding, "block_10/attn/c_v": Attention, "block_0/mlp/fc": MLP, "block_3/attn/gate": Control,
		"skip_gates": Control, "smear/gate": Control, "parallel_post_lambdas": Control, "softcap_pos": Frozen,
	}
	for name, c := range classes {
		if p, ok := cfg.Param(name); !ok || p.Class != c {
			t.Errorf("%s: class %v (found %v), want %v", name, p.Class, ok, c)
		}
	}
	if p, _ := cfg.Param("block_2/attn/c_q"); p.Init.Kind != InitOrthogonal {
		t.Errorf("record c_q init %v, want orthogonal", p.Init)
	}
	if p, _ := cfg.Param("block_2/mlp/proj"); p.Init.Kind != InitZeros {
		t.Errorf("record mlp proj init %v, want zeros", p.Init)
	}
}

func TestPresetsBuildTheirParams(t *testing.T) {
	for _, name := range []string{"tiny", "tiny-record"} {
		cfg, _ := Preset(name)
		cfg.SeqLen = 8
		ctx := mlctx.New()
		_, err := mlctx.ExecOnce(backend(t), ctx, func(ctx *mlctx.Context, in *graph.Node) *graph.Node {
			return TokenLosses(ctx, cfg, in, in, Options{})
		}, tensors.FromFlatDataAndDimensions([]int32{1, 2, 3, 4, 5, 6, 7, 8}, 1, 8))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var names []string
		for v := range ctx.IterVariables() {
			names = append(names, strings.TrimPrefix(v.ScopeAndName(), "/"))
		}
		var want []string
		for _, p := range cfg.Params() {
			want = append(want, p.Name)
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("%s: graph variables %v\nregistry %v", name, names, want)
		}
	}
}

func TestValidateTechniques(t *testing.T) {
	if err := microRecordConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.LoopEnd = 9 }, "loop range"},
		{func(c *Config) { c.LoopStart, c.LoopEnd = 3, 2 }, "loop range"},
		{func(c *Config) { c.NumLoops = 0 }, "num_loops"},
		{func(c *Config) { c.ParallelStartLayer, c.LoopStart, c.LoopEnd = 4, 3, 4 }, "parallel layers must come last"},
		{func(c *Config) { c.XSALastN = 6 }, "xsa_last_n"},
		{func(c *Config) { c.RopeDims = 3 }, "rope_dims"},
		{func(c *Config) { c.GateWindow = 0 }, "gate_window"},
		{func(c *Config) { c.Activation = "gelu" }, "activation"},
		{func(c *Config) { c.AttnGate = "dense" }, "attn_gate"},
		{func(c *Config) { c.BigramDim = 0 }, "bigram"},
		{func(c *Config) { c.VELayers = []int{1, 1} }, "ve_layers"},
		{func(c *Config) { c.SmearGate = false }, "smear_bos_fix needs smear_gate"},
	}
	for _, b := range bad {
		cfg := microRecordConfig()
		b.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("want an error containing %q, got %v", b.want, err)
		}
	}
}

// lossExec compiles the mean loss of cfg once; run sets the weights and
// evaluates it, so finite differences do not recompile.
type lossExec struct {
	t    testing.TB
	cfg  Config
	ctx  *mlctx.Context
	exec *mlctx.Exec
	opts Options
}

func newLossExec(t testing.TB, cfg Config, w Weights, opts Options) *lossExec {
	t.Helper()
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	exec, err := mlctx.NewExec(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) *graph.Node {
		return graph.ReduceAllMean(TokenLosses(ctx, cfg, in, tg, opts))
	})
	if err != nil {
		t.Fatal(err)
	}
	return &lossExec{t: t, cfg: cfg, ctx: ctx, exec: exec, opts: opts}
}

func (e *lossExec) run(w Weights, in, tg []int32, b, seq int) float64 {
	e.t.Helper()
	if err := LoadWeights(e.ctx, e.cfg, w); err != nil {
		e.t.Fatal(err)
	}
	out, err := e.exec.Exec(tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq))
	if err != nil {
		e.t.Fatal(err)
	}
	return float64(tensors.MustCopyFlatData[float32](out[0])[0])
}

// TestTechniqueGradients checks every parameter's gradient in the full
// technique stack against central finite differences of the loss, on two
// elements each: a wrong gradient rule anywhere (slices, lanes, gates, XSA,
// loops, the asymmetric softcap) fails here.
func TestTechniqueGradients(t *testing.T) {
	cfg := microRecordConfig()
	w := randomWeights(cfg, 9)
	for i := range w {
		if w[i].Name == "softcap_pos" || w[i].Name == "softcap_neg" {
			w[i].Data[0] = 3 // small caps, so their gradient is visible
		}
	}
	const b, seq = 2, 8
	in, tg := randomTokens(b*seq, cfg.VocabSize, 3), randomTokens(b*seq, cfg.VocabSize, 4)
	in[3] = 1 // a BOS, for the SmearGate's BOS fix
	_, grads := lossAndGrads(t, cfg, w, in, tg, b, seq)
	le := newLossExec(t, cfg, w, Options{})
	rng := rand.New(rand.NewPCG(5, 5))
	for i, p := range cfg.Params() {
		for range 2 {
			j := rng.IntN(p.NumElements())
			const eps = 1e-2
			shifted := func(delta float32) float64 {
				w2 := slices.Clone(w)
				d := slices.Clone(w[i].Data)
				d[j] += delta
				w2[i].Data = d
				return le.run(w2, in, tg, b, seq)
			}
			fd := (shifted(eps) - shifted(-eps)) / (2 * eps)
			g := float64(grads[i][j])
			if math.Abs(fd-g) > 0.03*math.Abs(g)+3e-4 {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", p.Name, j, g, fd)
			}
		}
	}
}

// TestSegmentsIsolateDocuments: with segment ids, a document's losses do
// not depend on the other documents of its row, and equal the document run
// alone (RoPE is relative, so its position in the row does not matter).
func TestSegmentsIsolateDocuments(t *testing.T) {
	cfg := microRecordConfig()
	cfg.SmearGate, cfg.SmearBOSFix, cfg.BigramVocab, cfg.BigramDim = false, false, 0, 0 // these read across documents by design
	w := randomWeights(cfg, 11)
	const seq = 8
	in, tg := randomTokens(seq, cfg.VocabSize, 6), randomTokens(seq, cfg.VocabSize, 7)
	seg := []int32{0, 0, 0, 1, 1, 1, 1, 1}
	losses := func(in, tg, seg []int32, n int) []float32 {
		out, err := mlctx.ExecOnce(backend(t), loadedContext(t, cfg, w), func(ctx *mlctx.Context, in, tg, seg *graph.Node) *graph.Node {
			return TokenLosses(ctx, cfg, in, tg, Options{Segments: seg})
		}, tensors.FromFlatDataAndDimensions(in, 1, n), tensors.FromFlatDataAndDimensions(tg, 1, n), tensors.FromFlatDataAndDimensions(seg, 1, n))
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	base := losses(in, tg, seg, seq)
	in2 := slices.Clone(in)
	in2[0], in2[2] = (in2[0]+5)%int32(cfg.VocabSize), (in2[2]+7)%int32(cfg.VocabSize)
	changed := losses(in2, tg, seg, seq)
	for p := 3; p < seq; p++ {
		if base[p] != changed[p] {
			t.Errorf("position %d (document 2) changed when document 1 did: %v -> %v", p, base[p], changed[p])
		}
	}
	if base[2] == changed[2] {
		t.Error("document 1's own loss did not react to its tokens")
	}
	alone := losses(in[3:], tg[3:], make([]int32, 5), 5)
	if d := relDiff(base[3:], alone); d > 1e-5 {
		t.Errorf("document 2 in the row vs alone differ by %.2g (relative)", d)
	}
}

func loadedContext(t *testing.T, cfg Config, w Weights) *mlctx.Context {
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// countingAdapter records where the forward pass asks for corrections and
// adds scale · sum(x) to the head's logits.
type countingAdapter struct {
	calls map[AdapterTarget][]int
	scale float64
}

func (a *countingAdapter) Delta(target AdapterTarget, slot int, x *Node, out int) *Node {
	a.calls[target] = append(a.calls[target], slot)
	if target != AdaptHead || a.scale == 0 {
		return nil
	}
	dims := x.Shape().Dimensions
	s := graph.MulScalar(graph.ReduceAndKeep(x, graph.ReduceSum, -1), a.scale)
	return graph.BroadcastToDims(s, dims[0], dims[1], out)
}

func TestAdapterTargetsAndSlots(t *testing.T) {
	cfg := microRecordConfig()
	w := randomWeights(cfg, 12)
	const seq = 8
	in, tg := randomTokens(seq, cfg.VocabSize, 8), randomTokens(seq, cfg.VocabSize, 9)
	run := func(a Adapter) float64 {
		return newLossExec(t, cfg, w, Options{Adapter: a}).run(w, in, tg, 1, seq)
	}
	plain := run(nil)
	a := &countingAdapter{calls: map[AdapterTarget][]int{}}
	if got := run(a); got != plain {
		t.Errorf("an adapter adding nothing changed the loss: %v vs %v", got, plain)
	}
	n := cfg.NumVirtualLayers()
	var slots []int
	for i := range n {
		slots = append(slots, i)
	}
	for _, target := range []AdapterTarget{AdaptQ, AdaptK, AdaptV, AdaptO, AdaptMLP} {
		if !slices.Equal(a.calls[target], slots) {
			t.Errorf("%v corrections asked at slots %v, want every virtual layer %v", target, a.calls[target], slots)
		}
	}
	if !slices.Equal(a.calls[AdaptHead], []int{-1}) {
		t.Errorf("head corrections asked at %v", a.calls[AdaptHead])
	}
	if got := run(&countingAdapter{calls: map[AdapterTarget][]int{}, scale: 0.3}); got == plain {
		t.Error("a head correction did not change the loss")
	}
}

func TestUnloopedDiffers(t *testing.T) {
	cfg := microRecordConfig()
	w := randomWeights(cfg, 13)
	in, tg := randomTokens(8, cfg.VocabSize, 1), randomTokens(8, cfg.VocabSize, 2)
	looped := newLossExec(t, cfg, w, Options{}).run(w, in, tg, 1, 8)
	unlooped := newLossExec(t, cfg, w, Options{Unlooped: true}).run(w, in, tg, 1, 8)
	if looped == unlooped || math.IsNaN(unlooped) {
		t.Errorf("looped %v, unlooped %v: the loop changed nothing", looped, unlooped)
	}
}

func TestInitialisers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][]int{{6, 10}, {10, 6}, {7, 7}} {
		w, err := Orthogonal(2).fill(shape, rng)
		if err != nil {
			t.Fatal(err)
		}
		r, c := shape[0], shape[1]
		// The smaller Gram matrix is 4·I.
		n, other := min(r, c), max(r, c)
		for a := range n {
			for b := range n {
				var dot float64
				for k := range other {
					if r <= c {
						dot += float64(w[a*c+k]) * float64(w[b*c+k])
					} else {
						dot += float64(w[k*c+a]) * float64(w[k*c+b])
					}
				}
				want := 0.0
				if a == b {
					want = 4
				}
				if math.Abs(dot-want) > 1e-5 {
					t.Fatalf("orthogonal %v: gram[%d][%d] = %v, want %v", shape, a, b, dot, want)
				}
			}
		}
	}
	for _, in := range []Init{Zeros(), Const(1.5), Normal(0.005), UniformFanIn(), Orthogonal(1), Rows(1, 0)} {
		back, err := ParseInit(in.String())
		if err != nil || back.String() != in.String() {
			t.Errorf("%v: parsed back as %v, %v", in, back, err)
		}
	}
	for _, bad := range []string{"", "normal", "normal(x)", "rows()", "const(1", "uniform_fan_in(2)", "sparse(3)"} {
		if _, err := ParseInit(bad); err == nil {
			t.Errorf("ParseInit(%q) accepted", bad)
		}
	}
	rows, _ := Rows(1, 0).fill([]int{2, 3}, rng)
	if !slices.Equal(rows, []float32{1, 1, 1, 0, 0, 0}) {
		t.Errorf("rows(1,0) filled %v", rows)
	}
	if _, err := Rows(1, 0).fill([]int{3, 3}, rng); err == nil {
		t.Error("rows(1,0) accepted 3 rows")
	}
}
