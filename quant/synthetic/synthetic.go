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
	d, err := NewDraw(preset, seed)
	if err != nil {
		return nil, err
	}
	return d.Weights, nil
}

// Draw is one set of synthetic weights with the parameters its matrices
// were drawn from, for measurements that need the source's entropy.
type Draw struct {
	Weights model.Weights
	// Sources holds, by tensor name, the parameters of every matrix
	// FillMatrix drew.
	Sources map[string]*Source
}

// NewDraw returns the weights Weights(preset, seed) returns, with their
// sources.
func NewDraw(preset string, seed uint64) (*Draw, error) {
	cfg, err := model.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("synthetic weights: %w", err)
	}
	// The registry's initial values, for the control parameters' centres.
	w, err := model.InitWeights(cfg, int64(seed))
	if err != nil {
		return nil, fmt.Errorf("synthetic weights: %w", err)
	}
	d := &Draw{Weights: w, Sources: map[string]*Source{}}
	for i := range w {
		t := w[i]
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		switch {
		case t.Class == model.Control || t.Class == model.Frozen:
			for j := range t.Data {
				t.Data[j] += float32(0.05 * rng.NormFloat64())
			}
		case len(t.Shape) == 2:
			d.Sources[t.Name] = FillMatrix(t.Data, t.Shape[0], t.Shape[1], rng)
		default:
			for j := range t.Data {
				t.Data[j] = float32(0.02 * rng.NormFloat64())
			}
		}
	}
	return d, nil
}

// FillMatrix fills a row-major rows x cols matrix with the 2-D draw that
// Weights documents (row and column gains, Gaussian and Student-t rows) and
// returns the draw's parameters.
func FillMatrix(data []float32, rows, cols int, rng *rand.Rand) *Source {
	const sigma, rowSpread, colSpread = 0.4, 0.25, 0.2
	src := &Source{RowGain: make([]float64, rows), ColGain: make([]float64, cols)}
	for c := range src.ColGain {
		src.ColGain[c] = math.Exp(colSpread * rng.NormFloat64())
	}
	for r := range rows {
		a := sigma * math.Exp(rowSpread*rng.NormFloat64())
		src.RowGain[r] = a
		studentT := src.StudentT(r)
		row := data[r*cols : (r+1)*cols]
		for c := range row {
			z := rng.NormFloat64()
			if studentT {
				var chi float64
				for range studentNu {
					g := rng.NormFloat64()
					chi += g * g
				}
				z /= math.Sqrt(chi / studentNu)
			}
			row[c] = float32(a * src.ColGain[c] * z)
		}
	}
	return src
}

// Hessians returns synthetic GPTQ input Hessians for every matrix of w that
// GPTQ quantizes (classes attention, mlp, embedding and head; 2-D), as
// tensors named after their matrices (the form quant.HessiansFromTensors
// reads): for a matrix with n inputs
//
//	H = D (I/2 + V Vᵀ/16) D,  D = diag(exp(0.5 g_i)),  V: n x 16 standard normal,
//
// correlated features of log-normal scales, positive definite. Like the
// weights they are for benchmarks: a trained model's Hessians come from
// calibration on its training data.
func Hessians(w model.Weights, seed uint64) []model.Tensor {
	const rank = 16
	var out []model.Tensor
	for i, t := range w {
		if len(t.Shape) != 2 || !(t.Class.IsMatrix() || t.Class == model.Embedding || t.Class == model.Head) {
			continue
		}
		n := t.Shape[1]
		rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(i)+1))
		d := make([]float64, n)
		for j := range d {
			d[j] = math.Exp(0.5 * rng.NormFloat64())
		}
		v := make([]float64, n*rank)
		for j := range v {
			v[j] = rng.NormFloat64()
		}
		h := make([]float32, n*n)
		for a := range n {
			va := v[a*rank : (a+1)*rank]
			for b := a; b < n; b++ {
				vb := v[b*rank : (b+1)*rank]
				var s float64
				for k := range va {
					s += va[k] * vb[k]
				}
				s /= rank
				if a == b {
					s += 0.5
				}
				x := float32(s * d[a] * d[b])
				h[a*n+b], h[b*n+a] = x, x
			}
		}
		out = append(out, model.Tensor{Name: t.Name, Shape: []int{n, n}, Data: h})
	}
	return out
}
