package train

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/paramgolf/golf/model"
)

func sampleTensors() []model.Tensor {
	return []model.Tensor{
		{Name: "tok_emb", Shape: []int{3, 2}, Class: model.Embedding, Init: model.Normal(0.005), Data: []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0}},
		{Name: "block_0/attn/q_gain", Shape: []int{2}, Class: model.Control, Init: model.Rows(1.5, -2), Data: []float32{1.5, 1.5}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
}

func TestTensorFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	want := sampleTensors()
	if err := WriteTensors(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// The layout is the documented one: magic, version, count, first name,
	// its class and initialiser.
	b, _ := os.ReadFile(path)
	if string(b[:8]) != "GOLFTENS" || b[8] != 2 || b[12] != 4 || b[16] != 7 || string(b[18:25]) != "tok_emb" ||
		b[25] != byte(model.Embedding) || b[26] != 13 || string(b[28:41]) != "normal(0.005)" {
		t.Fatalf("unexpected header bytes % x", b[:41])
	}
	// 16 header + records + 4 checksum.
	size := 16 + 4
	for _, ts := range want {
		size += 2 + len(ts.Name) + 1 + 2 + len(ts.Init.String()) + 1 + 4*len(ts.Shape) + 4*len(ts.Data)
	}
	if len(b) != size {
		t.Fatalf("file has %d bytes, layout says %d", len(b), size)
	}
}

func TestTensorFileRejectsDamage(t *testing.T) {
	var buf bytes.Buffer
	if err := encodeTensors(&buf, sampleTensors()); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for name, b := range map[string][]byte{
		"truncated":  good[:len(good)-9],
		"bit flip":   flip(good, 30),
		"bad magic":  flip(good, 0),
		"empty":      nil,
		"extra byte": append(append([]byte{}, good...), 0),
	} {
		if _, err := decodeTensors(b); !errors.Is(err, errTensorFile) {
			t.Errorf("%s: err = %v, want a malformed-file error", name, err)
		}
	}
	if err := encodeTensors(&buf, []model.Tensor{{Name: "bad", Shape: []int{2, 2}, Data: []float32{1}}}); err == nil {
		t.Error("encoding a tensor whose data does not match its shape succeeded")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x10
	return c
}

func FuzzDecodeTensors(f *testing.F) {
	var buf bytes.Buffer
	_ = encodeTensors(&buf, sampleTensors())
	f.Add(buf.Bytes())
	f.Add([]byte("GOLFTENS\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := decodeTensors(b)
		if err != nil {
			return
		}
		// Whatever decodes must be consistent and re-encode to the same bytes.
		var out bytes.Buffer
		if err := encodeTensors(&out, ts); err != nil {
			t.Fatalf("decoded tensors do not re-encode: %v", err)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("re-encoding changed the bytes")
		}
	})
}
