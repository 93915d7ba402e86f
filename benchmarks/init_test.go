package benchmarks

// How much of a trained checkpoint's quantized matrices its initialisation
// still explains, the side information a coder could take from the seed:
//
//	GOLF_CHECKPOINT=DIR go test ./benchmarks -run XXX -bench InitInformation -benchtime 1x
//
// The int6-sd symbols' empirical entropy given each symbol's init value
// (the seed's, in quarter steps of its row's scale) against without it,
// over the int matrices; see the README's figures for measured values.
// The share falls as training moves away from the init, and the record's
// decoupled weight decay (Muon lr 0.028, wd 0.095, about 5,000 steps at a
// mean lr multiplier of 0.58) scales the init by exp(-7.7): golf's coder
// does not use it.

import (
	"context"
	"math"
	"os"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/train"
)

// conditionalEntropy is the empirical H(symbol | context) in bits per
// symbol, over counts of (context, symbol) pairs.
func conditionalEntropy(pairs map[[2]int]int, n int) float64 {
	var joint, ctx float64
	byCtx := map[int]int{}
	for k, v := range pairs {
		p := float64(v) / float64(n)
		joint -= p * math.Log2(p)
		byCtx[k[0]] += v
	}
	for _, v := range byCtx {
		p := float64(v) / float64(n)
		ctx -= p * math.Log2(p)
	}
	return joint - ctx
}

func BenchmarkInitInformation(b *testing.B) {
	dir := os.Getenv("GOLF_CHECKPOINT")
	if dir == "" {
		b.Skip("set GOLF_CHECKPOINT to a golf train checkpoint directory")
	}
	ck, err := train.LoadCheckpoint(dir)
	if err != nil {
		b.Fatal(err)
	}
	init, err := model.InitWeights(ck.Config, ck.State.Settings.Seed)
	if err != nil {
		b.Fatal(err)
	}
	s, err := quant.SchemeByName("int6-sd")
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		q, err := quant.Quantize(context.Background(), ck.Weights, s, quant.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var plain, given float64
		for i := range q.Tensors {
			t := &q.Tensors[i]
			if t.Format != quant.FormatInt || len(t.Shape) != 2 {
				continue
			}
			cols := t.Shape[1]
			raw := make([]byte, len(t.Symbols))
			withInit := map[[2]int]int{}
			for j, v := range t.Symbols {
				raw[j] = byte(v)
				// The init in quarter steps of the row's scale.
				c := int(math.Round(4 * float64(init[i].Data[j]) / float64(t.Scales[j/cols])))
				withInit[[2]int{c, int(v)}]++
			}
			n := len(t.Symbols)
			plain += codec.Order0Bits(raw) / 8
			given += conditionalEntropy(withInit, n) * float64(n) / 8
		}
		b.ReportMetric(plain, "order0-bytes")
		b.ReportMetric(given, "given-init-bytes")
		b.ReportMetric(given/plain, "ratio")
	}
}
