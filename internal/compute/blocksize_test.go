package compute

import (
	"fmt"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// BenchmarkDotGeneralBlockDim sweeps the pure-Go backend's matmul block
// (simplego.DotGeneralTargetBlockLog2Dim for float32; upstream derives 32×32
// from DotGeneralTargetBlockSize = 16 KiB, tuned on an AMD 9950X3D) over the
// products of a tiny and a baseline training step: activations times
// weights, the weight gradients (contracting over the tokens) and a
// Newton-Schulz product. Each setting builds its own graphs, the settings
// are timed in interleaved rounds (5 per iteration) so machine load hits
// them alike, the fastest round of each counts (the least disturbed by
// other processes on a shared machine), and each one's rate is reported
// as a ratio to the upstream default measured in the same run
// (ratio > 1: faster than the default):
//
//	go test ./internal/compute -run XXX -bench DotGeneralBlockDim -benchtime 1x
func BenchmarkDotGeneralBlockDim(b *testing.B) {
	backend, _, err := Open("go")
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Finalize()
	saved := simplego.DotGeneralTargetBlockLog2Dim[dtypes.Float32]
	defer func() { simplego.DotGeneralTargetBlockLog2Dim[dtypes.Float32] = saved }()
	for _, set := range []struct {
		preset   string
		products []product
	}{
		{"tiny", []product{
			{"x·Wqᵀ 2048x128x128", 2048, 128, 128, false},
			{"x·Wfcᵀ 2048x128x256", 2048, 128, 256, false},
			{"dWfc 256x2048x128", 256, 2048, 128, true},
			{"lm-head 2048x128x1024", 2048, 128, 1024, false},
		}},
		{"baseline", []product{
			{"x·Wqᵀ 1024x512x512", 1024, 512, 512, false},
			{"x·Wfcᵀ 1024x512x1024", 1024, 512, 1024, false},
			{"dWfc 1024x1024x512", 1024, 1024, 512, true},
			{"newton-schulz 512x512x512", 512, 512, 512, false},
		}},
	} {
		b.Run(set.preset, func(b *testing.B) {
			log2Dims := []int{saved, 4, 6, 7}            // the default first: the reference
			best := make([]time.Duration, len(log2Dims)) // fastest round of each setting
			var flops float64
			for _, p := range set.products {
				flops += 2 * float64(p.m*p.k*p.n)
			}
			for range b.N {
				for round := range 5 {
					for j := range log2Dims {
						i := (j + round) % len(log2Dims) // rotate the order each round
						// The pure-Go backend reads the block size both when it
						// builds a graph and when it runs one, so a setting holds
						// for the graphs built and run under it only.
						simplego.DotGeneralTargetBlockLog2Dim[dtypes.Float32] = log2Dims[i]
						run, done := matmulRuns(b, backend, set.products)
						start := time.Now()
						run()
						if d := time.Since(start); best[i] == 0 || d < best[i] {
							best[i] = d
						}
						done()
					}
				}
			}
			ref := best[0].Seconds()
			for i, l := range log2Dims {
				b.ReportMetric(ref/best[i].Seconds(), fmt.Sprintf("ratio_block%d", 1<<l))
				b.ReportMetric(flops/best[i].Seconds()/1e9, fmt.Sprintf("GFLOPs_block%d", 1<<l))
			}
		})
	}
}

// product is one matmul shape of a training step.
type product struct {
	name    string
	m, k, n int  // [m, k] x [k, n]
	tn      bool // stored as [k, m] and [k, n], contracted over their first axis (a weight gradient)
}

// matmulRuns compiles the products with the current block setting, runs
// each once (so the timed runs find warm caches and pools), and returns a
// function running each once more, reading every result to the host, and a
// function freeing the graphs.
func matmulRuns(b *testing.B, backend backends.Backend, products []product) (run, done func()) {
	b.Helper()
	var runs, frees []func()
	for _, p := range products {
		tn := p.tn
		exec, err := graph.NewExec(backend, func(x, y *graph.Node) *graph.Node {
			if tn {
				return graph.DotGeneral(x, []int{0}, nil, y, []int{0}, nil)
			}
			return graph.DotGeneral(x, []int{1}, nil, y, []int{0}, nil)
		})
		if err != nil {
			b.Fatal(err)
		}
		frees = append(frees, exec.Finalize)
		xDims := []int{p.m, p.k}
		if tn {
			xDims = []int{p.k, p.m}
		}
		x := tensors.FromFlatDataAndDimensions(ramp(p.m*p.k), xDims...)
		y := tensors.FromFlatDataAndDimensions(ramp(p.k*p.n), p.k, p.n)
		run := func() {
			out, err := exec.Exec(x, y)
			if err != nil {
				b.Fatal(err)
			}
			tensors.MustCopyFlatData[float32](out[0])
			out[0].FinalizeAll()
		}
		run() // compile with this block setting
		runs = append(runs, run)
	}
	each := func(fs []func()) func() {
		return func() {
			for _, f := range fs {
				f()
			}
		}
	}
	return each(runs), each(frees)
}

func ramp(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i%17)/17 - 0.5
	}
	return out
}
