package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"slices"

	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant/codec"
)

// Artifact byte layout (format version 2: version 1 numbered classes
// differently and is refused). Integers are unsigned LEB128
// varints ("uv") unless a width is given; multi-byte fixed-width values are
// little-endian.
//
//	magic      8 bytes   "GOLFPACK"
//	version    u8        2
//	hcodec     uv n, n bytes    codec name of the header table (see quant/codec)
//	hraw       uv        length of the header table
//	hsize      uv        compressed length of the header table
//	table      hsize bytes      the header table, compressed with hcodec:
//
//	config     uv n, n bytes    the model configuration as JSON
//	scheme     uv n, n bytes    the quantization scheme's name
//	codecs     uv k, then k times: uv n, n bytes (codec names, see quant/codec)
//	tensors    uv t, then t times:
//	             name     uv n, n bytes (UTF-8)
//	             class    u8 (model.Class: 1 attention, 2 mlp, 3 embedding, 4 head,
//	                          5 table, 6 control, 7 frozen)
//	             format   u8 (Format: 1 int, 2 fp16, 3 fp32)
//	             rank     u8 (<= 8), then rank dimensions as uv
//	             format int only:
//	               bits         u8 (2..8)
//	               scale format u8 (2 fp16: one scale per row; 3 fp32: one per tensor)
//	               layout       u8 (Layout: 1 rows, 2 cols, 3 packed)
//	streams    uv s, then s times:
//	             kind     u8 (StreamKind: 1 symbols, 2 fp16 scales, 3 fp32 scales,
//	                          4 fp16 values, 5 fp32 values)
//	             tensor   uv (index of the tensor for symbols; 0 otherwise)
//	             codec    uv (index into codecs)
//	             raw      uv (decompressed length in bytes)
//	             size     uv (compressed length in bytes)
//	           (end of the header table; it must be used up exactly)
//
//	payload    the compressed streams, back to back in stream-table order; a
//	           stream's byte offset is the sum of the sizes before it
//	crc        u32       CRC-32C (Castagnoli) of every byte before it
//
// Stream contents before compression:
//
//   - symbols: one int tensor's symbols in its layout: "rows" is row-major,
//     one two's-complement byte per symbol; "cols" the same transposed
//     (column-major); "packed" the symbols plus 2^(bits-1) as unsigned
//     bits-wide fields, least significant bit first, row-major.
//   - fp16 scales: the per-row scales of every int tensor with fp16 scales,
//     in tensor order, as byte planes: all low bytes, then all high bytes.
//   - fp32 scales: the per-tensor scales, in tensor order, as four byte
//     planes (least significant first).
//   - fp16 values / fp32 values: the values of every fp16 (fp32) tensor,
//     in tensor order, as byte planes likewise.
//
// Every stream kind appears at most once, except symbols (once per int
// tensor); empty streams are left out. The codec of each stream gets a
// Hint: symbols in "rows" layout {Bits, RowLen: columns}, in "cols" layout
// {Bits, RowLen: rows}, packed {}; planar streams {RowLen: values}.
const (
	artifactMagic   = "GOLFPACK"
	artifactVersion = 2
	maxNameLen      = 1024
	maxHeaderTable  = 1 << 24
	maxRank         = 8
	// maxTotal bounds the values of all tensors together (268 M: a 16 MB
	// artifact holds far fewer), so a hostile header cannot make the reader
	// allocate without bound.
	maxTotal    = 1 << 28
	maxElements = maxTotal // per tensor
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Layout is how an int tensor's symbols are laid out in their stream.
type Layout uint8

// Symbol layouts.
const (
	LayoutRows   Layout = iota + 1 // row-major, one byte per symbol
	LayoutCols                     // column-major, one byte per symbol
	LayoutPacked                   // row-major, bit-packed to the symbol width
)

// String returns the layout's name as ParseLayout accepts it.
func (l Layout) String() string {
	switch l {
	case LayoutRows:
		return "rows"
	case LayoutCols:
		return "cols"
	case LayoutPacked:
		return "packed"
	}
	return fmt.Sprintf("layout(%d)", uint8(l))
}

// ParseLayout parses "rows", "cols" or "packed".
func ParseLayout(s string) (Layout, error) {
	for _, l := range []Layout{LayoutRows, LayoutCols, LayoutPacked} {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("unknown symbol layout %q (want rows, cols or packed)", s)
}

// StreamKind says what a stream holds.
type StreamKind uint8

// Stream kinds.
const (
	StreamSymbols StreamKind = iota + 1
	StreamScales16
	StreamScales32
	StreamValues16
	StreamValues32
)

// String names the stream kind for reports.
func (k StreamKind) String() string {
	switch k {
	case StreamSymbols:
		return "symbols"
	case StreamScales16:
		return "fp16 scales"
	case StreamScales32:
		return "fp32 scales"
	case StreamValues16:
		return "fp16 values"
	case StreamValues32:
		return "fp32 values"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Stream describes one compressed stream of an artifact.
type Stream struct {
	Kind   StreamKind
	Tensor int    // tensor index for symbols
	Codec  string // codec name
	Raw    int    // bytes before compression
	Size   int    // bytes in the artifact
	Offset int    // byte offset of the stream in the artifact file
}

// Artifact is a decoded artifact file.
type Artifact struct {
	Config    json.RawMessage // the model configuration, as stored
	Quantized *Quantized      // every tensor as stored (symbols, scales, values)
	Layouts   []Layout        // per tensor: the symbol layout (0 for float tensors)
	Streams   []Stream
	// HeaderBytes is the size of everything before the payload; FileBytes
	// the whole file (header + payload + 4-byte checksum).
	HeaderBytes, FileBytes int
}

// Weights returns the dequantized weights, in the artifact's order.
func (a *Artifact) Weights() model.Weights { return a.Quantized.Dequantize() }

// ArtifactError reports an invalid artifact: which file and what is wrong.
type ArtifactError struct {
	Path string // may be empty when decoding bytes
	Msg  string
	Err  error
}

// Error names the file (if known) and the fault.
func (e *ArtifactError) Error() string {
	s := "artifact"
	if e.Path != "" {
		s += " " + e.Path
	}
	s += ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *ArtifactError) Unwrap() error { return e.Err }

// ErrChecksum is wrapped by the error for a file whose checksum does not match.
var ErrChecksum = errors.New("checksum mismatch")

// ReadArtifact reads, validates and decodes an artifact file. Any fault — a
// wrong magic or version, a checksum mismatch, a truncated file, an
// inconsistent table, a stream that does not decode — is an *ArtifactError
// naming the file.
func ReadArtifact(path string) (*Artifact, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ArtifactError{Path: path, Msg: "read", Err: err}
	}
	a, err := DecodeArtifact(data)
	if err != nil {
		var ae *ArtifactError
		if errors.As(err, &ae) {
			ae.Path = path
			return nil, ae
		}
		return nil, &ArtifactError{Path: path, Msg: "decode", Err: err}
	}
	return a, nil
}

// WriteArtifact writes artifact bytes (from Pack) to path atomically: a
// reader sees the old file or the complete new one, never a partial one.
func WriteArtifact(path string, data []byte) error {
	return atomicfile.WriteFile(path, data)
}

// reader parses the header with bounds checks.
type reader struct {
	b     []byte
	pos   int
	where string // "file" or "header table": what pos counts in
	err   error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = &ArtifactError{Msg: fmt.Sprintf("%s byte %d: ", r.where, r.pos) + fmt.Sprintf(format, args...)}
	}
}

func (r *reader) u8(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail("truncated header: %s missing", what)
		return 0
	}
	v := r.b[r.pos]
	r.pos++
	return v
}

func (r *reader) uv(what string, limit uint64) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		r.fail("truncated or overlong varint for %s", what)
		return 0
	}
	if v > limit {
		r.fail("%s %d above the limit %d", what, v, limit)
		return 0
	}
	r.pos += n
	return int(v)
}

