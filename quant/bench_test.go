package quant

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
)

func TestBenchOnTinySynthetic(t *testing.T) {
	w, err := SyntheticWeights("tiny", 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference()
	s6, _ := SchemeByName("int6-sd")
	// A stand-in evaluation: "val_bpb" = 1 + relative weight error, so the
	// delta must equal each row's WeightRMSE.
	eval := func(_ context.Context, x model.Weights) (float64, error) { return 1 + relativeRMSE(w, x), nil }
	var prog bytes.Buffer
	res, err := Bench(context.Background(), w, BenchConfig{
		Schemes:  []Scheme{ref, s6},
		Codecs:   []string{"zlib-9", "cm"},
		Layouts:  []Layout{LayoutRows, LayoutPacked},
		Eval:     eval,
		Progress: &prog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 8 || res.Params != w.NumParams() || res.BaselineBPB == nil || *res.BaselineBPB != 1 {
		t.Fatalf("%d rows, params %d, baseline %v", len(res.Rows), res.Params, res.BaselineBPB)
	}
	for _, r := range res.Rows {
		if r.ValBPBDelta == nil || *r.ValBPBDelta-r.WeightRMSE > 1e-12 || r.WeightRMSE-*r.ValBPBDelta > 1e-12 {
			t.Fatalf("%+v: delta should equal the weight error", r)
		}
		if r.ModelBytes <= 0 || r.BitsPerParam <= 0 || r.RatioToOrder0 <= 0.5 || r.CompressMBps <= 0 {
			t.Fatalf("implausible row %+v", r)
		}
		if r.Codec == "cm" && r.Layout == "rows" && r.RatioToOrder0 > 1.01 {
			t.Fatalf("cm on rows %.4f above the order-0 bound", r.RatioToOrder0)
		}
	}
	if best := res.Best(); len(best) != 2 || best[1].Scheme != "int6-sd" || best[1].ModelBytes >= best[0].ModelBytes {
		t.Fatalf("best rows %+v", best)
	}
	var tab bytes.Buffer
	if err := res.Table().Print(&tab); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tab.String(), "int6-sd") || !strings.Contains(prog.String(), "done") {
		t.Fatalf("table:\n%s\nprogress:\n%s", tab.String(), prog.String())
	}
	png := filepath.Join(t.TempDir(), "bench.png")
	if err := res.SavePNG(png); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("PNG not written: %v", err)
	}
}
