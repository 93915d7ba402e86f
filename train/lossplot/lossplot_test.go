package lossplot

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/paramgolf/golf/train"
)

func TestWritePNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loss.png")
	h := train.History{
		Train: []train.TrainPoint{
			{Step: 1, TrainTimeMs: 100, Loss: 6.9, LRScale: 1},
			{Step: 2, TrainTimeMs: 200, Loss: 6.1, LRScale: 1},
			{Step: 3, TrainTimeMs: 300, Loss: 5.4, LRScale: 1},
		},
		Val: []train.ValPoint{
			{Step: 0, TrainTimeMs: 0, ValLoss: 6.93, ValBPB: 4.1},
			{Step: 3, TrainTimeMs: 300, ValLoss: 5.5, ValBPB: 3.2},
		},
	}
	if err := Write(path, "tiny", h); err != nil {
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
	if err := Write(filepath.Join(t.TempDir(), "no", "dir.png"), "x", h); err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
}
