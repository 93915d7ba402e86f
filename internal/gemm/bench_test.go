package gemm

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// benchmarkMLPGradient times the forward and backward pass of a two-layer
// ReLU MLP, x [tokens, in] -> [tokens, hidden] -> [tokens, in], with the
// given linear product. gomlx's own gradient materialises [tokens, in,
// hidden] per weight; the gemm one only matmuls. Compare the "gemm" and
// "builtin" sub-benchmarks of one run: their ratio is the figure.
func benchmarkMLPGradient(b *testing.B, linear func(x, w *Node) *Node) {
	const tokens, in, hidden = 512, 128, 256
	rng := rand.New(rand.NewPCG(1, 1))
	mk := func(dims ...int) *tensors.Tensor {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	x, w1, w2 := mk(tokens, in), mk(hidden, in), mk(in, hidden)
	exec, err := graph.NewExec(backend(b), func(x, w1, w2 *Node) []*Node {
		h := graph.Max(linear(x, w1), graph.ScalarZero(x.Graph(), x.DType()))
		loss := graph.ReduceAllSum(graph.Square(linear(h, w2)))
		return graph.Gradient(loss, w1, w2)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer exec.Finalize()
	if _, err := exec.Exec(x, w1, w2); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := exec.Exec(x, w1, w2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*tokens)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkMLPGradient(b *testing.B) {
	b.Run("gemm", func(b *testing.B) { benchmarkMLPGradient(b, Linear) })
	b.Run("builtin", func(b *testing.B) { benchmarkMLPGradient(b, LinearBuiltinGradient) })
}
