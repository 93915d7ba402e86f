package quant

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"testing"

	"github.com/paramgolf/golf/model"
)

// lcg is the generator of testdata/gen_reference.py: the same 64-bit LCG and
// the same float64 arithmetic, so both sides build bit-identical inputs.
type lcg struct{ state uint64 }

func (g *lcg) uniform() float64 {
	g.state = g.state*6364136223846793005 + 1442695040888963407
	return float64(g.state>>11) * (1.0 / (1 << 53))
}

func referenceCaseValues(name string, rows, cols int, seed uint64) []float32 {
	g := &lcg{state: seed}
	out := make([]float32, 0, rows*cols)
	for r := range rows {
		u := g.uniform()
		rowScale := 0.005 + 3.0*(u*u*u)
		for c := range cols {
			var v float64
			if name == "heavy" {
				a := g.uniform() - 0.5
				v = a / (g.uniform() + 0.003) * 0.01
			} else {
				v = (g.uniform() + g.uniform() + g.uniform() + g.uniform() - 2.0) * rowScale
			}
			if name == "edge" {
				switch r {
				case 0:
					v = 0
				case 1:
					v = 0.5
				case 2:
					v *= 1e-6
				case 3:
					if c == 7 {
						v = 100
					} else {
						v *= 0.01
					}
				}
			}
			out = append(out, float32(v))
		}
	}
	return out
}

type referenceCase struct {
	name       string
	rows, cols int
	perRow     bool
	clips      []float32
	scales16   []Float16
	scale32    float32
	symbols    []int8
}

func readReferenceCases(t *testing.T) []referenceCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/int8_reference.bin")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(data)
	le := binary.LittleEndian
	var cases []referenceCase
	for r.Len() > 0 {
		var c referenceCase
		n, _ := r.ReadByte()
		name := make([]byte, n)
		io.ReadFull(r, name)
		c.name = string(name)
		var hdr struct {
			Rows, Cols uint32
			PerRow     uint8
		}
		if err := binary.Read(r, le, &hdr); err != nil {
			t.Fatal(err)
		}
		c.rows, c.cols, c.perRow = int(hdr.Rows), int(hdr.Cols), hdr.PerRow == 1
		c.clips = make([]float32, c.rows)
		binary.Read(r, le, c.clips)
		if c.perRow {
			c.scales16 = make([]Float16, c.rows)
			binary.Read(r, le, c.scales16)
		} else {
			binary.Read(r, le, &c.scale32)
		}
		c.symbols = make([]int8, c.rows*c.cols)
		if err := binary.Read(r, le, c.symbols); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if len(cases) != 4 {
		t.Fatalf("read %d reference cases, want 4", len(cases))
	}
	return cases
}

// The reference scheme must reproduce PyTorch's quantize_float_tensor bit
// for bit: clips (torch.quantile), fp16 scales, and every symbol.
func TestReferenceMatchesTorch(t *testing.T) {
	seeds := map[string]uint64{"gauss": 1, "heavy": 2, "edge": 3, "vector": 4}
	s := Reference()
	s.KeepMaxElements = 0 // the test matrices are smaller than the reference's 65,536 threshold
	for _, c := range readReferenceCases(t) {
		vals := referenceCaseValues(c.name, c.rows, c.cols, seeds[c.name])
		shape := []int{c.rows, c.cols}
		if !c.perRow {
			shape = []int{c.rows * c.cols}
		}
		w := model.Weights{{Name: "block_0/mlp/fc", Shape: shape, Class: model.MLP, Data: vals}}
		q, err := Quantize(context.Background(), w, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		qt := q.Tensors[0]
		rule := s.RuleFor(shape, model.MLP)
		for r := range qt.Rows() {
			clip := RowClip(vals[r*c.cols:(r+1)*c.cols], rule.Clip, 8, FormatFP16)
			if !c.perRow {
				clip = RowClip(vals, rule.Clip, 8, FormatFP32)
			}
			if math.Float32bits(clip) != math.Float32bits(c.clips[r]) {
				t.Errorf("%s row %d: clip %v (%08x), torch %v (%08x)", c.name, r, clip, math.Float32bits(clip), c.clips[r], math.Float32bits(c.clips[r]))
			}
			if c.perRow {
				if got := ToFloat16(qt.Scales[r]); got != c.scales16[r] || qt.Scales[r] != c.scales16[r].Float32() {
					t.Errorf("%s row %d: scale %v, torch fp16 %v", c.name, r, qt.Scales[r], c.scales16[r].Float32())
				}
			} else if qt.Scales[0] != c.scale32 {
				t.Errorf("%s: scale %v, torch %v", c.name, qt.Scales[0], c.scale32)
			}
		}
		diff := 0
		for i := range c.symbols {
			if qt.Symbols[i] != c.symbols[i] {
				if diff < 5 {
					t.Errorf("%s: symbol %d = %d, torch %d (value %v)", c.name, i, qt.Symbols[i], c.symbols[i], vals[i])
				}
				diff++
			}
		}
		if diff > 0 {
			t.Errorf("%s: %d of %d symbols differ from torch", c.name, diff, len(c.symbols))
		}
	}
}

// Hand-computed reference quantization of one row, including the quirk that
// symbols are rounded with the fp32 scale but dequantized with the fp16 one.
func TestReferenceRowByHand(t *testing.T) {
	// Row of 3 values: |w| sorted = [0.25, 1.5, 3.0]; quantile q=0.9999984:
	// rank = float32(q)*2 = 1.9999968, lo=1, hi=2, w=0.9999968 >= 0.5 so
	// clip = 3 - (3-1.5)*(1-0.9999968) = 2.9999952 (float32 arithmetic).
	w := []float32{3.0, -1.5, 0.25}
	rank := float32(ReferenceClipQuantile) * 2
	frac := rank - 1
	wantClip := float32(3) - float32(float32(1.5)*(1-frac))
	r := Reference().Matrix
	clip := RowClip(w, r.Clip, 8, FormatFP16)
	if clip != wantClip {
		t.Fatalf("clip = %v, want %v", clip, wantClip)
	}
	// scale = clip/127 = 0.023622...; fp16 stores 0.02362060546875.
	exact := clip / 127
	stored := RoundFloat16(exact)
	if stored != 0.02362060546875 {
		t.Fatalf("fp16 scale = %v, want 0.02362060546875", stored)
	}
	sym := make([]int8, 3)
	got := quantizeRow(w, sym, r, FormatFP16)
	if got != stored {
		t.Fatalf("stored scale %v, want %v", got, stored)
	}
	// 3.0 is clipped to 2.9999952 -> /exact = 127.0 -> 127; -1.5/exact =
	// -63.5000...; 0.25/exact = 10.58 -> 11.
	want := []int8{127, int8(math.RoundToEven(float64(float32(-1.5) / exact))), 11}
	for i := range want {
		if sym[i] != want[i] {
			t.Fatalf("symbols %v, want %v", sym, want)
		}
	}
	q := QTensor{Format: FormatInt, Shape: []int{1, 3}, Symbols: sym, Scales: []float32{got}}
	deq := q.Dequantize().Data
	if deq[0] != 127*float32(0.02362060546875) {
		t.Fatalf("dequantized %v, want 127 * fp16 scale", deq[0])
	}
}
