package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/model"
)

// BenchResult is the speed of full optimizer steps (forward, backward,
// accumulation, Muon and Adam) for one model and batch shape.
type BenchResult struct {
	Preset      string `json:"preset"`
	Backend     string `json:"backend"`
	Params      int    `json:"params"`
	BatchTokens int    `json:"batch_tokens"`
	MicroTokens int    `json:"micro_batch_tokens"` // per rank
	AccumSteps  int    `json:"accum_steps"`        // per rank
	Devices     int    `json:"devices"`            // data-parallel ranks
	SeqLen      int    `json:"seq_len"`
	Attention   string `json:"attention"` // model.Config.AttentionImpl ("materialized" when unset)
	// ComputeDType and NewtonSchulzDType are the precisions the step ran
	// in, as settled for the backend.
	ComputeDType      string  `json:"compute_dtype"`
	NewtonSchulzDType string  `json:"muon_dtype"`
	CompileMs         float64 `json:"compile_ms"` // the first step: graph building, compilation and one run
	Steps             int     `json:"steps"`      // timed steps
	StepMs            float64 `json:"step_ms"`    // mean over the timed steps
	StepMsMin         float64 `json:"step_ms_min"`
	StepMsMax         float64 `json:"step_ms_max"`
	TokensPerS        float64 `json:"tokens_per_s"`
	// TrainFLOPsPerToken is TrainFLOPsPerToken(cfg, seq_len): the weight
	// matmuls once per virtual layer plus attention at the sequence length,
	// three forward passes' worth.
	TrainFLOPsPerToken float64 `json:"train_flops_per_token"`
	// ModelTFLOPs is TrainFLOPsPerToken × tokens/s, in TFLOP/s.
	ModelTFLOPs float64 `json:"model_tflops"`
	// PeakTFLOPs is the backend's matmul rate measured in the same run
	// (MeasureMatmulPeak) and PeakFraction = ModelTFLOPs / PeakTFLOPs, when
	// a peak was measured.
	PeakTFLOPs   float64 `json:"peak_tflops,omitempty"`
	PeakFraction float64 `json:"peak_fraction,omitempty"`
}

// SetPeak records the matmul peak measured in the same run and the fraction
// of it the step reached.
func (r *BenchResult) SetPeak(p MatmulPeak) {
	if p.TFLOPs > 0 {
		r.PeakTFLOPs = p.TFLOPs
		r.PeakFraction = r.ModelTFLOPs / p.TFLOPs
	}
}

// BenchOptions says how Bench runs.
type BenchOptions struct {
	// Steps is the number of timed optimizer steps (>= 1).
	Steps int
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// CPUProfile, when set, receives a Go CPU profile (pprof) of the timed
	// steps: on the pure-Go backend, where the ops run as Go code, a per-op
	// time breakdown (go tool pprof -top).
	CPUProfile io.Writer
	// Devices is the number of data-parallel ranks (0 means 1): each step's
	// batch is split evenly among them (Trainer.StepRanks).
	Devices int
}

