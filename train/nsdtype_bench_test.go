package train

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// BenchmarkNewtonSchulzDType times Muon's orthogonalisation of one
// baseline block's matrices (c_q, c_k, c_v, proj 512 wide, the MLP's
// 1024x512 and 512x1024) on the pure-Go backend in float32 and in
// bfloat16, alternately in the same run, and reports the ratio (bf16 time /
// f32 time): why the backend, not the preset, picks float32 there.
//
//	go test ./train -run XXX -bench NewtonSchulzDType -benchtime 3x
func BenchmarkNewtonSchulzDType(b *testing.B) {
	backend := goBackend(b)
	rng := rand.New(rand.NewPCG(1, 1))
	shapes := [][2]int{{512, 512}, {256, 512}, {256, 512}, {512, 512}, {1024, 512}, {512, 1024}}
	var args []any
	for _, s := range shapes {
		v := make([]float32, s[0]*s[1])
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		args = append(args, tensors.FromFlatDataAndDimensions(v, s[0], s[1]))
	}
	execs := map[dtypes.DType]*Exec{}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16} {
		dt := dt
		e, err := NewExecAny(backend, func(in []*Node) []*Node {
			out := make([]*Node, len(in))
			for i, x := range in {
				out[i] = NewtonSchulz(x, 5, dt)
			}
			return out
		})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Finalize()
		if _, err := e.Exec(args...); err != nil { // compile
			b.Fatal(err)
		}
		execs[dt] = e
	}
	elapsed := map[dtypes.DType]time.Duration{}
	for range b.N {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16} {
			start := time.Now()
			out, err := execs[dt].Exec(args...)
			if err != nil {
				b.Fatal(err)
			}
			for _, o := range out {
				o.FinalizeAll()
			}
			elapsed[dt] += time.Since(start)
		}
	}
	n := float64(b.N)
	b.ReportMetric(elapsed[dtypes.Float32].Seconds()*1000/n, "f32_ms")
	b.ReportMetric(elapsed[dtypes.BFloat16].Seconds()*1000/n, "bf16_ms")
	b.ReportMetric(elapsed[dtypes.BFloat16].Seconds()/elapsed[dtypes.Float32].Seconds(), "bf16/f32")
}
