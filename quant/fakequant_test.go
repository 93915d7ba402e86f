package quant

import (
	"math"
	"testing"

	"github.com/paramgolf/golf/model"
)

func TestFakeQuantByHand(t *testing.T) {
	// Row (1, -2, 0.5, 4): max-abs clip 4, int3 -> qmax 3, s = 4/3.
	// w/s = 0.75, -1.5, 0.375, 3 -> round-half-even 1, -2, 0, 3.
	f := FakeQuantSpec{Bits: 3, Clip: Clip{ClipMaxAbs, 0}}
	got, err := f.Apply([]float32{1, -2, 0.5, 4}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	s := float32(4) / 3
	want := []float32{s, -2 * s, 0, 3 * s}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Std clip k=1 on (1,2,3,4): c = sqrt(5/3) = 1.2910, int2 -> qmax 1,
	// s = 1.2910: w/s = 0.77, 1.55, 2.32, 3.10 -> 1, 2->1, 1, 1 (clamped).
	f = FakeQuantSpec{Bits: 2, Clip: Clip{ClipStd, 1}}
	got, _ = f.Apply([]float32{1, 2, 3, 4}, 1, 4)
	c := float32(math.Sqrt(5.0 / 3))
	for i, v := range got {
		if math.Abs(float64(v-c)) > 1e-6 {
			t.Fatalf("value %d = %v, want %v", i, v, c)
		}
	}
	if _, err := (FakeQuantSpec{Bits: 6, Clip: Clip{ClipMSE, 8}}).Apply([]float32{1}, 1, 1); err == nil {
		t.Fatal("MSE clip accepted for QAT")
	}
}

// Fake quantization with a rule's spec gives the values the exporter's
// round trip gives, up to the fp16 rounding of the scale: at most one step
// apart, and only for the few values whose rounding the scale change flips.
func TestFakeQuantMatchesExport(t *testing.T) {
	s, _ := SchemeByName("int6-sd")
	f, err := FakeQuantFor(s.Matrix)
	if err != nil {
		t.Fatal(err)
	}
	w := randomMatrix(4, 32, 256, true)
	fq, _ := f.Apply(w, 32, 256)
	sym := make([]int8, 256)
	flipped := 0
	for r := range 32 {
		row := w[r*256 : (r+1)*256]
		sc := quantizeRow(row, sym, s.Matrix, FormatFP16)
		for i := range row {
			exp := float64(sym[i]) * float64(sc)
			d := math.Abs(exp - float64(fq[r*256+i]))
			if d > float64(sc)*(1.0/1024)*31+1e-7 {
				flipped++
				if d > 1.01*float64(sc) {
					t.Fatalf("row %d col %d: export %v, fake quant %v: more than a step apart", r, i, exp, fq[r*256+i])
				}
			}
		}
	}
	if flipped > len(w)/200 {
		t.Fatalf("%d of %d values differ by a rounding flip", flipped, len(w))
	}
}

// QATFor takes each matrix class's bits and clip from the scheme.
func TestQATForScheme(t *testing.T) {
	rec, _ := SchemeByName("record")
	q, err := QATFor(rec)
	if err != nil {
		t.Fatal(err)
	}
	if q.Bits != 6 || q.ClipStd != 13 || q.For(model.Attention).ClipStd != 13 ||
		q.For(model.MLP).Bits != 6 || q.For(model.MLP).ClipStd != 11.5 {
		t.Fatalf("record QAT %+v (mlp %+v)", q, q.For(model.MLP))
	}
	sd, _ := SchemeByName("int6-sd")
	if q, err := QATFor(sd); err != nil || q.Bits != 6 || q.ClipStd != 12.85 || q.ByClass != nil {
		t.Fatalf("int6-sd QAT %+v, %v", q, err)
	}
	// A clip searched per row (MSE) has no closed form to train against.
	mse, _ := SchemeByName("int6-mse")
	if _, err := QATFor(mse); err == nil {
		t.Fatal("int6-mse accepted for QAT")
	}
	cfg, _ := model.Preset("tiny")
	cfg.QAT = q
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