// Bench times opts.Steps optimizer steps of cfg under s's batch shape on
// backend, on random tokens (speed does not depend on the data). The first
// step, which compiles the graphs, is reported apart; one more untimed step
// lets caches settle before the timed ones.
func Bench(ctx context.Context, backend backends.Backend, cfg model.Config, s Settings, opts BenchOptions) (res BenchResult, err error) {
	defer recoverGraphPanic("bench", &err)
	steps, log := opts.Steps, orDiscard(opts.Log)
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
	devices := max(opts.Devices, 1)
	rank := s // one rank's share of the step
	if rank.BatchTokens%(devices*s.SeqLen) != 0 {
		return res, fmt.Errorf("bench: %d tokens per step do not split into whole %d-token rows over %d devices", s.BatchTokens, s.SeqLen, devices)
	}
	rank.BatchTokens /= devices
	if rank.MicroBatchTokens > rank.BatchTokens {
		rank.MicroBatchTokens = rank.BatchTokens
	}
	if err := rank.Validate(); err != nil {
		return res, fmt.Errorf("bench: one rank's share: %w", err)
	}
	micro, accum := rank.MicroBatch(capTokens)
	tr, err := NewTrainer(backend, cfg, s.Optimizer, TrainerOptions{AccumSteps: accum, Seed: s.Seed, Devices: devices})
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	defer tr.Close()
	ran := forBackend(backend, cfg)
	res = BenchResult{Preset: s.Preset, Backend: backend.Description(), Params: cfg.NumParams(), BatchTokens: s.BatchTokens,
		MicroTokens: micro, AccumSteps: accum, SeqLen: s.SeqLen, Steps: steps, Devices: devices,
		Attention: attentionName(cfg), ComputeDType: orFloat32(ran.ComputeDType),
		NewtonSchulzDType: tr.opt.NewtonSchulzDType.String()}
	rng := rand.New(rand.NewPCG(uint64(s.Seed), 1))
	rows := micro / s.SeqLen
	ranks := make([][]Batch, devices)
	for r := range ranks {
		ranks[r] = make([]Batch, accum)
		for i := range ranks[r] {
			b := Batch{Rows: rows, SeqLen: s.SeqLen, Inputs: make([]int32, micro), Targets: make([]int32, micro)}
			for j := range micro {
				b.Inputs[j] = int32(rng.IntN(cfg.VocabSize))
				b.Targets[j] = int32(rng.IntN(cfg.VocabSize))
			}
			ranks[r][i] = b
		}
	}
	step := func() (time.Duration, error) {
		start := time.Now()
		_, err := tr.StepRanks(ctx, ranks, 1, s.Optimizer.MuonMomentum)
		return time.Since(start), err
	}
	d, err := step()
	if err != nil {
		return res, fmt.Errorf("bench: first step: %w", err)
	}
	res.CompileMs = ms(d)
	fmt.Fprintf(log, "bench: %s compile+first step %.0fms\n", s.Preset, res.CompileMs)
	if _, err := step(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	if opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return res, fmt.Errorf("bench: CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
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
	res.TrainFLOPsPerToken = TrainFLOPsPerToken(cfg, s.SeqLen)
	res.ModelTFLOPs = res.TrainFLOPsPerToken * res.TokensPerS / 1e12
	return res, nil
}

func attentionName(cfg model.Config) string {
	if cfg.AttentionImpl == "" {
		return "materialized"
	}
	return cfg.AttentionImpl
}

func orFloat32(dtype string) string {
	if dtype == "" {
		return "float32"
	}
	return dtype
}

// MatmulPeak is a backend's measured matmul rate: a chain of Chain square
// Size×Size products in DType inside one graph, the best of Runs timed
// runs (the first, compiling, run not counted).
type MatmulPeak struct {
	DType  string  `json:"dtype"`
	Size   int     `json:"size"`
	Chain  int     `json:"chain"`
	Runs   int     `json:"runs"`
	TFLOPs float64 `json:"tflops"`
}

// MeasureMatmulPeak measures the rate the step's TFLOP/s are compared to:
// on accelerators a chain of 20 bfloat16 8192×8192 products (the shared GPU
// notes' measurement: 750-795 TFLOP/s on an H100), on the pure-Go backend,
// whose matmuls golf runs in float32, a chain of 8 float32 512×512 ones.
// The chained operand is renormalised by the product's construction
// (entries of the right factor ~ ±sqrt(3/n)), so values stay finite.
func MeasureMatmulPeak(ctx context.Context, backend backends.Backend) (p MatmulPeak, err error) {
	defer recoverGraphPanic("matmul peak", &err)
	p = MatmulPeak{DType: "bfloat16", Size: 8192, Chain: 20, Runs: 5}
	dtype := dtypes.BFloat16
	if isPureGo(backend) {
		p, dtype = MatmulPeak{DType: "float32", Size: 512, Chain: 8, Runs: 3}, dtypes.Float32
	}
	n := p.Size
	exec, err := graph.NewExec(backend, func(seed *graph.Node) *graph.Node {
		g := seed.Graph()
		// Deterministic, data-independent operands built on the device:
		// w[i,j] = sqrt(3/n)·sin(0.7·(i·n+j) + seed), x the same shifted.
		idx := graph.IotaFull(g, shapes.Make(dtypes.Float32, n, n))
		w := graph.MulScalar(graph.Sin(graph.Add(graph.MulScalar(idx, 0.7), seed)), math.Sqrt(3/float64(n)))
		x := graph.Sin(graph.Add(graph.MulScalar(idx, 0.3), seed))
		x, w = graph.ConvertDType(x, dtype), graph.ConvertDType(w, dtype)
		for range p.Chain {
			x = graph.Dot(x, w)
		}
		return graph.ReduceAllMax(graph.ConvertDType(x, dtypes.Float32))
	})
	if err != nil {
		return p, fmt.Errorf("matmul peak: %w", err)
	}
	defer exec.Finalize()
	run := func(seed float32) (time.Duration, error) {
		start := time.Now()
		out, err := exec.Exec(seed)
		if err != nil {
			return 0, err
		}
		_, err = tensors.CopyFlatData[float32](out[0]) // waits for the device
		out[0].FinalizeAll()
		return time.Since(start), err
	}
	if _, err := run(0); err != nil {
		return p, fmt.Errorf("matmul peak: %w", err)
	}
	best := time.Duration(math.MaxInt64)
	for i := range p.Runs {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		d, err := run(float32(i + 1))
		if err != nil {
			return p, fmt.Errorf("matmul peak: %w", err)
		}
		best = min(best, d)
	}
	p.TFLOPs = 2 * float64(n) * float64(n) * float64(n) * float64(p.Chain) / best.Seconds() / 1e12
	return p, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
