package train

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/model"
)

// BenchResult is the speed of full optimizer steps (forward, backward,
// accumulation, Muon and Adam) for one model and batch shape.
type BenchResult struct {
	Preset      string  `json:"preset"`
	Backend     string  `json:"backend"`
	Params      int     `json:"params"`
	BatchTokens int     `json:"batch_tokens"`
	MicroTokens int     `json:"micro_batch_tokens"`
	AccumSteps  int     `json:"accum_steps"`
	SeqLen      int     `json:"seq_len"`
	CompileMs   float64 `json:"compile_ms"` // the first step: graph building, compilation and one run
	Steps       int     `json:"steps"`      // timed steps
	StepMs      float64 `json:"step_ms"`    // mean over the timed steps
	StepMsMin   float64 `json:"step_ms_min"`
	StepMsMax   float64 `json:"step_ms_max"`
	TokensPerS  float64 `json:"tokens_per_s"`
	// ModelTFLOPs is the model's training arithmetic per second: 6 flops per
	// parameter per token for the matmuls (forward + backward) plus the
	// attention scores, 12*layers*dim*seqLen per token (PaLM's estimate).
	ModelTFLOPs float64 `json:"model_tflops"`
}

// Bench times steps optimizer steps of cfg under s's batch shape on backend,
// on random tokens (speed does not depend on the data). The first step,
// which compiles the graphs, is reported apart; one more untimed step lets
// caches settle before the timed ones.
func Bench(ctx context.Context, backend backends.Backend, cfg model.Config, s Settings, steps int, log io.Writer) (res BenchResult, err error) {
	defer recoverGraphPanic("bench", &err)
	if steps < 1 {
		return res, fmt.Errorf("bench: need at least 1 timed step, got %d", steps)
	}
	if err := s.Validate(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	capTokens := acceleratorMicroTokens
	if isPureGo(backend) {
		capTokens = cpuMicroTokens
	}
	micro, accum := s.MicroBatch(capTokens)
	tr, err := NewTrainer(backend, cfg, s.Optimizer, TrainerOptions{AccumSteps: accum, Seed: s.Seed})
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	defer tr.Close()
	res = BenchResult{Preset: s.Preset, Backend: backend.Description(), Params: cfg.NumParams(), BatchTokens: s.BatchTokens,
		MicroTokens: micro, AccumSteps: accum, SeqLen: s.SeqLen, Steps: steps}
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 1))
	rows := micro / s.SeqLen
	batches := make([]Batch, accum)
	for i := range batches {
		b := Batch{Rows: rows, SeqLen: s.SeqLen, Inputs: make([]int32, micro), Targets: make([]int32, micro)}
		for j := range micro {
			b.Inputs[j] = int32(rng.IntN(cfg.VocabSize))
			b.Targets[j] = int32(rng.IntN(cfg.VocabSize))
		}
		batches[i] = b
	}
	step := func() (time.Duration, error) {
		start := time.Now()
		_, err := tr.Step(ctx, batches, 1, s.Optimizer.MuonMomentum)
		return time.Since(start), err
	}
	d, err := step()
	if err != nil {
		return res, fmt.Errorf("bench: first step: %w", err)
	}
	res.CompileMs = ms(d)
	fmt.Fprintf(orDiscard(log), "bench: %s compile+first step %.0fms\n", s.Preset, res.CompileMs)
	if _, err := step(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	times := make([]float64, steps)
	meter := progress.New(log, "bench", "steps", int64(steps))
	for i := range times {
		d, err := step()
		if err != nil {
			return res, fmt.Errorf("bench: %w", err)
		}
		times[i] = ms(d)
		meter.Add(1)
	}
	var total float64
	for _, t := range times {
		total += t
	}
	res.StepMs = total / float64(steps)
	res.StepMsMin, res.StepMsMax = slices.Min(times), slices.Max(times)
	res.TokensPerS = float64(s.BatchTokens) / (res.StepMs / 1000)
	res.ModelTFLOPs = TrainFLOPsPerToken(cfg, s.SeqLen) * res.TokensPerS / 1e12
	return res, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
