package codec

import (
	"bytes"
	"testing"
)

// FuzzDecompress feeds arbitrary bytes to every decoder: each must return
// an error or exactly rawLen bytes, never panic or hang; and whatever a
// decoder accepts must be what the matching encoder would have produced
// a valid stream for (checked by re-encoding and decoding again).
func FuzzDecompress(f *testing.F) {
	h := Hint{Bits: 6, RowLen: 16}
	sample := weightSymbols(1, 8, 16, 6, 12.85, 0, 0)
	for i, c := range All() {
		enc, err := c.Compress(sample, h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), uint16(len(sample)), uint8(6), uint16(16), enc)
		bad := append([]byte(nil), enc...)
		if len(bad) > 3 {
			bad[len(bad)/2] ^= 0x5a
		}
		f.Add(uint8(i), uint16(len(sample)), uint8(6), uint16(16), bad)
		f.Add(uint8(i), uint16(0), uint8(0), uint16(0), []byte{})
		f.Add(uint8(i), uint16(300), uint8(0), uint16(0), []byte{2, 0xff, 0xff, 0xff, 0xff})
	}
	codecs := All()
	f.Fuzz(func(t *testing.T, which uint8, rawLen uint16, bits uint8, rowLen uint16, src []byte) {
		c := codecs[int(which)%len(codecs)]
		hint := Hint{RowLen: int(rowLen)}
		if b := int(bits) % 9; b >= 2 {
			hint.Bits = b
		}
		out, err := c.Decompress(src, int(rawLen), hint)
		if err != nil {
			return
		}
		if len(out) != int(rawLen) {
			t.Fatalf("%s: decoded %d bytes, asked for %d", c.Name(), len(out), rawLen)
		}
		if hint.Bits > 0 && c.Name() == "cm" {
			lo, hi := -(1 << (hint.Bits - 1)), 1<<(hint.Bits-1)-1
			for _, v := range out {
				if s := int(int8(v)); s < lo || s > hi {
					t.Fatalf("cm decoded symbol %d outside %d bits", s, hint.Bits)
				}
			}
		}
		enc, err := c.Compress(out, hint)
		if err != nil {
			t.Fatalf("%s: re-encoding decoded bytes: %v", c.Name(), err)
		}
		back, err := c.Decompress(enc, len(out), hint)
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("%s: re-encoded stream does not round-trip: %v", c.Name(), err)
		}
	})
}
