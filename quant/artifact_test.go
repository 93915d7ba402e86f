package quant

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/quant/synthetic"
)

// tinyMeta is the metadata of synthetic tiny weights.
func tinyMeta(t testing.TB) Meta {
	t.Helper()
	cfg, err := model.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	return Meta{Model: cfg, Settings: EvalSettings{Preset: "tiny", SeqLen: 256}, Source: "synthetic tiny"}
}

func tinyQuantized(t testing.TB, scheme string) *Quantized {
	t.Helper()
	w, err := synthetic.Weights("tiny", 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := SchemeByName(scheme)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Quantize(context.Background(), w, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func sameQuantized(t *testing.T, a, b *Quantized) {
	t.Helper()
	if a.Scheme != b.Scheme || len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("scheme %q/%q, %d/%d tensors", a.Scheme, b.Scheme, len(a.Tensors), len(b.Tensors))
	}
	for i := range a.Tensors {
		x, y := &a.Tensors[i], &b.Tensors[i]
		if x.Name != y.Name || x.Class != y.Class || x.Format != y.Format || x.Bits != y.Bits ||
			!equalSlices(x.Shape, y.Shape) || !equalSlices(x.Symbols, y.Symbols) ||
			!equalSlices(x.Scales, y.Scales) || !equalSlices(x.Values, y.Values) {
			t.Fatalf("tensor %d (%s) differs after the round trip", i, x.Name)
		}
	}
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestArtifactRoundTripEveryCodecAndLayout(t *testing.T) {
	q := tinyQuantized(t, "int6-mse")
	want := q.Dequantize()
	type combo struct {
		codec  string
		layout Layout
	}
	var combos []combo
	for _, c := range append(codec.BuiltinNames(), AutoCodec) {
		combos = append(combos, combo{c, LayoutRows})
	}
	combos = append(combos, combo{"cm", LayoutCols}, combo{"zstd-best", LayoutCols}, combo{"cm", LayoutPacked}, combo{"fse", LayoutPacked})
	for _, cl := range combos {
		c, l := cl.codec, cl.layout
		{
			data, rep, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: c, Layout: l})
			if err != nil {
				t.Fatalf("%s/%v: %v", c, l, err)
			}
			if rep.FileBytes != len(data) || rep.HeaderBytes+rep.SymbolBytes+rep.FP16Bytes+rep.FP32Bytes+rep.SideBytes+rep.OrderBytes+4 != len(data) {
				t.Fatalf("%s/%v: report sizes %+v do not add up to %d bytes", c, l, rep, len(data))
			}
			a, err := DecodeArtifact(data)
			if err != nil {
				t.Fatalf("%s/%v: %v", c, l, err)
			}
			cfg, _, err := a.Model()
			if err != nil || !reflect.DeepEqual(cfg, tinyMeta(t).Model) || !reflect.DeepEqual(a.Meta, tinyMeta(t)) {
				t.Fatalf("meta %+v, model error %v", a.Meta, err)
			}
			sameQuantized(t, q, a.Quantized)
			got := a.Weights()
			for i := range want {
				if !equalSlices(want[i].Data, got[i].Data) {
					t.Fatalf("%s/%v: tensor %s dequantizes differently", c, l, want[i].Name)
				}
			}
		}
	}
}

func TestArtifactAutoPicksTheSmallest(t *testing.T) {
	q := tinyQuantized(t, "int6-sd")
	auto, _, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: AutoCodec, AutoLayout: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codec.BuiltinNames() {
		for _, l := range []Layout{LayoutRows, LayoutCols} {
			one, _, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: c, Layout: l})
			if err != nil {
				t.Fatal(err)
			}
			if len(auto) > len(one) {
				t.Errorf("auto: %d bytes, %s/%v alone: %d", len(auto), c, l, len(one))
			}
		}
	}
}

