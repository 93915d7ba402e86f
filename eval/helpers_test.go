package eval

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
)

var (
	backendOnce sync.Once
	testBackend backends.Backend
	backendErr  error
)

func backend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() { testBackend, _, backendErr = compute.Open("go") })
	if backendErr != nil {
		t.Fatal(backendErr)
	}
	return testBackend
}

// microConfig is a model small enough for fast tests with every part that
// matters to evaluation: attention (GQA), MLP, U-Net skips, softcap.
func microConfig() model.Config {
	return model.Config{
		Name: "micro", VocabSize: 48, NumLayers: 2, ModelDim: 16, NumHeads: 2, NumKVHeads: 1,
		MLPHidden: 32, SeqLen: 16, RopeBase: 10000, LogitSoftcap: 30, EmbedInitStd: 0.5, QKGainInit: 1.5,
	}
}

// microRecordConfig adds the record's techniques that touch evaluation:
// depth recurrence (adapter slots per virtual layer), parallel lanes,
// AsymLogit's frozen softcaps, the SmearGate.
func microRecordConfig() model.Config {
	c := microConfig()
	c.Name = "micro-record"
	c.NumLayers = 4
	c.NumLoops, c.LoopStart, c.LoopEnd = 1, 1, 1
	c.ParallelStartLayer = 3
	c.AsymLogit = true
	c.SmearGate, c.GateWindow = true, 4
	c.SkipGates = true
	return c
}

// randomWeights returns weights with every parameter random (no zero
// projections), so every path of the network carries signal. Frozen
// parameters keep their initial values.
func randomWeights(t testing.TB, cfg model.Config, seed uint64) model.Weights {
	t.Helper()
	w, err := model.InitWeights(cfg, int64(seed))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range w {
		if w[i].Class == model.Frozen {
			continue
		}
		for j := range w[i].Data {
			w[i].Data[j] = float32(rng.NormFloat64() * 0.4)
			if w[i].Class == model.Control {
				w[i].Data[j] += 1
			}
		}
	}
	return w
}

// stream returns n tokens of a stream made of documents: BOS (1) then
// random tokens from [2, vocab), documents of random lengths in
// [minDoc, maxDoc].
func stream(n, vocab, minDoc, maxDoc int, seed uint64) []uint16 {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]uint16, 0, n)
	for len(out) < n {
		l := minDoc + rng.IntN(maxDoc-minDoc+1)
		out = append(out, 1)
		for range l - 1 {
			out = append(out, uint16(2+rng.IntN(vocab-2)))
		}
	}
	return out[:n]
}

// unitBytes counts every target as tok%3+1 bytes (BOS 0): a byte rule that
// is easy to recompute.
type unitBytes struct{}

func (unitBytes) TokenBytes(prev, tok int) int {
	if tok == 1 {
		return 0
	}
	return tok%3 + 1
}

func newEval(t testing.TB, cfg model.Config, seed uint64) *Evaluator {
	t.Helper()
	e, err := New(backend(t), cfg, randomWeights(t, cfg, seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}
