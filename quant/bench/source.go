package bench

import (
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/synthetic"
)

// SourceEntropy returns a Config.SourceEntropy for weights drawn by d: the
// entropy in bits of q's int symbols under the distribution d drew them
// from (synthetic.Source.SymbolEntropy, summed), where every int tensor was
// rounded to the nearest step of its stored per-row scale (SD clip, no
// GPTQ, no protected groups, no binding scale floor, not rounded with the
// unstored float32 scale), so that its symbols are the bins of the drawn
// values; ok false otherwise.
func SourceEntropy(d *synthetic.Draw) func(s quant.Scheme, q *quant.Quantized) (bits float64, ok bool) {
	return func(s quant.Scheme, q *quant.Quantized) (bits float64, ok bool) {
		for i := range q.Tensors {
			t := &q.Tensors[i]
			if t.Format != quant.FormatInt {
				continue
			}
			r := s.RuleFor(t.Shape, t.Class)
			src := d.Sources[t.Name]
			if src == nil || r.GPTQ || r.PerTensor || r.RoundWithFP32Scale || r.Clip.Method != quant.ClipStd || t.Protected != nil ||
				len(t.Shape) != 2 || len(t.Scales) != t.Shape[0] {
				return 0, false
			}
			if r.ScaleFloor > 0 {
				for _, sc := range t.Scales {
					if float64(sc) <= float64(r.ScaleFloor)*(1+1.0/1024) {
						return 0, false
					}
				}
			}
			h, err := src.SymbolEntropy(t.Scales, r.QMax())
			if err != nil {
				return 0, false
			}
			bits += h
		}
		return bits, true
	}
}
