package synthetic_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/paramgolf/golf/quant/synthetic"
)

// The entropy of a drawn matrix's int6 symbols under the distribution it
// was drawn from: the floor no coder of those symbols goes below.
func ExampleSource_SymbolEntropy() {
	const rows, cols, qmax = 64, 512, 31
	w := make([]float32, rows*cols)
	src := synthetic.FillMatrix(w, rows, cols, rand.New(rand.NewPCG(1, 2)))
	// Round to nearest at a clip of 12.85 standard deviations per row, as
	// the int6-sd scheme does: the divisor is clip/qmax.
	divisors := make([]float32, rows)
	for r := range rows {
		var ss float64
		for _, v := range w[r*cols : (r+1)*cols] {
			ss += float64(v) * float64(v)
		}
		divisors[r] = float32(12.85 * math.Sqrt(ss/cols) / qmax)
	}
	bits, err := src.SymbolEntropy(divisors, qmax)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.2f bits per symbol, %.0f bytes\n", bits/(rows*cols), bits/8)
	// Output:
	// 3.26 bits per symbol, 13367 bytes
}