func TestReadArtifactFile(t *testing.T) {
	q := tinyQuantized(t, "int8-ref")
	data, _, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: "zstd-best"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.golf")
	if err := WriteArtifact(path, data); err != nil {
		t.Fatal(err)
	}
	a, err := ReadArtifact(path)
	if err != nil {
		t.Fatal(err)
	}
	sameQuantized(t, q, a.Quantized)

	// Truncations and bit flips anywhere are reported, naming the file.
	for _, cut := range []int{0, 5, 9, len(data) / 2, len(data) - 1} {
		os.WriteFile(path, data[:cut], 0o644)
		if _, err := ReadArtifact(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("truncated to %d bytes: error %v", cut, err)
		}
	}
	for _, at := range []int{3, 8, 20, len(data) / 3, len(data) - 2} {
		bad := append([]byte(nil), data...)
		bad[at] ^= 0x10
		os.WriteFile(path, bad, 0o644)
		_, err := ReadArtifact(path)
		var ae *ArtifactError
		if !errors.As(err, &ae) {
			t.Errorf("flip at %d: error %v, want an ArtifactError", at, err)
		}
	}
	if _, err := ReadArtifact(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// withCRC recomputes the trailing checksum so a test (or the fuzzer) can
// reach the checks behind it.
func withCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	out := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], castagnoli))
	return out
}

// splitArtifact returns the decompressed header table and the payload of
// artifact bytes.
func splitArtifact(t *testing.T, data []byte, headerBytes int) (table, payload []byte) {
	t.Helper()
	r := &reader{b: data, pos: len(artifactMagic) + 1}
	name := string(r.bytes("codec", 64))
	raw := r.uv("raw", 1<<30)
	size := r.uv("size", 1<<30)
	c, err := codec.ByName(name)
	if err != nil || r.err != nil {
		t.Fatal(err, r.err)
	}
	table, err = c.Decompress(data[r.pos:r.pos+size], raw, codec.Hint{})
	if err != nil {
		t.Fatal(err)
	}
	return table, data[headerBytes : len(data)-4]
}

