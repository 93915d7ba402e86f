package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/golden"
)

// Golden tests: golf's model against the challenge's own PyTorch code (PR #2135's
// train_gpt.py, the baseline's, PR #1019's), run by testdata/gen_golden.py at micro sizes
// with random weights. Tolerances, at float32:
//
//   - per-token losses and logits: max |golf - ref| <= 1e-5 · max |ref| over the case;
//   - gradients: per tensor, max |golf - ref| <= 1e-4 · max |ref| of that tensor
//     (float32 summation order differs between gomlx and PyTorch, and gradients sum over
//     every token of the batch; the largest seen is printed with -v).
//
// A gradient tensor whose reference is all zeros must be all zeros in golf too (up to
// 1e-7 · the largest reference gradient of the case). Seen (go test -run TestGolden -v):
// losses and logits within 2.1e-6, gradients within 1.7e-5 except AsymLogit's
// softcap_pos/neg at s = 30 (5.5e-5): d/ds s·tanh(z/s) = tanh(u) − u·sech²(u), u = z/s,
// cancels to ~u³ for small u, so float32 rounding is amplified by ~1/u² there.
const (
	goldenLossTol = 1e-5
	goldenGradTol = 1e-4
)

// goldenFile is one testdata/golden/*.golden.gz file (format: gen_golden.py's docstring).
type goldenFile struct {
	Case        string          `json:"case"`
	Kind        string          `json:"kind"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
	Options     struct {
		Unlooped bool              `json:"unlooped"`
		Env      map[string]string `json:"env"`
	} `json:"options"`
	Batch     int     `json:"batch"`
	Seq       int     `json:"seq"`
	MeanLoss  float64 `json:"mean_loss"`
	TrainLoss float64 `json:"train_loss"`
	data      *golden.Tensors
}

func readGolden(path string) (*goldenFile, error) {
	g := &goldenFile{}
	data, err := golden.Read(path, g)
	if err != nil {
		return nil, err
	}
	g.data = data
	return g, nil
}

func (g *goldenFile) has(name string) bool { return g.data.Has(name) }

func (g *goldenFile) shape(name string) []int { return g.data.Shape(name) }

func (g *goldenFile) float32s(t testing.TB, name string) []float32 {
	t.Helper()
	v, err := g.data.Float32s(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (g *goldenFile) int32s(t testing.TB, name string) []int32 {
	t.Helper()
	v, err := g.data.Int32s(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// config decodes the case's golf config, refusing fields Config does not have.
func (g *goldenFile) config(t testing.TB) Config {
	t.Helper()
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(g.Config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("%s: config: %v", g.Case, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", g.Case, err)
	}
	return cfg
}

// weights returns the case's weights in cfg's Params order; every tensor of the file
// must be one of cfg's parameters and every parameter must be in the file.
func (g *goldenFile) weights(t testing.TB, cfg Config) Weights {
	t.Helper()
	var w Weights
	for _, p := range cfg.Params() {
		name := "weights/" + p.Name
		if !g.has(name) {
			t.Fatalf("%s: golf parameter %s has no reference weight", g.Case, p.Name)
		}
		if !slices.Equal(g.shape(name), p.Shape) {
			t.Fatalf("%s: %s is %v in the reference, golf declares %v", g.Case, p.Name, g.shape(name), p.Shape)
		}
		w = append(w, p.tensor(g.float32s(t, name)))
	}
	for _, name := range g.data.Names() {
		if rest, ok := strings.CutPrefix(name, "weights/"); ok {
			if _, ok := cfg.Param(rest); !ok {
				t.Errorf("%s: reference parameter %s is not a golf parameter of this config", g.Case, rest)
			}
		}
	}
	return w
}

// segmentsFromCuSeqlens turns the record's cu_seqlens (segment starts, then the total
// length, padded by repeating it) into one segment id per position of a [1, n] row.
func segmentsFromCuSeqlens(cu []int32, n int) ([]int32, error) {
	if len(cu) < 2 || cu[0] != 0 {
		return nil, fmt.Errorf("cu_seqlens %v must start at 0", cu)
	}
	seg := make([]int32, n)
	for i := 0; i+1 < len(cu); i++ {
		a, b := int(cu[i]), int(cu[i+1])
		if b < a || b > n {
			return nil, fmt.Errorf("cu_seqlens %v: entry %d (%d..%d) out of order or past %d", cu, i, a, b, n)
		}
		for p := a; p < b; p++ {
			seg[p] = int32(i)
		}
	}
	if int(cu[len(cu)-1]) != n {
		return nil, fmt.Errorf("cu_seqlens %v must end at the row length %d", cu, n)
	}
	return seg, nil
}

// goldenRun is golf's output for one case.
type goldenRun struct {
	losses, logits []float32
	grads          map[string][]float32
}

func runGolden(t testing.TB, cfg Config, w Weights, in, tg, seg []int32, b, seq int, unlooped bool) goldenRun {
	t.Helper()
	ctx := mlctx.New()
	if err := LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	params := cfg.Params()
	exec, err := mlctx.NewExec(backend(t), ctx.Reuse(), func(ctx *mlctx.Context, in, tg, seg *graph.Node) []*graph.Node {
		opts := Options{Unlooped: unlooped}
		if seg.Shape().Equal(in.Shape()) {
			opts.Segments = seg
		}
		losses := TokenLosses(ctx, cfg, in, tg, opts)
		logits := Logits(ctx, cfg, in, opts)
		var vars []*graph.Node
		for _, p := range params {
			vars = append(vars, variable(ctx, p.Name).ValueGraph(in.Graph()))
		}
		return append([]*graph.Node{losses, logits}, graph.Gradient(graph.ReduceAllMean(losses), vars...)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	segT := tensors.FromFlatDataAndDimensions([]int32{0}, 1)
	if seg != nil {
		segT = tensors.FromFlatDataAndDimensions(seg, b, seq)
	}
	out, err := exec.Exec(tensors.FromFlatDataAndDimensions(in, b, seq), tensors.FromFlatDataAndDimensions(tg, b, seq), segT)
	if err != nil {
		t.Fatal(err)
	}
	r := goldenRun{
		losses: tensors.MustCopyFlatData[float32](out[0]),
		logits: tensors.MustCopyFlatData[float32](out[1]),
		grads:  map[string][]float32{},
	}
	for i, p := range params {
		r.grads[p.Name] = tensors.MustCopyFlatData[float32](out[2+i])
	}
	return r
}

// maxAbs returns max |v|.
func maxAbs(v []float32) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// maxAbsDiff returns max |a - b|.
func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// goldenCases are the cases gen_golden.py writes (its CASES), so that a lost file fails.
var goldenCases = []string{
	"baseline_odd_layers", "baseline_tiny",
	"record_asym_logit", "record_full_stack", "record_full_stack_unlooped", "record_full_stack_varlen",
	"record_ln_scale", "record_loops", "record_loops_skip_gates", "record_loops_unlooped", "record_minimal",
	"record_parallel", "record_parallel_lane_mlp", "record_partial_rope", "record_qk_gain", "record_skip_gates",
	"record_smear", "record_smear_bos_fix", "record_sparse_gate", "record_untied_head", "record_varlen",
	"record_xsa", "t1019_bigram_ve", "t1019_bigram_ve_unprojected",
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.golden.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".golden.gz"); n != "rope" && n != "bigram_hash" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, goldenCases) {
		t.Fatalf("testdata/golden holds cases %v, want %v (run testdata/gen_golden.py)", names, goldenCases)
	}
	return files
}

// TestGolden runs every case of testdata/golden against golf's model: the per-token
// losses, logits and the gradient of the mean loss with respect to every parameter.
func TestGolden(t *testing.T) {
	for _, path := range goldenFiles(t) {
		g, err := readGolden(path)
		if err != nil {
			t.Fatal(err)
		}
		if g.Kind != "model" {
			continue
		}
		t.Run(g.Case, func(t *testing.T) {
			cfg := g.config(t)
			w := g.weights(t, cfg)
			in, tg := g.int32s(t, "inputs"), g.int32s(t, "targets")
			b, seq := g.Batch, g.Seq
			var seg []int32
			if g.has("cu_seqlens") {
				if b != 1 {
					t.Fatalf("varlen case with batch %d: the record packs one row", b)
				}
				if seg, err = segmentsFromCuSeqlens(g.int32s(t, "cu_seqlens"), seq); err != nil {
					t.Fatal(err)
				}
			}
			got := runGolden(t, cfg, w, in, tg, seg, b, seq, g.Options.Unlooped)

			wantLoss := g.float32s(t, "losses")
			lossErr := maxAbsDiff(got.losses, wantLoss) / maxAbs(wantLoss)
			if lossErr > goldenLossTol {
				t.Errorf("per-token losses: max relative difference %.3g > %g\n golf %v\n ref  %v", lossErr, goldenLossTol, got.losses, wantLoss)
			}
			logitErr := 0.0
			if g.has("logits") {
				want := g.float32s(t, "logits")
				if logitErr = maxAbsDiff(got.logits, want) / maxAbs(want); logitErr > goldenLossTol {
					t.Errorf("logits: max relative difference %.3g > %g", logitErr, goldenLossTol)
				}
			}
			var gradErr float64
			worst := ""
			var largest float64
			for _, p := range cfg.Params() {
				largest = math.Max(largest, maxAbs(g.float32s(t, "grads/"+p.Name)))
			}
			for _, p := range cfg.Params() {
				want := g.float32s(t, "grads/"+p.Name)
				d, m := maxAbsDiff(got.grads[p.Name], want), maxAbs(want)
				if m == 0 {
					if d > 1e-7*largest {
						t.Errorf("gradient %s: reference is zero, golf's max |g| is %.3g", p.Name, d)
					}
					continue
				}
				if rel := d / m; rel > gradErr {
					gradErr, worst = rel, p.Name
				}
				if d/m > goldenGradTol {
					t.Errorf("gradient %s: max relative difference %.3g > %g (max |ref| %.3g)", p.Name, d/m, goldenGradTol, m)
				}
			}
			logits := "-" // the baseline's GPT has no logits method
			if g.has("logits") {
				logits = fmt.Sprintf("%.2e", logitErr)
			}
			t.Logf("%-30s losses %.2e  logits %-8s  grads %.2e (%s)", g.Case, lossErr, logits, gradErr, worst)
			checkTrainLoss(t, g, cfg, w, in, tg, seg, got.losses)
		})
	}
}

// checkTrainLoss compares golf's mean loss with the record's training forward(), which
// differs from its eval path only with AsymLogit: forward() uses the scalar softcap, as
// golf does with the frozen softcap_pos/neg at their init LogitSoftcap.
func checkTrainLoss(t *testing.T, g *goldenFile, cfg Config, w Weights, in, tg, seg []int32, losses []float32) {
	t.Helper()
	if cfg.AsymLogit {
		w = slices.Clone(w)
		for i := range w {
			if w[i].Name == "softcap_pos" || w[i].Name == "softcap_neg" {
				w[i].Data = []float32{float32(cfg.LogitSoftcap)}
			}
		}
		losses = runGolden(t, cfg, w, in, tg, seg, g.Batch, g.Seq, g.Options.Unlooped).losses
	}
	var sum float64
	for _, l := range losses {
		sum += float64(l)
	}
	mean := sum / float64(len(losses))
	if d := math.Abs(mean-g.TrainLoss) / g.TrainLoss; d > goldenLossTol {
		t.Errorf("mean loss %.7f, the reference's training forward() %.7f (relative %.3g)", mean, g.TrainLoss, d)
	}
}

// TestGoldenRopeTables compares golf's rotary tables with the record's and the baseline's
// own Rotary (float32 inv_freq, float32 angles p·inv_freq, float32 cos/sin) at positions
// up to the record's packed training row (98,304 tokens). inv_freq must match bit for bit:
// a one-ulp difference in a frequency grows with the position (p · ulp), which is what
// matters in long packed rows. cos and sin of equal float32 angles may differ by the
// last-place rounding of the two libraries' float32 cos/sin: at most 2 ulps of 1.
func TestGoldenRopeTables(t *testing.T) {
	g, err := readGolden(filepath.Join("testdata", "golden", "rope.golden.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []struct {
		name string
		rd   int
	}{{"record_rd16", 16}, {"baseline_hd64", 64}} {
		wantInv := g.float32s(t, "inv_freq/"+tag.name)
		inv := ropeInvFreq(10000, tag.rd)
		var badInv int
		for j := range wantInv {
			if math.Float32bits(inv[j]) != math.Float32bits(wantInv[j]) {
				badInv++
				t.Errorf("%s: inv_freq[%d] = %v (%#x), the reference's %v (%#x)", tag.name, j, inv[j], math.Float32bits(inv[j]), wantInv[j], math.Float32bits(wantInv[j]))
			}
		}
		positions := g.int32s(t, "positions/"+tag.name)
		wantCos, wantSin := g.float32s(t, "cos/"+tag.name), g.float32s(t, "sin/"+tag.name)
		cos, sin := ropeTable(10000, tag.rd, int(slices.Max(positions))+1)
		half := tag.rd / 2
		var worst float64
		for i, p := range positions {
			for j := range half {
				got := []float32{cos[int(p)*half+j], sin[int(p)*half+j]}
				want := []float32{wantCos[i*half+j], wantSin[i*half+j]}
				for k := range got {
					worst = math.Max(worst, math.Abs(float64(got[k]-want[k])))
				}
			}
		}
		const ulp1 = 1.0 / (1 << 23)
		if worst > 2*ulp1 {
			t.Errorf("%s: cos/sin differ by up to %.3g from the reference (> 2 ulps of 1)", tag.name, worst)
		}
		t.Logf("%s: inv_freq mismatches %d of %d, max |cos/sin difference| %.3g", tag.name, badInv, len(wantInv), worst)
	}
}

// TestGoldenCoversTinyRecord: the full-stack golden case switches on every technique
// of the tiny-record preset (only the sizes differ, and MatrixInit, which only
// initialises), so a technique added to the preset must be added to the golden stack.
func TestGoldenCoversTinyRecord(t *testing.T) {
	g, err := readGolden(filepath.Join("testdata", "golden", "record_full_stack.golden.gz"))
	if err != nil {
		t.Fatal(err)
	}
	got := g.config(t)
	want, _ := Preset("tiny-record")
	want.Name, want.VocabSize, want.NumLayers, want.ModelDim, want.NumHeads, want.NumKVHeads, want.MLPHidden, want.SeqLen =
		got.Name, got.VocabSize, got.NumLayers, got.ModelDim, got.NumHeads, got.NumKVHeads, got.MLPHidden, got.SeqLen
	want.RopeDims, want.GateWindow, want.XSALastN = got.RopeDims, got.GateWindow, got.XSALastN
	want.LoopStart, want.LoopEnd, want.ParallelStartLayer = got.LoopStart, got.LoopEnd, got.ParallelStartLayer
	want.MatrixInit = got.MatrixInit
	if want.XSALastN != want.NumLayers {
		t.Errorf("golden stack has XSA on %d of %d layers; tiny-record has it on all", got.XSALastN, got.NumLayers)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("golden full stack differs from tiny-record beyond sizes:\n golden %s\n preset %s", a, b)
	}
}

// TestGoldenBigramHash compares golf's BigramHash indices with PR #1019's own
// bigram_hash on token ids over the whole uint16 range (its int32 products
// wrap from 59,139 up; torch's % is a floor modulo), bit for bit, and checks
// that a model with such ids trains the table rows the reference's hash
// names: the gradient reaches exactly those rows.
func TestGoldenBigramHash(t *testing.T) {
	g, err := readGolden(filepath.Join("testdata", "golden", "bigram_hash.golden.gz"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := g.int32s(t, "tokens")
	dims := g.shape("tokens")
	b, seq := dims[0], dims[1]
	for _, vb := range g.int32s(t, "sizes") {
		want := g.int32s(t, fmt.Sprintf("hash/vb%d", vb))
		exec, err := graph.NewExec(backend(t), func(ids *graph.Node) *graph.Node { return bigramIndices(ids, int(vb)) })
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(tokens, b, seq))
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[int32](out[0])
		var bad int
		for i := range want {
			if got[i] != want[i] {
				if bad++; bad <= 3 {
					t.Errorf("vb %d: tokens (%d, %d): hash %d, the reference's %d", vb, tokens[max(i-1, 0)], tokens[i], got[i], want[i])
				}
			}
		}
		if bad > 0 {
			t.Errorf("vb %d: %d of %d hashes differ", vb, bad, len(want))
		}
	}

	const vb = 64
	cfg := Config{VocabSize: 65536, NumLayers: 1, ModelDim: 8, NumHeads: 2, NumKVHeads: 1, MLPHidden: 8,
		SeqLen: seq, RopeBase: 10000, LogitSoftcap: 30, EmbedInitStd: 0.005, QKGainInit: 1.5,
		BigramVocab: vb, BigramDim: 4}
	w, err := InitWeights(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w {
		if w[i].Name == "bigram/proj" { // zero at init: give the table a gradient
			for j := range w[i].Data {
				w[i].Data[j] = float32(j%5) - 2
			}
		}
	}
	targets := append(tokens[1:], 7)
	r := runGolden(t, cfg, w, tokens, targets, nil, b, seq, false)
	hit := map[int32]bool{}
	for _, h := range g.int32s(t, "hash/vb64") {
		hit[h] = true
	}
	grad := r.grads["bigram/table"]
	for row := range int32(vb) {
		var norm float64
		for _, v := range grad[int(row)*cfg.BigramDim : int(row+1)*cfg.BigramDim] {
			norm += float64(v) * float64(v)
		}
		if (norm > 0) != hit[row] || math.IsNaN(norm) {
			t.Errorf("bigram/table row %d: gradient norm² %g, row named by the reference's hash: %v", row, norm, hit[row])
		}
	}
}
