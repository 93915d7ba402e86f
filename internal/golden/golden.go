// Package golden reads the reference files that golf's parity tests compare
// against: outputs of the challenge's own PyTorch code, written by the
// generator scripts under model/testdata and eval/testdata
// (gen_golden.py's write_golden).
//
// A file is gzip of: the magic "GOLFGLD1", a little-endian uint32 header
// length, the UTF-8 JSON header, then the tensor data. The header's
// "tensors" field maps each name to its dtype ("float32" or "int32"), shape
// and byte offset into the data; values are little-endian. The rest of the
// header is the generator's own (case, configuration, scalar results) and
// is decoded into the caller's struct.
package golden

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Magic starts every golden file.
const Magic = "GOLFGLD1"

// entry is one tensor of the header's index.
type entry struct {
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Offset int    `json:"offset"`
}

// Tensors is the tensor data of one golden file.
type Tensors struct {
	path  string
	index map[string]entry
	blob  []byte
}

// Read reads the golden file at path, decodes its JSON header into header
// (a pointer; unknown fields are ignored, so callers declare what they
// use) and returns its tensors.
func Read(path string, header any) (*Tensors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	raw, err := io.ReadAll(gz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) < 12 || string(raw[:8]) != Magic {
		return nil, fmt.Errorf("%s: not a golden file (magic %q)", path, raw[:min(8, len(raw))])
	}
	n := int(binary.LittleEndian.Uint32(raw[8:12]))
	if 12+n > len(raw) {
		return nil, fmt.Errorf("%s: header length %d beyond the file", path, n)
	}
	hdr := raw[12 : 12+n]
	var idx struct {
		Tensors map[string]entry `json:"tensors"`
	}
	if err := json.Unmarshal(hdr, &idx); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if header != nil {
		if err := json.Unmarshal(hdr, header); err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
	}
	t := &Tensors{path: path, index: idx.Tensors, blob: raw[12+n:]}
	for name, e := range t.index {
		size := 1
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("%s: tensor %q has shape %v", path, name, e.Shape)
			}
			size *= d
		}
		if e.DType != "float32" && e.DType != "int32" {
			return nil, fmt.Errorf("%s: tensor %q has dtype %q, want float32 or int32", path, name, e.DType)
		}
		if e.Offset < 0 || e.Offset+4*size > len(t.blob) {
			return nil, fmt.Errorf("%s: tensor %q [%d values at %d] beyond the data (%d bytes)", path, name, size, e.Offset, len(t.blob))
		}
	}
	return t, nil
}

// Has reports whether the file holds a tensor called name.
func (t *Tensors) Has(name string) bool { _, ok := t.index[name]; return ok }

// Shape returns the shape of tensor name (nil when absent).
func (t *Tensors) Shape(name string) []int { return t.index[name].Shape }

// Names returns the tensors' names, sorted.
func (t *Tensors) Names() []string {
	out := make([]string, 0, len(t.index))
	for n := range t.index {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (t *Tensors) words(name, dtype string) ([]uint32, error) {
	e, ok := t.index[name]
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", t.path, name)
	}
	if e.DType != dtype {
		return nil, fmt.Errorf("%s: tensor %q is %s, want %s", t.path, name, e.DType, dtype)
	}
	size := 1
	for _, d := range e.Shape {
		size *= d
	}
	out := make([]uint32, size)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(t.blob[e.Offset+4*i:])
	}
	return out, nil
}

// Float32s returns the values of the float32 tensor name, row-major.
func (t *Tensors) Float32s(name string) ([]float32, error) {
	w, err := t.words(name, "float32")
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(w))
	for i, u := range w {
		out[i] = math.Float32frombits(u)
	}
	return out, nil
}

// Int32s returns the values of the int32 tensor name, row-major.
func (t *Tensors) Int32s(name string) ([]int32, error) {
	w, err := t.words(name, "int32")
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(w))
	for i, u := range w {
		out[i] = int32(u)
	}
	return out, nil
}
