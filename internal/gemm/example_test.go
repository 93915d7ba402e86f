package gemm_test

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/gemm"
)

// ExampleLinear computes y = x·wᵀ for a PyTorch-layout weight w [out, in]
// and the gradients of Σy: dx[i, k] = Σ_j w[j, k] and dw[j, k] = Σ_i x[i, k],
// both built as matmuls.
func ExampleLinear() {
	backend, _, err := compute.Open("")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backend.Finalize()
	x := [][]float32{{1, 2}, {3, 4}, {5, 6}} // [3 tokens, 2 in]
	w := [][]float32{{1, 0}, {1, 1}}         // [2 out, 2 in]
	exec, err := graph.NewExec(backend, func(x, w *graph.Node) []*graph.Node {
		y := gemm.Linear(x, w)
		grads := graph.Gradient(graph.ReduceAllSum(y), x, w)
		return []*graph.Node{y, grads[0], grads[1]}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer exec.Finalize()
	out, err := exec.Exec(x, w)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, name := range []string{"y", "dx", "dw"} {
		fmt.Println(name, tensors.MustCopyFlatData[float32](out[i]))
	}
	// Output:
	// y [1 3 3 7 5 11]
	// dx [2 1 2 1 2 1]
	// dw [9 12 9 12]
}