// smallQuantized is a few small tensors of every format, for tests that
// decode an artifact many times.
func smallQuantized(t testing.TB) *Quantized {
	t.Helper()
	w := model.Weights{
		{Name: "tok_emb", Shape: []int{16, 8}, Class: model.Embedding, Data: make([]float32, 128)},
		{Name: "block_0/attn/c_q", Shape: []int{8, 8}, Class: model.Attention, Data: make([]float32, 64)},
		{Name: "block_0/norm", Shape: []int{8}, Class: model.Table, Data: make([]float32, 8)},
		{Name: "block_0/attn_scale", Shape: []int{8}, Class: model.Control, Data: make([]float32, 8)},
		{Name: "block_0/mlp/fc", Shape: []int{2, 4, 8}, Class: model.MLP, Data: make([]float32, 64)},
	}
	for i := range w {
		for j := range w[i].Data {
			w[i].Data[j] = float32((i*31+j*17)%23-11) / 7
		}
	}
	s, _ := SchemeByName("int6-sd")
	s.KeepMaxElements = 8
	q, err := Quantize(context.Background(), w, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDecodeArtifactRejectsInconsistentTables(t *testing.T) {
	q := smallQuantized(t)
	data, rep, err := Pack(context.Background(), Meta{}, q, PackOptions{Codec: "fse"})
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt each byte of the header table in turn, store the table
	// uncompressed, fix the checksum, and require an error or a faithful
	// decode (some bytes, e.g. inside the config JSON or names, may change
	// harmlessly).
	table, payload := splitArtifact(t, data, rep.HeaderBytes)
	rewrap := func(table []byte) []byte {
		out := append([]byte(artifactMagic), artifactVersion)
		out = binary.AppendUvarint(out, uint64(len("store")))
		out = append(out, "store"...)
		out = binary.AppendUvarint(out, uint64(len(table)))
		out = binary.AppendUvarint(out, uint64(len(table)))
		out = append(append(out, table...), payload...)
		return withCRC(append(out, 0, 0, 0, 0))
	}
	if _, err := DecodeArtifact(rewrap(table)); err != nil {
		t.Fatalf("re-wrapped artifact: %v", err)
	}
	rejected := 0
	for at := range table {
		for _, flip := range []byte{0xff, 0x01} {
			bad := append([]byte(nil), table...)
			bad[at] ^= flip
			a, err := DecodeArtifact(rewrap(bad))
			if err != nil {
				var ae *ArtifactError
				if !errors.As(err, &ae) {
					t.Fatalf("flip at %d: %T %v, want an ArtifactError", at, err, err)
				}
				rejected++
				continue
			}
			// Accepted: only text (config, scheme, a name), a class label or
			// a symbol width the symbols still fit may have changed, never a
			// number the weights depend on.
			if len(a.Quantized.Tensors) != len(q.Tensors) {
				t.Fatalf("flip at %d decoded %d tensors", at, len(a.Quantized.Tensors))
			}
			for i := range q.Tensors {
				x, y := &q.Tensors[i], &a.Quantized.Tensors[i]
				if x.Format != y.Format || !equalSlices(x.Shape, y.Shape) ||
					!equalSlices(x.Symbols, y.Symbols) || !equalSlices(x.Scales, y.Scales) || !equalSlices(x.Values, y.Values) {
					t.Fatalf("flip at %d changed tensor %d silently", at, i)
				}
			}
		}
	}
	if rejected == 0 {
		t.Fatal("no header-table corruption rejected")
	}
	if _, err := DecodeArtifact(rewrap(append(table, 0))); err == nil {
		t.Fatal("a byte after the header table accepted")
	}
	// Extra bytes before the checksum.
	extra := append(append([]byte(nil), data[:len(data)-4]...), 0, 0, 0, 0, 0)
	if _, err := DecodeArtifact(withCRC(extra)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

func TestPackRejectsBadQuantized(t *testing.T) {
	q := tinyQuantized(t, "int6-sd")
	cases := map[string]func(q *Quantized){
		"symbol out of range": func(q *Quantized) {
			for i := range q.Tensors {
				if q.Tensors[i].Bits == 6 {
					q.Tensors[i].Symbols[0] = 32
					return
				}
			}
		},
		"non-fp16 scale": func(q *Quantized) { q.Tensors[0].Scales[0] = 0.1 },
		"zero scale":     func(q *Quantized) { q.Tensors[0].Scales[0] = 0 },
		"duplicate name": func(q *Quantized) { q.Tensors[1].Name = q.Tensors[0].Name },
		"short values": func(q *Quantized) {
			for i := range q.Tensors {
				if q.Tensors[i].Format == FormatFP32 {
					q.Tensors[i].Values = q.Tensors[i].Values[1:]
					return
				}
			}
		},
	}
	for name, mutate := range cases {
		q2 := &Quantized{Scheme: q.Scheme}
		for _, x := range q.Tensors {
			x.Symbols = append([]int8(nil), x.Symbols...)
			x.Scales = append([]float32(nil), x.Scales...)
			x.Values = append([]float32(nil), x.Values...)
			q2.Tensors = append(q2.Tensors, x)
		}
		mutate(q2)
		if _, _, err := Pack(context.Background(), tinyMeta(t), q2, PackOptions{Codec: "store"}); err == nil {
			t.Errorf("%s: Pack accepted it", name)
		}
	}
}

func TestEmptyAndOddTensorsRoundTrip(t *testing.T) {
	w := model.Weights{
		{Name: "empty", Shape: []int{0, 4}, Class: model.Attention, Data: nil},
		{Name: "vec", Shape: []int{70000}, Class: model.Table, Data: make([]float32, 70000)},
		{Name: "zeros", Shape: []int{300, 300}, Class: model.MLP, Data: make([]float32, 90000)},
		{Name: "cube", Shape: []int{40, 40, 50}, Class: model.Table, Data: make([]float32, 80000)},
		{Name: "block_0/attn_scale", Shape: []int{3}, Class: model.Control, Data: []float32{1, -2, 3.25}},
	}
	for i := range w[3].Data {
		w[3].Data[i] = float32(i%17) - 8
	}
	for i := range w[1].Data {
		w[1].Data[i] = float32(i%5) * 1e-3
	}
	for _, name := range []string{"int8-ref", "int4-mse", "int6-sd"} {
		s, _ := SchemeByName(name)
		s.KeepMaxElements = 0
		q, err := Quantize(context.Background(), w, s, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, l := range []Layout{LayoutRows, LayoutCols, LayoutPacked} {
			data, _, err := Pack(context.Background(), Meta{}, q, PackOptions{Codec: AutoCodec, Layout: l})
			if err != nil {
				t.Fatalf("%s/%v: %v", name, l, err)
			}
			a, err := DecodeArtifact(data)
			if err != nil {
				t.Fatalf("%s/%v: %v", name, l, err)
			}
			sameQuantized(t, q, a.Quantized)
		}
	}
}
