package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
)

func calibConfig() model.Config {
	return model.Config{VocabSize: 64, NumLayers: 2, ModelDim: 32, NumHeads: 4, NumKVHeads: 2, MLPHidden: 48,
		SeqLen: 16, RopeBase: 10000, LogitSoftcap: 30, EmbedInitStd: 0.5, QKGainInit: 1.5}
}

// TestCollectHessians: at initialisation block 0's attention reads
// rmsnorm(rmsnorm(rmsnorm(emb[token]))) (resid_mix = [1, 0], zero output
// projections), so its Hessian is computable on the host; batching must not
// change the sums; and GPTQ with the collected Hessians must beat
// round-to-nearest on the Hessian-weighted error of real model matrices.
func TestCollectHessians(t *testing.T) {
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := calibConfig()
	w, err := model.InitWeights(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const seqs = 5
	tokens := make([]int32, seqs*cfg.SeqLen)
	for i := range tokens {
		tokens[i] = int32(rng.IntN(cfg.VocabSize))
	}
	ctx := context.Background()
	one, err := CollectHessians(ctx, backend, cfg, w, tokens, cfg.SeqLen, 1)
	if err != nil {
		t.Fatal(err)
	}
	three, err := CollectHessians(ctx, backend, cfg, w, tokens, cfg.SeqLen, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 // tok_emb
	for _, p := range cfg.Params() {
		if p.Class.IsMatrix() {
			want++
		}
	}
	if len(one) != want {
		t.Errorf("%d Hessians, want one per matrix plus tok_emb = %d", len(one), want)
	}
	for name, h := range one {
		if h.Count != seqs*cfg.SeqLen || three[name].Count != h.Count {
			t.Errorf("%s: counted %d and %d samples, want %d", name, h.Count, three[name].Count, seqs*cfg.SeqLen)
		}
		for i := range h.Sum {
			if d := math.Abs(h.Sum[i] - three[name].Sum[i]); d > 1e-3*(1+math.Abs(h.Sum[i])) {
				t.Fatalf("%s: batching changed the Hessian at %d: %v vs %v", name, i, h.Sum[i], three[name].Sum[i])
			}
		}
	}

	emb, _ := w.Get("tok_emb")
	d := cfg.ModelDim
	norm := func(v []float64) []float64 {
		var ms float64
		for _, e := range v {
			ms += e * e
		}
		ms /= float64(len(v))
		out := make([]float64, len(v))
		for i, e := range v {
			out[i] = e / math.Sqrt(ms+1.1920928955078125e-07)
		}
		return out
	}
	host := make([]float64, d*d)
	for _, tok := range tokens {
		x := make([]float64, d)
		for j := range d {
			x[j] = float64(emb.Data[int(tok)*d+j])
		}
		x = norm(norm(norm(x)))
		for i := range d {
			for j := range d {
				host[i*d+j] += x[i] * x[j]
			}
		}
	}
	got := one["block_0/attn/c_q"]
	for i := range host {
		if math.Abs(got.Sum[i]-host[i]) > 1e-3*(1+math.Abs(host[i])) {
			t.Fatalf("c_q Hessian[%d] = %v, host %v", i, got.Sum[i], host[i])
		}
	}

	// GPTQ on a real matrix with its real Hessian.
	fc, _ := w.Get("block_1/mlp/fc")
	rows, cols := fc.Shape[0], fc.Shape[1]
	rtn := intRule(4, std(4))
	g := rtn
	g.GPTQ = true
	h := one["block_1/mlp/fc"]
	eRTN := WeightedError(fc.Data, quantizeMatrix(t, fc.Data, rows, cols, rtn, h), rows, cols, h)
	eGPTQ := WeightedError(fc.Data, quantizeMatrix(t, fc.Data, rows, cols, g, h), rows, cols, h)
	if !(eGPTQ < eRTN) {
		t.Errorf("GPTQ with collected Hessians: weighted error %.4g, round-to-nearest %.4g", eGPTQ, eRTN)
	}

	back, err := HessiansFromTensors(HessianTensors(one, []string{"block_0/attn/c_q", "tok_emb"}))
	if err != nil || len(back) != 2 || back["tok_emb"].In != d {
		t.Errorf("Hessian tensors round trip: %v %v", back, err)
	}
	if _, err := CollectHessians(ctx, backend, cfg, w, tokens[:7], cfg.SeqLen, 1); err == nil {
		t.Error("a partial sequence was accepted")
	}
}

// randomSource yields uniform random tokens forever.
type randomSource struct {
	rng   *rand.Rand
	vocab int
}

func (s *randomSource) NextTokens(rows, seqLen int) ([]int32, error) {
	out := make([]int32, rows*seqLen)
	for i := range out {
		out[i] = int32(s.rng.IntN(s.vocab))
	}
	return out, nil
}

// Calibrate stops at MaxTokens, and with a deadline it stops starting
// batches that would end after it, and says whether it stayed inside.
func TestCalibrateBudget(t *testing.T) {
	backend, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := calibConfig()
	w, err := model.InitWeights(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src := &randomSource{rand.New(rand.NewPCG(4, 4)), cfg.VocabSize}
	hs, rep, err := Calibrate(ctx, backend, cfg, w, src, CalibrateOptions{SeqLen: cfg.SeqLen, BatchRows: 2, MaxTokens: 5 * cfg.SeqLen,
		Deadline: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tokens != 5*cfg.SeqLen || rep.Batches != 3 || !rep.InsideBudget || rep.StoppedEarly || rep.SecondsLeft <= 0 {
		t.Fatalf("max tokens: %+v", rep)
	}
	if h := hs["tok_emb"]; h == nil || h.Count != rep.Tokens {
		t.Fatalf("tok_emb Hessian %+v", h)
	}
	// A deadline already passed: one batch (the compile is the cost the
	// deadline cannot foresee), then stop, reported over budget.
	_, rep, err = Calibrate(ctx, backend, cfg, w, src, CalibrateOptions{SeqLen: cfg.SeqLen, BatchRows: 2, Deadline: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Batches != 1 || rep.InsideBudget || !rep.StoppedEarly || rep.SecondsLeft >= 0 {
		t.Fatalf("past deadline: %+v", rep)
	}
}