func (r *reader) bytes(what string, limit int) []byte {
	n := r.uv(what+" length", uint64(limit))
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.pos {
		r.fail("truncated header: %s needs %d bytes, %d left", what, n, len(r.b)-r.pos)
		return nil
	}
	v := r.b[r.pos : r.pos+n]
	r.pos += n
	return v
}

// DecodeArtifact validates and decodes artifact bytes; see ReadArtifact.
func DecodeArtifact(data []byte) (*Artifact, error) {
	if len(data) < len(artifactMagic)+1+4 {
		return nil, &ArtifactError{Msg: fmt.Sprintf("truncated: %d bytes is shorter than the smallest artifact", len(data))}
	}
	if string(data[:len(artifactMagic)]) != artifactMagic {
		return nil, &ArtifactError{Msg: fmt.Sprintf("not a golf artifact (magic %q, want %q)", data[:len(artifactMagic)], artifactMagic)}
	}
	if v := data[len(artifactMagic)]; v != artifactVersion {
		return nil, &ArtifactError{Msg: fmt.Sprintf("format version %d, this build reads version %d", v, artifactVersion)}
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, &ArtifactError{Msg: fmt.Sprintf("CRC-32C %08x, stored %08x: the file is corrupt or truncated", got, want), Err: ErrChecksum}
	}
	outer := &reader{b: body, pos: len(artifactMagic) + 1, where: "file"}
	hc := string(outer.bytes("header codec name", maxNameLen))
	hraw := outer.uv("header table length", maxHeaderTable)
	hsize := outer.uv("header table size", uint64(len(body)))
	if outer.err == nil && hsize > len(body)-outer.pos {
		outer.fail("truncated: the header table needs %d bytes, %d left", hsize, len(body)-outer.pos)
	}
	if outer.err != nil {
		return nil, outer.err
	}
	hcodec, err := codec.ByName(hc)
	if err != nil {
		return nil, &ArtifactError{Msg: "header", Err: err}
	}
	table, err := hcodec.Decompress(body[outer.pos:outer.pos+hsize], hraw, codec.Hint{})
	if err != nil {
		return nil, &ArtifactError{Msg: "header table", Err: err}
	}
	payloadStart := outer.pos + hsize
	r := &reader{b: table, where: "header table"}
	a := &Artifact{FileBytes: len(data)}
	a.Config = json.RawMessage(slices.Clone(r.bytes("config", 1<<20)))
	scheme := string(r.bytes("scheme name", maxNameLen))
	nCodecs := r.uv("codec count", 64)
	codecs := make([]codec.Codec, nCodecs)
	for i := range codecs {
		name := string(r.bytes("codec name", maxNameLen))
		if r.err != nil {
			break
		}
		c, err := codec.ByName(name)
		if err != nil {
			r.fail("%v", err)
			break
		}
		codecs[i] = c
	}
	nTensors := r.uv("tensor count", 1<<20)
	if r.err == nil && nTensors > len(table)-r.pos {
		r.fail("tensor count %d larger than the header", nTensors)
	}
	if r.err != nil {
		return nil, r.err
	}
	q := &Quantized{Scheme: scheme, Tensors: make([]QTensor, nTensors)}
	a.Quantized = q
	a.Layouts = make([]Layout, nTensors)
	names := map[string]bool{}
	var total int64
	for i := range q.Tensors {
		t := &q.Tensors[i]
		t.Name = string(r.bytes("tensor name", maxNameLen))
		if r.err == nil && (t.Name == "" || names[t.Name]) {
			r.fail("tensor %d: empty or repeated name %q", i, t.Name)
		}
		names[t.Name] = true
		t.Class = model.Class(r.u8("class"))
		t.Format = Format(r.u8("format"))
		rank := int(r.u8("rank"))
		if r.err == nil && rank > maxRank {
			r.fail("tensor %q: rank %d above %d", t.Name, rank, maxRank)
		}
		t.Shape = make([]int, 0, min(rank, maxRank))
		n := int64(1)
		for range rank {
			d := r.uv("dimension", maxElements)
			t.Shape = append(t.Shape, d)
			n *= int64(d)
			if n > maxElements {
				r.fail("tensor %q: %v has more than %d elements", t.Name, t.Shape, maxElements)
				n = 0
			}
		}
		total += n
		if r.err == nil && total > maxTotal {
			r.fail("more than %d elements in all", int64(maxTotal))
		}
		if r.err == nil {
			if !t.Class.Valid() {
				r.fail("tensor %q: unknown class %d", t.Name, t.Class)
			}
		}
		switch t.Format {
		case FormatFP16, FormatFP32:
		case FormatInt:
			t.Bits = int(r.u8("bits"))
			t.ScaleFormat = Format(r.u8("scale format"))
			a.Layouts[i] = Layout(r.u8("layout"))
			if r.err != nil {
				break
			}
			if t.Bits < 2 || t.Bits > 8 {
				r.fail("tensor %q: %d-bit symbols (want 2..8)", t.Name, t.Bits)
			}
			if t.ScaleFormat == FormatFP16 && len(t.Shape) != 2 || t.ScaleFormat != FormatFP16 && t.ScaleFormat != FormatFP32 {
				r.fail("tensor %q: scale format %v invalid for shape %v", t.Name, t.ScaleFormat, t.Shape)
			}
			if a.Layouts[i] < LayoutRows || a.Layouts[i] > LayoutPacked || (a.Layouts[i] == LayoutCols && len(t.Shape) != 2) {
				r.fail("tensor %q: layout %v invalid for shape %v", t.Name, a.Layouts[i], t.Shape)
			}
		default:
			if r.err == nil {
				r.fail("tensor %q: unknown format %d", t.Name, t.Format)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	nStreams := r.uv("stream count", uint64(nTensors)+4)
	if r.err != nil {
		return nil, r.err
	}
	a.Streams = make([]Stream, nStreams)
	for i := range a.Streams {
		s := &a.Streams[i]
		s.Kind = StreamKind(r.u8("stream kind"))
		s.Tensor = r.uv("stream tensor", uint64(max(nTensors, 1)-1))
		ci := r.uv("stream codec", uint64(max(nCodecs, 1)-1))
		s.Raw = r.uv("stream raw length", 8*maxTotal)
		s.Size = r.uv("stream size", uint64(len(body)))
		if r.err != nil {
			return nil, r.err
		}
		if nCodecs == 0 {
			r.fail("stream %d: no codecs listed", i)
			return nil, r.err
		}
		s.Codec = codecs[ci].Name()
	}
	if r.pos != len(table) {
		return nil, &ArtifactError{Msg: fmt.Sprintf("%d bytes after the end of the header table", len(table)-r.pos)}
	}
	a.HeaderBytes = payloadStart
	off := payloadStart
	for i := range a.Streams {
		a.Streams[i].Offset = off
		if a.Streams[i].Size > len(body)-off {
			return nil, &ArtifactError{Msg: fmt.Sprintf("truncated payload: stream %d (%v) needs %d bytes at offset %d, file body has %d", i, a.Streams[i].Kind, a.Streams[i].Size, off, len(body))}
		}
		off += a.Streams[i].Size
	}
	if off != len(body) {
		return nil, &ArtifactError{Msg: fmt.Sprintf("%d bytes between the last stream and the checksum", len(body)-off)}
	}
	if err := unpackStreams(body, a); err != nil {
		return nil, err
	}
	return a, nil
}

// expectedStreams computes each stream's raw length from the tensor table.
func expectedStreams(q *Quantized, layouts []Layout) (symbols map[int]int, other map[StreamKind]int) {
	symbols = map[int]int{}
	other = map[StreamKind]int{}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		n := t.NumElements()
		switch t.Format {
		case FormatFP16:
			other[StreamValues16] += 2 * n
		case FormatFP32:
			other[StreamValues32] += 4 * n
		case FormatInt:
			raw := n
			if layouts[i] == LayoutPacked {
				raw = (n*t.Bits + 7) / 8
			}
			symbols[i] = raw
			if n == 0 {
				break
			}
			if t.ScaleFormat == FormatFP16 {
				other[StreamScales16] += 2 * t.Shape[0]
			} else {
				other[StreamScales32] += 4
			}
		}
	}
	return symbols, other
}

func unpackStreams(body []byte, a *Artifact) error {
	q := a.Quantized
	wantSym, wantOther := expectedStreams(q, a.Layouts)
	planar := map[StreamKind][]byte{}
	gotSym := map[int]bool{}
	gotOther := map[StreamKind]bool{}
	hints := make([]codec.Hint, len(a.Streams))
	// Check the stream table against the tensor table before decoding
	// anything, so a bad table never makes a codec allocate.
	for i, s := range a.Streams {
		fail := func(format string, args ...any) error {
			return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v, %s): ", i, s.Kind, s.Codec) + fmt.Sprintf(format, args...)}
		}
		switch s.Kind {
		case StreamSymbols:
			want, ok := wantSym[s.Tensor]
			if !ok || gotSym[s.Tensor] {
				return fail("tensor %d has no symbols or has them twice", s.Tensor)
			}
			gotSym[s.Tensor] = true
			if s.Raw != want {
				return fail("raw length %d, the tensor table implies %d", s.Raw, want)
			}
			hints[i] = symbolHint(&q.Tensors[s.Tensor], a.Layouts[s.Tensor])
		case StreamScales16, StreamScales32, StreamValues16, StreamValues32:
			want, ok := wantOther[s.Kind]
			if !ok || gotOther[s.Kind] {
				return fail("unexpected or repeated stream")
			}
			gotOther[s.Kind] = true
			if s.Raw != want {
				return fail("raw length %d, the tensor table implies %d", s.Raw, want)
			}
			hints[i] = codec.Hint{RowLen: s.Raw / planeCount(s.Kind)}
		default:
			return fail("unknown stream kind")
		}
	}
	// Decode the streams in parallel.
	raws := make([][]byte, len(a.Streams))
	errs, _ := forEach(context.Background(), len(a.Streams), 0, func(i int) error {
		s := a.Streams[i]
		c, _ := codec.ByName(s.Codec)
		var err error
		raws[i], err = c.Decompress(body[s.Offset:s.Offset+s.Size], s.Raw, hints[i])
		return err
	})
	for i, s := range a.Streams {
		if errs[i] != nil {
			return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v)", i, s.Kind), Err: errs[i]}
		}
		if s.Kind == StreamSymbols {
			t := &q.Tensors[s.Tensor]
			var err error
			t.Symbols, err = unlayoutSymbols(raws[i], t, a.Layouts[s.Tensor])
			if err != nil {
				return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v, %s)", i, s.Kind, s.Codec), Err: err}
			}
		} else {
			planar[s.Kind] = raws[i]
		}
	}
	if len(gotSym) != len(wantSym) {
		return &ArtifactError{Msg: fmt.Sprintf("%d int tensors but %d symbol streams", len(wantSym), len(gotSym))}
	}
	for k, n := range wantOther {
		if n > 0 && planar[k] == nil {
			return &ArtifactError{Msg: fmt.Sprintf("missing the %v stream", k)}
		}
	}
	s16 := unplane16(planar[StreamScales16])
	s32 := unplane32(planar[StreamScales32])
	v16 := unplane16(planar[StreamValues16])
	v32 := unplane32(planar[StreamValues32])
	for i := range q.Tensors {
		t := &q.Tensors[i]
		n := t.NumElements()
		switch t.Format {
		case FormatFP16:
			t.Values = make([]float32, n)
			for j := range t.Values {
				t.Values[j] = Float16(v16[j]).Float32()
			}
			v16 = v16[n:]
		case FormatFP32:
			t.Values = make([]float32, n)
			for j := range t.Values {
				t.Values[j] = math.Float32frombits(v32[j])
			}
			v32 = v32[n:]
		case FormatInt:
			if n == 0 {
				t.Scales = []float32{}
				continue
			}
			if t.ScaleFormat == FormatFP16 {
				t.Scales = make([]float32, t.Shape[0])
				for j := range t.Scales {
					t.Scales[j] = Float16(s16[j]).Float32()
				}
				s16 = s16[t.Shape[0]:]
			} else {
				t.Scales = []float32{math.Float32frombits(s32[0])}
				s32 = s32[1:]
			}
			for r, s := range t.Scales {
				if !(s > 0) || math.IsInf(float64(s), 0) {
					return &ArtifactError{Msg: fmt.Sprintf("tensor %q row %d: scale %v is not positive and finite", t.Name, r, s)}
				}
			}
			qmax := int8(1<<(t.Bits-1) - 1)
			for j, v := range t.Symbols {
				if v < -qmax || v > qmax {
					return &ArtifactError{Msg: fmt.Sprintf("tensor %q: symbol %d at %d outside ±%d", t.Name, v, j, qmax)}
				}
			}
		}
		for j, v := range t.Values {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return &ArtifactError{Msg: fmt.Sprintf("tensor %q: value %d is %v", t.Name, j, v)}
			}
		}
	}
	return nil
}

