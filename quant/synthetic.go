package quant

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/paramgolf/golf/model"
)

// SyntheticShape is one parameter of a synthetic model.
type SyntheticShape struct {
	Name  string
	Shape []int
}

// gptShapes lists the parameters of the challenge's GPT (tied embedding,
// grouped-query attention, U-Net skip weights) with the model package's
// names: vocab x dim embedding; per block the attention projections c_q
// [dim, dim], c_k and c_v [kvDim, dim], proj [dim, dim], the MLP fc
// [mlp*dim, dim] and proj [dim, mlp*dim], and the control parameters
// attn_scale, mlp_scale [dim], resid_mix [2, dim], q_gain [heads]; then
// skip_weights [layers/2, dim].
func gptShapes(vocab, dim, layers, heads, kvHeads, mlpMult int) []SyntheticShape {
	kvDim := dim / heads * kvHeads
	hidden := mlpMult * dim
	s := []SyntheticShape{{"tok_emb", []int{vocab, dim}}}
	for i := range layers {
		p := fmt.Sprintf("block_%d/", i)
		s = append(s,
			SyntheticShape{p + "attn/c_q", []int{dim, dim}},
			SyntheticShape{p + "attn/c_k", []int{kvDim, dim}},
			SyntheticShape{p + "attn/c_v", []int{kvDim, dim}},
			SyntheticShape{p + "attn/proj", []int{dim, dim}},
			SyntheticShape{p + "attn/q_gain", []int{heads}},
			SyntheticShape{p + "mlp/fc", []int{hidden, dim}},
			SyntheticShape{p + "mlp/proj", []int{dim, hidden}},
			SyntheticShape{p + "attn_scale", []int{dim}},
			SyntheticShape{p + "mlp_scale", []int{dim}},
			SyntheticShape{p + "resid_mix", []int{2, dim}},
		)
	}
	return append(s, SyntheticShape{"skip_weights", []int{layers / 2, dim}})
}

// SyntheticPresets are the model shapes SyntheticWeights knows: "baseline"
// is the challenge's 9x512 GPT (vocab 1024, 8 heads, 4 KV heads, MLP 2x,
// 17,059,912 parameters); "tiny" a 4x128 one (vocab 1024, 4 heads, 2 KV heads).
var SyntheticPresets = map[string][]SyntheticShape{
	"baseline": gptShapes(1024, 512, 9, 8, 4, 2),
	"tiny":     gptShapes(1024, 128, 4, 4, 2, 2),
}

// SyntheticWeights returns deterministic weights with the shapes of a preset,
// drawn to look like trained ones where it matters for compression:
//
//	2-D w[r][c] = sigma * a_r * b_c * z
//
// with sigma = 0.4 (wide enough that the reference's 1/127 scale floor does
// not bind, as in a fully trained baseline), log-normal row and column gains
// a_r = exp(0.25 g), b_c = exp(0.2 g), and z standard normal in two rows of
// three and Student-t with 5 degrees of freedom (heavier tails, so a larger
// max/std) in the third. Control parameters sit near their initial values
// (scales 1, resid_mix (1, 0), q_gain 1.5) with small noise.
//
// No synthetic draw reproduces a trained model's entropy exactly; results on
// synthetic weights say how schemes and codecs rank, not what a real
// checkpoint will weigh.
func SyntheticWeights(preset string, seed uint64) (model.Weights, error) {
	shapes, ok := SyntheticPresets[preset]
	if !ok {
		return nil, fmt.Errorf("no synthetic preset %q (have baseline, tiny)", preset)
	}
	w := make(model.Weights, len(shapes))
	for i, s := range shapes {
		rng := rand.New(rand.NewPCG(seed, uint64(i)+1))
		n := numElements(s.Shape)
		t := model.Tensor{Name: s.Name, Shape: append([]int(nil), s.Shape...), Data: make([]float32, n)}
		switch {
		case ClassOf(s.Name, s.Shape) == ClassControl:
			fillControl(t, rng)
		case len(s.Shape) == 2:
			fillMatrix(t.Data, s.Shape[0], s.Shape[1], rng)
		default:
			for j := range t.Data {
				t.Data[j] = float32(0.02 * rng.NormFloat64())
			}
		}
		w[i] = t
	}
	return w, nil
}

func fillControl(t model.Tensor, rng *rand.Rand) {
	base := 1.0
	switch {
	case strings.Contains(t.Name, "q_gain"):
		base = 1.5
	case strings.Contains(t.Name, "resid_mix"):
		half := len(t.Data) / 2
		for j := range t.Data {
			v := 0.0
			if j < half {
				v = 1
			}
			t.Data[j] = float32(v + 0.05*rng.NormFloat64())
		}
		return
	}
	for j := range t.Data {
		t.Data[j] = float32(base + 0.05*rng.NormFloat64())
	}
}

func fillMatrix(data []float32, rows, cols int, rng *rand.Rand) {
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
