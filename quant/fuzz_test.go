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
	// Artifacts with every optional part: LQER, protected groups, row
	// orders, per-class streams.
	rq := smallRecordQuantized(f)
	for _, c := range []string{"store", "cm"} {
		for _, l := range []Layout{LayoutRows, LayoutCols} {
			data, _, err := Pack(context.Background(), Meta{}, rq, PackOptions{Codec: c, Layout: l, Group: GroupClass, SortRows: true})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, false)
		}
	}
	f.Add([]byte("GOLFPACK\x03"), true)
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

// smallRecordQuantized is smallQuantized's tensors under GPTQ with LQER
// (rank 2 on the top 2, groups of 4) and AWQ-lite (one group of 2 columns).
func smallRecordQuantized(t testing.TB) *Quantized {
	t.Helper()
	q := smallQuantized(t)
	w := q.Dequantize()
	hs := map[string]*Hessian{}
	for _, x := range w {
		if len(x.Shape) == 2 {
			h := NewHessian(x.Shape[1])
			for i := range x.Shape[1] {
				h.Sum[i*x.Shape[1]+i] = float64(1 + i)
				if i > 0 {
					h.Sum[i*x.Shape[1]+i-1], h.Sum[(i-1)*x.Shape[1]+i] = 0.3, 0.3
				}
			}
			h.Count = 1
			hs[x.Name] = h
		}
	}
	s, _ := SchemeByName("int6-sd")
	s.KeepMaxElements = 8
	s.Matrix.GPTQ, s.Embedding.GPTQ = true, true
	s.LQER = &LQEROptions{Rank: 2, TopK: 2, Group: 4, FactorBits: 4}
	s.AWQ = &AWQOptions{GroupSize: 2, TopK: 1, Bits: 8}
	rq, err := Quantize(context.Background(), w, s, Options{Hessians: hs})
	if err != nil {
		t.Fatal(err)
	}
	return rq
}

// FuzzDecodePermutation: any bytes decode to a valid permutation or an
// error, and a valid one re-encodes to the same bytes.
func FuzzDecodePermutation(f *testing.F) {
	for _, n := range []int{0, 1, 5, 40} {
		p := make([]int, n)
		for i := range p {
			p[i] = n - 1 - i
		}
		b, _ := EncodePermutation(p)
		f.Add(b, uint8(n))
	}
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		p, err := DecodePermutation(b, int(n))
		if err != nil {
			return
		}
		if err := checkPermutation(p, int(n)); err != nil {
			t.Fatal(err)
		}
		again, err := EncodePermutation(p)
		if err != nil || string(again) != string(b) {
			t.Fatalf("re-encoding gives %x, read %x (%v)", again, b, err)
		}
	})
}
