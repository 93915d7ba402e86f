package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/quant/synthetic"
)

func TestBenchOnTinySynthetic(t *testing.T) {
	w, err := synthetic.Weights("tiny", 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := model.Preset("tiny")
	ref := quant.Reference()
	s6, _ := quant.SchemeByName("int6-sd")
	// A stand-in evaluation: "val_bpb" = 1 + relative weight error, so the
	// delta must equal each row's WeightRMSE.
	eval := func(_ context.Context, x model.Weights) (float64, error) { return 1 + relativeRMSE(w, x), nil }
	var prog bytes.Buffer
	meta := quant.Meta{Model: cfg, Source: "synthetic tiny"}
	res, err := Run(context.Background(), w, Config{
		Schemes:  []quant.Scheme{ref, s6},
		Codecs:   []string{"zlib-9", "cm"},
		Packings: []Packing{{Layout: quant.LayoutRows}, {Layout: quant.LayoutCols, Group: quant.GroupClass, SortRows: true}},
		Meta:     meta,
		Eval:     eval,
		Code:     quant.CodeSize{Bytes: 1000},
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
		if r.ModelBytes <= 0 || r.BitsPerParam <= 0 || r.RatioToOrder0 <= 0.5 || r.CompressMBps <= 0 || r.TotalBytes != r.ModelBytes+1000 {
			t.Fatalf("implausible row %+v", r)
		}
		if r.Codec == "cm" && r.Packing == "rows" && r.RatioToOrder0 > 1.01 {
			t.Fatalf("cm on rows %.4f above the order-0 bound", r.RatioToOrder0)
		}
	}
	// The bytes of a row are what quant.Pack writes for the same options.
	q, err := quant.Quantize(context.Background(), w, s6, quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := quant.Pack(context.Background(), meta, q, Packing{Layout: quant.LayoutCols, Group: quant.GroupClass, SortRows: true}.Options("cm"))
	if err != nil {
		t.Fatal(err)
	}
	if row := res.Rows[7]; row.Scheme != "int6-sd" || row.Codec != "cm" || row.ModelBytes != len(data) {
		t.Fatalf("row %+v, quant.Pack wrote %d bytes", row, len(data))
	}
	if best := res.Best(); len(best) != 2 || best[1].Scheme != "int6-sd" || best[1].ModelBytes >= best[0].ModelBytes {
		t.Fatalf("best rows %+v", best)
	}
	var tab bytes.Buffer
	if err := res.Table().Print(&tab); err != nil {
		t.Fatal(err)
	}
	// Grouped by scheme: each scheme's name appears once.
	if strings.Count(tab.String(), "int6-sd") != 1 || strings.Count(tab.String(), "int8-ref") != 1 || !strings.Contains(prog.String(), "done") {
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

// Labels of points that nearly coincide must still not overlap each other
// or any point.
func TestPlaceLabelsDoNotOverlap(t *testing.T) {
	sty := plot.New().X.Tick.Label // the style SavePNG labels with
	sty.Font.Size = vg.Points(10)
	var pts []vg.Point
	var labels []string
	for i := range 12 {
		pts = append(pts, vg.Point{X: vg.Length(200 + 3*(i%4)), Y: vg.Length(200 + 2*(i/4))})
		labels = append(labels, strings.Repeat("x", 5+i)+" (cm)")
	}
	area := vg.Rectangle{Max: vg.Point{X: 700, Y: 500}}
	boxes := placeLabels(pts, labels, sty, vg.Points(4), area)
	for i, a := range boxes {
		for j, b := range boxes[:i] {
			if a.r.Min.X < b.r.Max.X && b.r.Min.X < a.r.Max.X && a.r.Min.Y < b.r.Max.Y && b.r.Min.Y < a.r.Max.Y {
				t.Fatalf("labels %d %v and %d %v overlap", i, a.r, j, b.r)
			}
		}
		for j, p := range pts {
			if p.X+4 > a.r.Min.X && p.X-4 < a.r.Max.X && p.Y+4 > a.r.Min.Y && p.Y-4 < a.r.Max.Y {
				t.Fatalf("label %d %v covers point %d %v", i, a.r, j, p)
			}
		}
	}
}

// Each installed external compressor round-trips bytes exactly; the ones
// not installed are skipped by name.
func TestExternalsRoundTrip(t *testing.T) {
	src := make([]byte, 5000)
	for i := range src {
		src[i] = byte(i * i % 251)
	}
	for _, e := range Externals() {
		if !e.Available() {
			t.Logf("%s not installed: %s skipped", e.Tool(), e.Name())
			continue
		}
		z, err := e.Compress(src, codec.Hint{})
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		back, err := e.Decompress(z, len(src), codec.Hint{})
		if err != nil || !bytes.Equal(back, src) {
			t.Fatalf("%s: round trip: %v", e.Name(), err)
		}
		if _, err := e.Decompress(z, len(src)+1, codec.Hint{}); err == nil {
			t.Errorf("%s: wrong length accepted", e.Name())
		}
		t.Logf("%s: %d -> %d bytes", e.Name(), len(src), len(z))
	}
}