func planeCount(k StreamKind) int {
	if k == StreamScales32 || k == StreamValues32 {
		return 4
	}
	return 2
}

// symbolHint is the codec hint of a tensor's symbol stream.
func symbolHint(t *QTensor, l Layout) codec.Hint {
	switch l {
	case LayoutPacked:
		return codec.Hint{}
	case LayoutCols:
		return codec.Hint{Bits: t.Bits, RowLen: t.Shape[0]}
	}
	cols := t.NumElements()
	if len(t.Shape) == 2 {
		cols = t.Shape[1]
	}
	return codec.Hint{Bits: t.Bits, RowLen: cols}
}

// layoutSymbols returns a tensor's symbol stream in layout l.
func layoutSymbols(t *QTensor, l Layout) []byte {
	switch l {
	case LayoutCols:
		rows, cols := t.Shape[0], t.Shape[1]
		out := make([]byte, len(t.Symbols))
		for r := range rows {
			for c := range cols {
				out[c*rows+r] = byte(t.Symbols[r*cols+c])
			}
		}
		return out
	case LayoutPacked:
		out := make([]byte, (len(t.Symbols)*t.Bits+7)/8)
		off := 1 << (t.Bits - 1)
		bit := 0
		for _, s := range t.Symbols {
			u := uint32(int(s) + off)
			for k := 0; k < t.Bits; k++ {
				out[bit>>3] |= byte(u>>k&1) << (bit & 7)
				bit++
			}
		}
		return out
	}
	out := make([]byte, len(t.Symbols))
	for i, s := range t.Symbols {
		out[i] = byte(s)
	}
	return out
}

