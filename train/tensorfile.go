package train

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/model"
)

// Tensor files hold named float32 tensors, for checkpoints' weights and
// optimizer state. Layout (all integers little-endian):
//
//	offset  size  field
//	0       8     magic "GOLFTENS"
//	8       4     uint32 format version (2; version 1 files are still read)
//	12      4     uint32 number of tensors N
//	16      ...   N records:
//	                uint16 name length L, L bytes of UTF-8 name,
//	                uint8 class (model.Class; 0 for tensors that are not
//	                  parameters), uint16 length I, I bytes of the
//	                  initialiser's text form (model.Init; may be empty)
//	                  (both absent in version 1),
//	                uint8 rank R (<= 8), R x uint32 dimensions,
//	                prod(dimensions) x float32 values (IEEE 754, row-major)
//	end-4   4     uint32 CRC-32C (Castagnoli) of every byte before it
//
// A reader checks the magic, the version, the checksum and that the records
// fill the file exactly, so a truncated or corrupted file is reported, never
// half-loaded.
const (
	tensorMagic   = "GOLFTENS"
	tensorVersion = 2
	maxRank       = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeTensors writes ts in the tensor file layout to w.
func encodeTensors(w io.Writer, ts []model.Tensor) error {
	var buf bytes.Buffer
	buf.WriteString(tensorMagic)
	le := binary.LittleEndian
	buf.Write(le.AppendUint32(nil, tensorVersion))
	buf.Write(le.AppendUint32(nil, uint32(len(ts))))
	for _, t := range ts {
		if err := t.Validate(); err != nil {
			return err
		}
		if len(t.Name) == 0 || len(t.Name) > math.MaxUint16 {
			return fmt.Errorf("tensor name %q: length must be 1..65535 bytes", t.Name)
		}
		if len(t.Shape) > maxRank {
			return fmt.Errorf("tensor %q: rank %d above %d", t.Name, len(t.Shape), maxRank)
		}
		buf.Write(le.AppendUint16(nil, uint16(len(t.Name))))
		buf.WriteString(t.Name)
		if t.Class != 0 && !t.Class.Valid() {
			return fmt.Errorf("tensor %q: invalid class %d", t.Name, t.Class)
		}
		buf.WriteByte(byte(t.Class))
		init := t.Init.String()
		buf.Write(le.AppendUint16(nil, uint16(len(init))))
		buf.WriteString(init)
		buf.WriteByte(byte(len(t.Shape)))
		for _, d := range t.Shape {
			if d < 0 || d > math.MaxUint32 {
				return fmt.Errorf("tensor %q: dimension %d out of range", t.Name, d)
			}
			buf.Write(le.AppendUint32(nil, uint32(d)))
		}
		data := make([]byte, 4*len(t.Data))
		for i, v := range t.Data {
			le.PutUint32(data[4*i:], math.Float32bits(v))
		}
		buf.Write(data)
	}
	buf.Write(le.AppendUint32(nil, crc32.Checksum(buf.Bytes(), castagnoli)))
	_, err := w.Write(buf.Bytes())
	return err
}

// errTensorFile marks a malformed tensor file.
var errTensorFile = errors.New("malformed tensor file")

// decodeTensors parses a whole tensor file.
func decodeTensors(b []byte) ([]model.Tensor, error) {
	le := binary.LittleEndian
	if len(b) < 20 || string(b[:8]) != tensorMagic {
		return nil, fmt.Errorf("%w: no %q header", errTensorFile, tensorMagic)
	}
	version := le.Uint32(b[8:])
	if version != 1 && version != tensorVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads 1 and %d", errTensorFile, version, tensorVersion)
	}
	body, sum := b[:len(b)-4], le.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, stored %08x (truncated or corrupted)", errTensorFile, got, sum)
	}
	n := le.Uint32(b[12:])
	p := body[16:]
	take := func(k int) ([]byte, bool) {
		if k < 0 || len(p) < k {
			return nil, false
		}
		s := p[:k]
		p = p[k:]
		return s, true
	}
	// Each record takes at least 3 bytes: bound N before allocating.
	if uint64(n) > uint64(len(p))/3 {
		return nil, fmt.Errorf("%w: %d tensors cannot fit in %d bytes", errTensorFile, n, len(p))
	}
	ts := make([]model.Tensor, 0, n)
	for i := range n {
		h, ok := take(2)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %d: truncated name length", errTensorFile, i)
		}
		name, ok := take(int(le.Uint16(h)))
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("%w: tensor %d: bad name", errTensorFile, i)
		}
		var class model.Class
		var init model.Init
		if version >= 2 {
			c, ok := take(1)
			if !ok || (c[0] != 0 && !model.Class(c[0]).Valid()) {
				return nil, fmt.Errorf("%w: tensor %q: bad class", errTensorFile, name)
			}
			class = model.Class(c[0])
			l, ok := take(2)
			if !ok {
				return nil, fmt.Errorf("%w: tensor %q: truncated initialiser", errTensorFile, name)
			}
			text, ok := take(int(le.Uint16(l)))
			if !ok {
				return nil, fmt.Errorf("%w: tensor %q: truncated initialiser", errTensorFile, name)
			}
			if len(text) > 0 {
				v, err := model.ParseInit(string(text))
				if err != nil {
					return nil, fmt.Errorf("%w: tensor %q: %v", errTensorFile, name, err)
				}
				init = v
			}
		}
		r, ok := take(1)
		if !ok || r[0] > maxRank {
			return nil, fmt.Errorf("%w: tensor %q: bad rank", errTensorFile, name)
		}
		shape := make([]int, r[0])
		size := uint64(1)
		for j := range shape {
			d, ok := take(4)
			if !ok {
				return nil, fmt.Errorf("%w: tensor %q: truncated shape", errTensorFile, name)
			}
			shape[j] = int(le.Uint32(d))
			size *= uint64(shape[j])
			if size > uint64(len(p)) {
				return nil, fmt.Errorf("%w: tensor %q: shape %v larger than the file", errTensorFile, name, shape[:j+1])
			}
		}
		raw, ok := take(int(size) * 4)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q: shape %v needs %d bytes, %d left", errTensorFile, name, shape, size*4, len(p))
		}
		data := make([]float32, size)
		for k := range data {
			data[k] = math.Float32frombits(le.Uint32(raw[4*k:]))
		}
		ts = append(ts, model.Tensor{Name: string(name), Shape: shape, Class: class, Init: init, Data: data})
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d stray bytes after %d tensors", errTensorFile, len(p), n)
	}
	return ts, nil
}

// WriteTensors writes ts to path in the tensor file format, atomically.
func WriteTensors(path string, ts []model.Tensor) error {
	return atomicfile.Write(path, func(w io.Writer) error { return encodeTensors(w, ts) })
}

// ReadTensors reads a tensor file written by WriteTensors.
func ReadTensors(path string) ([]model.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ts, err := decodeTensors(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}
