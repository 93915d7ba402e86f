package train

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotLossWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loss.png")
	h := History{
		Train: []TrainPoint{{1, 100, 6.9, 1}, {2, 200, 6.1, 1}, {3, 300, 5.4, 1}},
		Val:   []ValPoint{{0, 0, 6.93, 4.1, 0}, {3, 300, 5.5, 3.2, 0}},
	}
	if err := PlotLoss(path, "tiny", h); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
		t.Fatalf("image is %v, want a readable size", b)
	}
	// Not blank: the curves put colours other than white on the canvas.
	colored := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if !(r == g && g == bl) {
				colored++
			}
		}
	}
	if colored < 50 {
		t.Fatalf("only %d coloured pixels: the curves are missing", colored)
	}
	if err := PlotLoss(filepath.Join(t.TempDir(), "no", "dir.png"), "x", h); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
}