// unlayoutSymbols inverts layoutSymbols.
func unlayoutSymbols(raw []byte, t *QTensor, l Layout) ([]int8, error) {
	n := t.NumElements()
	sym := make([]int8, n)
	switch l {
	case LayoutCols:
		rows, cols := t.Shape[0], t.Shape[1]
		for c := range cols {
			for r := range rows {
				sym[r*cols+c] = int8(raw[c*rows+r])
			}
		}
	case LayoutPacked:
		off := 1 << (t.Bits - 1)
		bit := 0
		for i := range sym {
			var u int
			for k := 0; k < t.Bits; k++ {
				u |= int(raw[bit>>3]>>(bit&7)&1) << k
				bit++
			}
			sym[i] = int8(u - off)
		}
		if n*t.Bits%8 != 0 && raw[len(raw)-1]>>(n*t.Bits%8) != 0 {
			return nil, fmt.Errorf("packed symbols: nonzero padding bits")
		}
	default:
		for i, b := range raw {
			sym[i] = int8(b)
		}
	}
	return sym, nil
}

// plane16 writes 16-bit values as two byte planes (low bytes, then high).
func plane16(v []uint16) []byte {
	out := make([]byte, 2*len(v))
	for i, x := range v {
		out[i] = byte(x)
		out[len(v)+i] = byte(x >> 8)
	}
	return out
}

