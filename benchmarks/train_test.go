package benchmarks

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/train"
)

// matmulGFLOPs measures the backend's float32 matmul rate on an
// [m, k] x [k, n] product, the reference the training step is compared to.
func matmulGFLOPs(b *testing.B, backend backends.Backend, m, k, n int) float64 {
	b.Helper()
	exec, err := graph.NewExec(backend, func(x, y *graph.Node) *graph.Node { return graph.Dot(x, y) })
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	x := tensors.FromFlatDataAndDimensions(make([]float32, m*k), m, k)
	y := tensors.FromFlatDataAndDimensions(make([]float32, k*n), k, n)
	run := func() {
		out, err := exec.Exec(x, y)
		if err != nil {
			b.Fatal(err)
		}
		tensors.MustCopyFlatData[float32](out[0])
		out[0].FinalizeAll()
	}
	run() // compile
	const reps = 3
	start := time.Now()
	for range reps {
		run()
	}
	return 2 * float64(m*k*n) * reps / time.Since(start).Seconds() / 1e9
}

// BenchmarkTrainStepTiny times one optimizer step (forward, backward, Muon
// and Adam) of the tiny preset at its own batch on the pure-Go backend.
// Reported: tokens/s, the model's training GFLOP/s, and that rate as a
// fraction of the backend's plain f32 matmul rate measured in the same run
// (1.0 would mean the step runs at matmul speed).
//
//	go test ./benchmarks -run XXX -bench TrainStep -benchtime 3x
func BenchmarkTrainStepTiny(b *testing.B) {
	backend, _, err := compute.Open("go")
	if err != nil {
		b.Fatal(err)
	}
	cfg, s, err := train.PresetSettings("tiny")
	if err != nil {
		b.Fatal(err)
	}
	micro, accum := s.MicroBatch(8192)
	tr, err := train.NewTrainer(backend, cfg, s.Optimizer, train.TrainerOptions{AccumSteps: accum, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([]train.Batch, accum)
	for i := range batches {
		in, tg := make([]int32, micro), make([]int32, micro)
		for j := range in {
			in[j], tg[j] = int32(rng.IntN(cfg.VocabSize)), int32(rng.IntN(cfg.VocabSize))
		}
		batches[i] = train.NewBatch(in, tg, s.SeqLen)
	}
	ctx := context.Background()
	if _, err := tr.Step(ctx, batches, 1, 0.95); err != nil { // compile
		b.Fatal(err)
	}
	ref := matmulGFLOPs(b, backend, micro, 256, 1024)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := tr.Step(ctx, batches, 1, 0.95); err != nil {
			b.Fatal(err)
		}
	}
	perStep := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()
	gflops := train.TrainFLOPsPerToken(cfg, s.SeqLen) * float64(s.BatchTokens) / perStep / 1e9
	b.ReportMetric(float64(s.BatchTokens)/perStep, "tokens/s")
	b.ReportMetric(gflops, "model-GFLOP/s")
	b.ReportMetric(ref, "matmul-GFLOP/s")
	b.ReportMetric(gflops/ref, "of-matmul")
}
