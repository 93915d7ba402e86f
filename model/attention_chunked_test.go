package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// attentionGrads runs one attention call of cfg's geometry on q [B*Hkv, G*T,
// hd] and k, v [B*Hkv, T, hd] and returns its output and the gradients of
// sum(out ⊙ w) with respect to q, k and v (w a fixed random cotangent).
func attentionGrads(t *testing.T, cfg Config, b, seq int, seg []int32, q, k, v, w []float32) [][]float32 {
	t.Helper()
	hkv, grp, hd := cfg.NumKVHeads, cfg.NumHeads/cfg.NumKVHeads, cfg.HeadDim()
	fn := func(q, k, v, w, segs *graph.Node) []*graph.Node {
		f := &forward{cfg: cfg, g: q.Graph(), b: b, t: seq, dtype: dtypes.Float32}
		if cfg.ComputeDType == "bfloat16" {
			f.dtype = dtypes.BFloat16
		}
		if seg != nil {
			f.opts.Segments = segs
		}
		y := f.attend(q, k, v)
		loss := graph.ReduceAllSum(graph.Mul(y, w))
		return append([]*graph.Node{y}, graph.Gradient(loss, q, k, v)...)
	}
	segData := seg
	if segData == nil {
		segData = make([]int32, b*seq)
	}
	out, err := execN(t, fn,
		tensors.FromFlatDataAndDimensions(q, b*hkv, grp*seq, hd),
		tensors.FromFlatDataAndDimensions(k, b*hkv, seq, hd),
		tensors.FromFlatDataAndDimensions(v, b*hkv, seq, hd),
		tensors.FromFlatDataAndDimensions(w, b*hkv, grp*seq, hd),
		tensors.FromFlatDataAndDimensions(segData, b, seq))
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(out))
	for i, o := range out {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

func randomFloats(n int, scale float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * scale)
	}
	return out
}

// TestChunkedAttentionCore compares the chunked attention's output and its
// hand-written gradients with respect to q, k and v against the
// materialised attention differentiated by autodiff, for block sizes that
// divide T, do not, are 1 and exceed T, with and without document segments,
// in float32 (to float32 rounding) and bfloat16 (to bfloat16 rounding).
func TestChunkedAttentionCore(t *testing.T) {
	const b, seq = 2, 13
	base := microConfig() // 4 heads, 2 KV heads (G = 2), head dim 4
	hkv, grp, hd := base.NumKVHeads, base.NumHeads/base.NumKVHeads, base.HeadDim()
	q := randomFloats(b*hkv*grp*seq*hd, 1.5, 1) // large logits: peaked softmax rows
	k := randomFloats(b*hkv*seq*hd, 1.5, 2)
	v := randomFloats(b*hkv*seq*hd, 1, 3)
	w := randomFloats(b*hkv*grp*seq*hd, 1, 4)
	seg := []int32{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6}
	names := []string{"output", "dq", "dk", "dv"}
	worst := map[string]float64{}
	defer func() { t.Logf("largest relative differences: %v", worst) }()
	for _, dtype := range []string{"float32", "bfloat16"} {
		tol := 2e-6
		if dtype == "bfloat16" {
			tol = 3e-2
		}
		for _, segs := range [][]int32{nil, seg} {
			ref := base
			ref.ComputeDType = dtype
			want := attentionGrads(t, ref, b, seq, segs, q, k, v, w)
			for _, chunk := range []int{1, 4, 5, 13, 64} {
				cfg := ref
				cfg.AttentionImpl, cfg.AttentionChunk = "chunked", chunk
				got := attentionGrads(t, cfg, b, seq, segs, q, k, v, w)
				for i := range want {
					d := relDiff(got[i], want[i])
					worst[dtype] = max(worst[dtype], d)
					if d > tol || math.IsNaN(d) {
						t.Errorf("%s, segments %v, chunk %d: %s differs from the materialised by %.2g (relative to its max), tolerance %.0g",
							dtype, segs != nil, chunk, names[i], d, tol)
					}
				}
			}
		}
	}
}