func unplane16(b []byte) []uint16 {
	n := len(b) / 2
	v := make([]uint16, n)
	for i := range v {
		v[i] = uint16(b[i]) | uint16(b[n+i])<<8
	}
	return v
}

// plane32 writes 32-bit values as four byte planes, least significant first.
func plane32(v []uint32) []byte {
	n := len(v)
	out := make([]byte, 4*n)
	for i, x := range v {
		for p := range 4 {
			out[p*n+i] = byte(x >> (8 * p))
		}
	}
	return out
}

func unplane32(b []byte) []uint32 {
	n := len(b) / 4
	v := make([]uint32, n)
	for i := range v {
		for p := range 4 {
			v[i] |= uint32(b[p*n+i]) << (8 * p)
		}
	}
	return v
}

// encodeHeader writes the header table (config to stream table).
func encodeHeader(config []byte, q *Quantized, layouts []Layout, codecNames []string, streams []Stream) []byte {
	var b bytes.Buffer
	putBytes := func(v []byte) {
		b.Write(binary.AppendUvarint(nil, uint64(len(v))))
		b.Write(v)
	}
	putUv := func(v int) { b.Write(binary.AppendUvarint(nil, uint64(v))) }
	putBytes(config)
	putBytes([]byte(q.Scheme))
	putUv(len(codecNames))
	for _, n := range codecNames {
		putBytes([]byte(n))
	}
	putUv(len(q.Tensors))
	for i := range q.Tensors {
		t := &q.Tensors[i]
		putBytes([]byte(t.Name))
		b.WriteByte(byte(t.Class))
		b.WriteByte(byte(t.Format))
		b.WriteByte(byte(len(t.Shape)))
		for _, d := range t.Shape {
			putUv(d)
		}
		if t.Format == FormatInt {
			b.WriteByte(byte(t.Bits))
			b.WriteByte(byte(t.ScaleFormat))
			b.WriteByte(byte(layouts[i]))
		}
	}
	putUv(len(streams))
	index := map[string]int{}
	for i, n := range codecNames {
		index[n] = i
	}
	for _, s := range streams {
		b.WriteByte(byte(s.Kind))
		putUv(s.Tensor)
		putUv(index[s.Codec])
		putUv(s.Raw)
		putUv(s.Size)
	}
	return b.Bytes()
}
