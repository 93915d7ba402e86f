package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/synthetic"
)

// The source entropy of synthetic weights is a floor under golf's best
// coder and a close one (cm learns the draw's column gains), it is given
// only for schemes whose symbols are the bins of the drawn values, and the
// target table shows it against the best general-purpose compressor.
func TestSourceEntropyFloor(t *testing.T) {
	d, err := synthetic.NewDraw("tiny", 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := model.Preset("tiny")
	floor := SourceEntropy(d)
	s6, _ := quant.SchemeByName("int6-sd")
	hs, err := quant.HessiansFromTensors(synthetic.Hessians(d.Weights, 5))
	if err != nil {
		t.Fatal(err)
	}
	opts := quant.Options{Hessians: hs}
	// int6-sd rounded with the float32 scale it does not store: its symbols
	// are not the bins of the stored divisor.
	exact := s6
	exact.Name, exact.Matrix.RoundWithFP32Scale, exact.Embedding.RoundWithFP32Scale = "int6-sd-fp32", true, true
	schemes := []quant.Scheme{exact}
	for _, name := range []string{"int8-ref", "gptq-int6", "int6-mse"} {
		s, _ := quant.SchemeByName(name)
		schemes = append(schemes, s)
	}
	for _, s := range schemes {
		name := s.Name
		q, err := quant.Quantize(context.Background(), d.Weights, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := floor(s, q); ok {
			t.Errorf("%s: a source entropy for symbols that are not the bins of the drawn values", name)
		}
	}
	res, err := Run(context.Background(), d.Weights, Config{
		Schemes:       []quant.Scheme{s6},
		Codecs:        []string{"cm"},
		Packings:      []Packing{{Layout: quant.LayoutRows, Group: quant.GroupClass}},
		Meta:          quant.Meta{Model: cfg, Source: "synthetic tiny"},
		Options:       opts,
		SourceEntropy: floor,
	})
	if err != nil {
		t.Fatal(err)
	}
	row := res.Rows[0]
	if row.SourceBytes == nil {
		t.Fatal("int6-sd on synthetic weights: no source entropy")
	}
	src := *row.SourceBytes
	if r := float64(row.SymbolBytes) / src; r < 1 || r > 1.03 {
		t.Errorf("cm %d symbol bytes, source entropy %.0f: ratio %.4f, want in [1, 1.03]", row.SymbolBytes, src, r)
	}
	// A general-purpose row 2 % above the floor: the floor is 0.98 of it,
	// above 0.97, so the table says no coder meets the target.
	general := row
	general.Codec, general.SymbolBytes, general.SourceBytes = "lrzip-z9", int(1.02*src), nil
	res.Rows = append(res.Rows, general)
	tg := res.Targets()
	if len(tg) != 1 || tg[0].SourceToBest == nil {
		t.Fatalf("targets %+v: want one with the floor", tg)
	}
	if got := *tg[0].SourceToBest; got < 0.979 || got > 0.981 {
		t.Errorf("floor/best %.4f, want 0.98", got)
	}
	var out bytes.Buffer
	if err := res.TargetTable().Print(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "floor/best") || !strings.Contains(out.String(), "0.9804") {
		t.Errorf("target table lacks the floor:\n%s", out.String())
	}
}
