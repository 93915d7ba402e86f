package quant

import (
	"context"
	"testing"
)

// FuzzReadArtifact feeds arbitrary bytes to the artifact decoder, both as
// they are (the checksum rejects almost all) and with the checksum fixed up
// (so the header and stream checks behind it are exercised). It must return
// an error or a consistent artifact, never panic or hang.
func FuzzReadArtifact(f *testing.F) {
	q := smallQuantized(f)
	for _, c := range []string{"store", "cm", "fse", "zstd-best"} {
		for _, l := range []Layout{LayoutRows, LayoutCols, LayoutPacked} {
			data, _, err := Pack(context.Background(), Meta{}, q, PackOptions{Codec: c, Layout: l})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, false)
		}
	}
	f.Add([]byte("GOLFPACK\x01"), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			data = withCRC(data)
		}
		a, err := DecodeArtifact(data)
		if err != nil {
			return
		}
		// An accepted artifact must be internally consistent: re-packing it
		// and decoding again gives the same tensors.
		w := a.Weights()
		if len(w) != len(a.Quantized.Tensors) {
			t.Fatalf("%d weights for %d tensors", len(w), len(a.Quantized.Tensors))
		}
		for i, x := range w {
			if err := x.Validate(); err != nil {
				t.Fatalf("tensor %d: %v", i, err)
			}
		}
		again, _, err := Pack(context.Background(), a.Meta, a.Quantized, PackOptions{Codec: "store"})
		if err != nil {
			t.Fatalf("accepted artifact does not re-pack: %v", err)
		}
		b, err := DecodeArtifact(again)
		if err != nil {
			t.Fatalf("re-packed artifact does not decode: %v", err)
		}
		for i := range a.Quantized.Tensors {
			x, y := &a.Quantized.Tensors[i], &b.Quantized.Tensors[i]
			if !equalSlices(x.Symbols, y.Symbols) || !equalSlices(x.Scales, y.Scales) || !equalSlices(x.Values, y.Values) {
				t.Fatalf("tensor %d changed on re-pack", i)
			}
		}
	})
}
