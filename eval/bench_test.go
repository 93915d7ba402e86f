package eval

import (
	"context"
	"testing"

	"github.com/paramgolf/golf/model"
)

// BenchmarkEvaluate compares scoring new weights with one Evaluator
// (SetWeights, graphs kept) against a new Evaluator per call (a compile
// per call, as train.Evaluate did before this package): the ratio of the
// two is what compile-once saves per scheme of a quantization benchmark.
// On the pure-Go backend building a graph is cheap and the two are within
// noise (measured on the project's 2-core machines); XLA compiles for
// seconds per graph, which the reused evaluator pays once.
//
//	go test ./eval -run XXX -bench Evaluate -benchtime 5x
func BenchmarkEvaluate(b *testing.B) {
	cfg, err := model.Preset("tiny-record")
	if err != nil {
		b.Fatal(err)
	}
	tokens := stream(2*64+1, cfg.VocabSize, 5, 40, 1)
	w := randomWeights(b, cfg, 2)
	opts := Options{SeqLen: 64}
	bytes := TableBytes(unitBytes{})
	b.Run("reused", func(b *testing.B) {
		e, err := New(backend(b), cfg, w)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		for b.Loop() {
			if err := e.SetWeights(w); err != nil {
				b.Fatal(err)
			}
			if _, err := e.Evaluate(context.Background(), tokens, bytes, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			e, err := New(backend(b), cfg, w)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Evaluate(context.Background(), tokens, bytes, opts); err != nil {
				b.Fatal(err)
			}
			e.Close()
		}
	})
}