// modelLossesAndGrads returns the per-token losses of cfg on a batch and
// the gradients of their mean with respect to every parameter.
func modelLossesAndGrads(t *testing.T, cfg Config, w Weights, in, tg, seg []int32, b, seq int) [][]float32 {
	t.Helper()
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	exec, err := mlctx.NewExec(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg, segs *graph.Node) []*graph.Node {
		var opts Options
		if seg != nil {
			opts.Segments = segs
		}
		losses := TokenLosses(ctx, cfg, in, tg, opts)
		var vars []*graph.Node
		for _, p := range cfg.Params() {
			vars = append(vars, variable(ctx, p.Name).ValueGraph(in.Graph()))
		}
		return append([]*graph.Node{losses}, graph.Gradient(graph.ReduceAllMean(losses), vars...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seg == nil {
		seg = make([]int32, b*seq)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq),
		tensors.FromFlatDataAndDimensions(seg, b, seq))
	if err != nil {
		t.Fatal(err)
	}
	res := make([][]float32, len(out))
	for i, o := range out {
		res[i] = tensors.MustCopyFlatData[float32](o)
	}
	return res
}

// TestChunkedAttentionModel: the whole model (the baseline's graph and the
// full technique stack: XSA, gates, loops, lanes) with chunked attention
// gives the materialised model's per-token losses and every parameter's
// gradient to float32 rounding.
func TestChunkedAttentionModel(t *testing.T) {
	const b, seq = 2, 12
	var worst float64
	defer func() { t.Logf("largest relative difference: %.2g", worst) }()
	for _, tc := range []struct {
		name string
		cfg  Config
		seg  []int32
	}{
		{"baseline-graph", microConfig(), nil},
		{"record-stack", microRecordConfig(), nil},
		{"record-stack/segments", microRecordConfig(), []int32{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}},
	} {
		w := randomWeights(tc.cfg, 21)
		in, tg := randomTokens(b*seq, tc.cfg.VocabSize, 5), randomTokens(b*seq, tc.cfg.VocabSize, 6)
		want := modelLossesAndGrads(t, tc.cfg, w, in, tg, tc.seg, b, seq)
		for _, chunk := range []int{5, 12} {
			cfg := tc.cfg
			cfg.AttentionImpl, cfg.AttentionChunk = "chunked", chunk
			got := modelLossesAndGrads(t, cfg, w, in, tg, tc.seg, b, seq)
			for i := range want {
				name := "token losses"
				if i > 0 {
					name = "gradient of " + cfg.Params()[i-1].Name
				}
				d := relDiff(got[i], want[i])
				worst = max(worst, d)
				if d > 1e-5 || math.IsNaN(d) {
					t.Errorf("%s, chunk %d: %s differs from the materialised by %.2g (relative)", tc.name, chunk, name, d)
				}
			}
		}
	}
}

// TestChunkedTableForgetsCollectedGraphs: the side table of chunked
// attention nodes (which also points at the segment ids) must not keep
// finished graphs alive.
func TestChunkedTableForgetsCollectedGraphs(t *testing.T) {
	count := func() int {
		n := 0
		chunkedNodes.m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	cfg := microRecordConfig()
	cfg.AttentionImpl, cfg.AttentionChunk = "chunked", 3
	for i := range 2 {
		seg := []int32{0, 0, 0, 1, 1, 1, 1, 1}
		if i == 0 {
			seg = nil
		}
		_ = modelLossesAndGrads(t, cfg, randomWeights(cfg, 1), randomTokens(8, cfg.VocabSize, 1), randomTokens(8, cfg.VocabSize, 2), seg, 1, 8)
	}
	if count() == 0 {
		t.Fatal("building the chunked model recorded no attention nodes")
	}
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(); n > 0 {
		t.Errorf("%d chunked attention nodes still recorded after their graphs were collected", n)
	}
}

func TestAttentionImplValidate(t *testing.T) {
	cfg := microConfig()
	for _, bad := range []Config{
		func() Config { c := cfg; c.AttentionImpl = "flash"; return c }(),
		func() Config { c := cfg; c.AttentionChunk = -1; return c }(),
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("config with attention_impl %q, attention_chunk %d validated", bad.AttentionImpl, bad.AttentionChunk)
		}
	}
	for _, impl := range []string{"", "materialized", "chunked"} {
		c := cfg
		c.AttentionImpl = impl
		if err := c.Validate(); err != nil {
			t.Errorf("attention_impl %q: %v", impl, err)
		}
	}
}

// ExampleConfig_attentionImpl selects the memory-lean attention for a
// preset; values and gradients are the materialised attention's.
func ExampleConfig_attentionImpl() {
	cfg, _ := Preset("record")
	cfg.AttentionImpl, cfg.AttentionChunk = "chunked", 256
	fmt.Println(cfg.Validate() == nil, cfg.SeqLen/cfg.chunkSize(), "query blocks per row")
	// Output: true 8 query blocks per row
}
