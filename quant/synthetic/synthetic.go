// Package synthetic draws deterministic weights shaped like a model
// preset's, for benchmarks and tests that need no trained checkpoint. It is
// tooling: golf's counted code does not include it.
package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/paramgolf/golf/model"
)

// Weights returns deterministic weights with the parameters of a
// model preset (model.Preset(preset).Params(): names, shapes, classes),
// drawn to look like trained ones where it matters for compression:
//
//	2-D w[r][c] = sigma * a_r * b_c * z
//
// with sigma = 0.4 (wide enough that the reference's 1/127 scale floor does
// not bind, as in a fully trained baseline), log-normal row and column gains
// a_r = exp(0.25 g), b_c = exp(0.2 g), and z standard normal in two rows of
// three and Student-t with 5 degrees of freedom (heavier tails, so a larger
// max/std) in the third. Control and Frozen parameters sit near their
// initial values (the registry's initialiser, e.g. scales 1, resid_mix
// (1, 0), q_gain 1.5) with small noise; other tensors are N(0, 0.02).
//
// No synthetic draw reproduces a trained model's entropy exactly; results on
// synthetic weights say how schemes and codecs rank, not what a real
// checkpoint will weigh.
func Weights(preset string, seed uint64) (model.Weights, error) {
	cfg, err := model.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("synthetic weights: %w", err)
	}
	// The registry's initial values, for the control parameters' centres.
	w, err := model.InitWeights(cfg, int64(seed))
	if err != nil {
		return nil, fmt.Errorf("synthetic weights: %w", err)
	}
	for i := range w {
		t := w[i]
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		switch {
		case t.Class == model.Control || t.Class == model.Frozen:
			for j := range t.Data {
				t.Data[j] += float32(0.05 * rng.NormFloat64())
			}
		case len(t.Shape) == 2:
			FillMatrix(t.Data, t.Shape[0], t.Shape[1], rng)
		default:
			for j := range t.Data {
				t.Data[j] = float32(0.02 * rng.NormFloat64())
			}
		}
	}
	return w, nil
}

// FillMatrix fills a row-major rows x cols matrix with the 2-D draw that
// Weights documents (row and column gains, Gaussian and Student-t rows).
func FillMatrix(data []float32, rows, cols int, rng *rand.Rand) {
	const sigma, rowSpread, colSpread, nu = 0.4, 0.25, 0.2, 5
	colGain := make([]float64, cols)
	for c := range colGain {
		colGain[c] = math.Exp(colSpread * rng.NormFloat64())
	}
	for r := range rows {
		a := sigma * math.Exp(rowSpread*rng.NormFloat64())
		studentT := r%3 == 2
		row := data[r*cols : (r+1)*cols]
		for c := range row {
			z := rng.NormFloat64()
			if studentT {
				var chi float64
				for range nu {
					g := rng.NormFloat64()
					chi += g * g
				}
				z /= math.Sqrt(chi / nu)
			}
			row[c] = float32(a * colGain[c] * z)
		}
	}
}
