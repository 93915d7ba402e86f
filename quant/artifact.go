package quant

import (
	"bytes"
	"context"
	"encoding/binary"
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

// Artifact byte layout (format version 4; earlier versions are refused:
// version 4 changed the cm codec's model, so older cm streams would decode
// to other bytes).
// Integers are unsigned LEB128 varints ("uv") unless a width is given;
// fixed-width values are little-endian.
//
//	magic      8 bytes   "GOLFPACK"
//	version    u8        4
//	hcodec     uv n, n bytes    codec name of the header table (see quant/codec)
//	hraw       uv        length of the header table
//	hsize      uv        compressed length of the header table
//	table      hsize bytes      the header table, compressed with hcodec:
//
//	meta       uv n, n bytes    Meta as JSON: {"model": model.Config, "settings": EvalSettings, "source": ...}
//	scheme     uv n, n bytes    the quantization scheme's name
//	codecs     uv k, then k times: uv n, n bytes (codec names)
//	tensors    uv t, then t times:
//	             name     uv n, n bytes (UTF-8)
//	             class    u8 (model.Class: 1 attention, 2 mlp, 3 embedding, 4 head,
//	                          5 table, 6 control, 7 frozen)
//	             init     uv n, n bytes (model.Init's text form, e.g. "normal(0.005)"; may be empty)
//	             format   u8 (Format: 1 int, 2 fp16, 3 fp32)
//	             rank     u8 (<= 8), then rank dimensions as uv
//	             format int only:
//	               bits         u8 (2..8)
//	               scale format u8 (2 fp16: one scale per row; 3 fp32: one per tensor)
//	               layout       u8 (Layout: 1 rows, 2 cols, 3 packed)
//	               flags        u8 (1: row order stored, 2: protected groups, 4: LQER; 2-D only)
//	               flag 2: size uv, bits u8, count uv, then count column starts as uv gaps
//	                       (start_0, then start_i - (start_{i-1} + size))
//	               flag 4: rank uv, A bits u8, A group uv, B bits u8, B group uv
//	streams    uv s, then s times:
//	             kind     u8 (StreamKind: 1 symbols, 2 fp16 remainder, 3 fp32 remainder,
//	                          4 side symbols, 5 row orders)
//	             codec    uv (index into codecs)
//	             raw      uv (decompressed length in bytes)
//	             size     uv (compressed length in bytes)
//	             kind 1:  uv m, then m tensor indices (uv): the int tensors it holds
//	           (end of the header table; it must be used up exactly)
//
//	payload    the compressed streams, back to back in stream-table order
//	crc        u32       CRC-32C (Castagnoli) of every byte before it
//
// Stream contents before compression:
//
//   - symbols: the symbols of its tensors back to back (a per-group stream
//     holds several tensors of one class, record-stack.md §5.1). Each
//     tensor's rows are taken in its stored row order (identity without
//     flag 1), then laid out: "rows" row-major, one two's-complement byte
//     per symbol; "cols" the same transposed (column-major); "packed" the
//     symbols plus 2^(bits-1) as unsigned bits-wide fields, least
//     significant bit first, row-major, each tensor starting on a byte.
//   - fp16 remainder: little-endian fp16 values, byte-shuffled with stride 2
//     (ByteShuffle: all low bytes, then all high bytes), in this order: the
//     per-row scales of every int tensor with fp16 scales (tensor order),
//     the values of every fp16 tensor, every protected group's scales, every
//     LQER correction's A scales then B scales.
//   - fp32 remainder: little-endian fp32 values byte-shuffled with stride 4:
//     every per-tensor fp32 scale, then the values of every fp32 tensor.
//   - side symbols: one byte per symbol, in tensor order: a tensor's
//     protected-group symbols (rows × count·size, row-major), then its LQER
//     codes, A (rows × rank) then B (rank × cols).
//   - row orders: for each tensor with flag 1, in order, its row order as
//     EncodePermutation writes it (PermutationBytes(rows) bytes).
//
// Every int tensor is in exactly one symbols stream; each other kind
// appears at most once, and empty streams are left out. Codecs get a Hint:
// a symbols stream one Segment per tensor ({Len, Bits, RowLen: columns} for
// rows, {Len, Bits, RowLen: rows} for cols, {Len} for packed; a one-tensor
// stream also sets the Hint's own Bits and RowLen), the remainders
// {RowLen: values} (the byte-plane length), the others {}.
const (
	artifactMagic   = "GOLFPACK"
	artifactVersion = 4
	maxNameLen      = 1024
	maxHeaderTable  = 1 << 24
	maxRank         = 8
	// maxTotal bounds the values of all tensors together (268 M: a 16 MB
	// artifact holds far fewer), so a hostile header cannot make the reader
	// allocate without bound.
	maxTotal    = 1 << 28
	maxElements = maxTotal // per tensor
)

// Tensor flags of the header table.
const (
	flagRowOrder  = 1
	flagProtected = 2
	flagLQER      = 4
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
	StreamFP16
	StreamFP32
	StreamSide
	StreamRowOrders
)

// String names the stream kind for reports.
func (k StreamKind) String() string {
	switch k {
	case StreamSymbols:
		return "symbols"
	case StreamFP16:
		return "fp16 remainder"
	case StreamFP32:
		return "fp32 remainder"
	case StreamSide:
		return "side symbols"
	case StreamRowOrders:
		return "row orders"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Stream describes one compressed stream of an artifact.
type Stream struct {
	Kind    StreamKind
	Tensors []int  // symbols: the tensors it holds, in order
	Codec   string // codec name
	Raw     int    // bytes before compression
	Size    int    // bytes in the artifact
	Offset  int    // byte offset of the stream in the artifact file
}

// Artifact is a decoded artifact file.
type Artifact struct {
	Meta      Meta       // the model configuration and evaluation settings
	Quantized *Quantized // every tensor as stored (symbols, scales, values)
	Layouts   []Layout   // per tensor: the symbol layout (0 for float tensors)
	Streams   []Stream
	// HeaderBytes is the size of everything before the payload; FileBytes
	// the whole file (header + payload + 4-byte checksum).
	HeaderBytes, FileBytes int
}

// Weights returns the dequantized weights, in the artifact's order, each
// with its class and initialiser.
func (a *Artifact) Weights() model.Weights { return a.Quantized.Dequantize() }

// Model returns the artifact's model configuration and its dequantized
// weights (the config's parameters, in order, with classes and
// initialisers), or an error for an artifact written without a model.
func (a *Artifact) Model() (model.Config, model.Weights, error) {
	if !a.Meta.HasModel() {
		return model.Config{}, nil, fmt.Errorf("artifact holds tensors without a model config")
	}
	w := a.Weights()
	if err := model.CheckOrderedWeights(a.Meta.Model, w); err != nil {
		return model.Config{}, nil, err
	}
	return a.Meta.Model, w, nil
}

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
// inconsistent table, a stream that does not decode, tensors that are not
// the model's parameters — is an *ArtifactError naming the file.
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
		return nil, &ArtifactError{Msg: fmt.Sprintf("format version %d, this build reads version %d (re-pack the checkpoint)", v, artifactVersion)}
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
	a := &Artifact{FileBytes: len(data), HeaderBytes: outer.pos + hsize}
	if err := decodeTable(table, a, len(body)); err != nil {
		return nil, err
	}
	off := a.HeaderBytes
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

// decodeTable parses the header table into a (tensors without their data,
// streams) and checks it against the metadata's model.
func decodeTable(table []byte, a *Artifact, bodyLen int) error {
	r := &reader{b: table, where: "header table"}
	metaJSON := r.bytes("metadata", 1<<20)
	if r.err != nil {
		return r.err
	}
	meta, err := decodeMeta(metaJSON)
	if err != nil {
		return &ArtifactError{Msg: "metadata", Err: err}
	}
	a.Meta = meta
	scheme := string(r.bytes("scheme name", maxNameLen))
	nCodecs := r.uv("codec count", 64)
	codecs := make([]codec.Codec, nCodecs)
	for i := range codecs {
		name := string(r.bytes("codec name", maxNameLen))
		if r.err != nil {
			return r.err
		}
		c, err := codec.ByName(name)
		if err != nil {
			r.fail("%v", err)
			return r.err
		}
		codecs[i] = c
	}
	nTensors := r.uv("tensor count", 1<<20)
	if r.err == nil && nTensors > len(table)-r.pos {
		r.fail("tensor count %d larger than the header", nTensors)
	}
	if r.err != nil {
		return r.err
	}
	q := &Quantized{Scheme: scheme, Tensors: make([]QTensor, nTensors)}
	a.Quantized = q
	a.Layouts = make([]Layout, nTensors)
	names := map[string]bool{}
	var total int64
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if err := decodeTensor(r, t, &a.Layouts[i], names, &total); err != nil {
			return err
		}
	}
	if meta.HasModel() {
		if err := checkModelTensors(meta.Model, q.Tensors); err != nil {
			return &ArtifactError{Msg: "tensor table does not match the model config", Err: err}
		}
	}
	nStreams := r.uv("stream count", uint64(nTensors)+8)
	if r.err != nil {
		return r.err
	}
	a.Streams = make([]Stream, nStreams)
	for i := range a.Streams {
		s := &a.Streams[i]
		s.Kind = StreamKind(r.u8("stream kind"))
		ci := r.uv("stream codec", uint64(max(nCodecs, 1)-1))
		s.Raw = r.uv("stream raw length", 8*maxTotal)
		s.Size = r.uv("stream size", uint64(bodyLen))
		if s.Kind == StreamSymbols {
			m := r.uv("stream tensor count", uint64(nTensors))
			for range m {
				s.Tensors = append(s.Tensors, r.uv("stream tensor", uint64(max(nTensors, 1)-1)))
				if r.err != nil {
					break
				}
			}
		}
		if r.err != nil {
			return r.err
		}
		if nCodecs == 0 {
			r.fail("stream %d: no codecs listed", i)
			return r.err
		}
		s.Codec = codecs[ci].Name()
	}
	if r.pos != len(table) {
		return &ArtifactError{Msg: fmt.Sprintf("%d bytes after the end of the header table", len(table)-r.pos)}
	}
	return nil
}

// decodeTensor reads one tensor's entry of the header table.
func decodeTensor(r *reader, t *QTensor, layout *Layout, names map[string]bool, total *int64) error {
	t.Name = string(r.bytes("tensor name", maxNameLen))
	if r.err == nil && (t.Name == "" || names[t.Name]) {
		r.fail("empty or repeated tensor name %q", t.Name)
	}
	names[t.Name] = true
	t.Class = model.Class(r.u8("class"))
	if r.err == nil && !t.Class.Valid() {
		r.fail("tensor %q: unknown class %d", t.Name, t.Class)
	}
	if init := string(r.bytes("initialiser", maxNameLen)); r.err == nil && init != "" {
		in, err := model.ParseInit(init)
		if err != nil {
			r.fail("tensor %q: %v", t.Name, err)
		}
		t.Init = in
	}
	t.Format = Format(r.u8("format"))
	rank := int(r.u8("rank"))
	if r.err == nil && rank > maxRank {
		r.fail("tensor %q: rank %d above %d", t.Name, rank, maxRank)
	}
	if r.err != nil {
		return r.err
	}
	t.Shape = make([]int, 0, rank)
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
	*total += n
	if r.err == nil && *total > maxTotal {
		r.fail("more than %d elements in all", int64(maxTotal))
	}
	switch t.Format {
	case FormatFP16, FormatFP32:
		return r.err
	case FormatInt:
	default:
		if r.err == nil {
			r.fail("tensor %q: unknown format %d", t.Name, t.Format)
		}
		return r.err
	}
	t.Bits = int(r.u8("bits"))
	t.ScaleFormat = Format(r.u8("scale format"))
	*layout = Layout(r.u8("layout"))
	flags := r.u8("flags")
	if r.err != nil {
		return r.err
	}
	matrix := len(t.Shape) == 2
	switch {
	case t.Bits < 2 || t.Bits > 8:
		r.fail("tensor %q: %d-bit symbols (want 2..8)", t.Name, t.Bits)
	case t.ScaleFormat == FormatFP16 && !matrix || t.ScaleFormat != FormatFP16 && t.ScaleFormat != FormatFP32:
		r.fail("tensor %q: scale format %v invalid for shape %v", t.Name, t.ScaleFormat, t.Shape)
	case *layout < LayoutRows || *layout > LayoutPacked || (*layout == LayoutCols && !matrix):
		r.fail("tensor %q: layout %v invalid for shape %v", t.Name, *layout, t.Shape)
	case flags&^(flagRowOrder|flagProtected|flagLQER) != 0 || (flags != 0 && !matrix):
		r.fail("tensor %q: flags %#x invalid for shape %v", t.Name, flags, t.Shape)
	case flags&(flagProtected|flagLQER) != 0 && t.ScaleFormat != FormatFP16:
		r.fail("tensor %q: protected groups and LQER need per-row scales", t.Name)
	}
	if r.err != nil {
		return r.err
	}
	if flags&flagRowOrder != 0 {
		t.RowOrder = []int{} // filled from the row-order stream
	}
	if flags&flagProtected != 0 {
		cols := t.Shape[1]
		p := &Protected{Size: r.uv("protected group size", uint64(max(cols, 1)))}
		p.Bits = int(r.u8("protected bits"))
		count := r.uv("protected group count", uint64(cols/max(p.Size, 1)))
		next := 0
		for range count {
			s := next + r.uv("protected group start", uint64(cols))
			p.Starts = append(p.Starts, s)
			next = s + p.Size
			if r.err != nil {
				break
			}
		}
		if r.err == nil {
			if err := p.validateTable(cols); err != nil {
				r.fail("tensor %q: %v", t.Name, err)
			}
		}
		t.Protected = p
	}
	if flags&flagLQER != 0 {
		rows, cols := t.Shape[0], t.Shape[1]
		f := &LQERFactors{Rank: r.uv("LQER rank", 64)}
		f.ABits = int(r.u8("LQER A bits"))
		f.AGroup = r.uv("LQER A group", uint64(maxElements))
		f.BBits = int(r.u8("LQER B bits"))
		f.BGroup = r.uv("LQER B group", uint64(maxElements))
		if r.err == nil {
			if f.Rank < 1 || f.Rank > min(rows, cols) || f.ABits < 2 || f.ABits > 8 || f.BBits < 2 || f.BBits > 8 ||
				f.AGroup < 1 || (rows*f.Rank)%f.AGroup != 0 || f.BGroup < 1 || (f.Rank*cols)%f.BGroup != 0 {
				r.fail("tensor %q: LQER rank %d, widths %d/%d, groups %d/%d invalid for %v", t.Name, f.Rank, f.ABits, f.BBits, f.AGroup, f.BGroup, t.Shape)
			}
		}
		t.LQER = f
	}
	return r.err
}

// validateTable checks the protected groups' geometry (the header part).
func (p *Protected) validateTable(cols int) error {
	if p.Size < 1 || p.Bits < 2 || p.Bits > 8 || len(p.Starts) == 0 {
		return fmt.Errorf("protected groups: size %d, %d bits, %d groups", p.Size, p.Bits, len(p.Starts))
	}
	if last := p.Starts[len(p.Starts)-1]; last+p.Size > cols {
		return fmt.Errorf("protected group at column %d (size %d) outside %d columns", last, p.Size, cols)
	}
	return nil
}

// streamLayout gives, for a packed or decoded artifact, each stream's
// expected raw length and codec hint, computed from the tensor table alone.
type streamLayout struct {
	symbolLen                []int // per tensor: bytes in its symbols stream (0 for floats)
	fp16, fp32, side, orders int
}

func tensorSymbolBytes(t *QTensor, l Layout) int {
	n := t.NumElements()
	if l == LayoutPacked {
		return (n*t.Bits + 7) / 8
	}
	return n
}

func planLayout(q *Quantized, layouts []Layout) streamLayout {
	sl := streamLayout{symbolLen: make([]int, len(q.Tensors))}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		n := t.NumElements()
		switch t.Format {
		case FormatFP16:
			sl.fp16 += 2 * n
		case FormatFP32:
			sl.fp32 += 4 * n
		case FormatInt:
			sl.symbolLen[i] = tensorSymbolBytes(t, layouts[i])
			if n > 0 {
				if t.ScaleFormat == FormatFP16 {
					sl.fp16 += 2 * t.Shape[0]
				} else {
					sl.fp32 += 4
				}
			}
			if t.RowOrder != nil {
				sl.orders += PermutationBytes(t.Shape[0])
			}
			if p := t.Protected; p != nil {
				sl.fp16 += 2 * t.Shape[0]
				sl.side += t.Shape[0] * len(p.Starts) * p.Size
			}
			if f := t.LQER; f != nil {
				na, nb := t.Shape[0]*f.Rank, f.Rank*t.Shape[1]
				sl.fp16 += 2 * (na/f.AGroup + nb/f.BGroup)
				sl.side += na + nb
			}
		}
	}
	return sl
}

// symbolsHint is the codec hint of a symbols stream holding tensors ts.
func symbolsHint(q *Quantized, layouts []Layout, ts []int) codec.Hint {
	var h codec.Hint
	for _, i := range ts {
		t := &q.Tensors[i]
		seg := codec.Segment{Len: tensorSymbolBytes(t, layouts[i]), Bits: t.Bits}
		switch layouts[i] {
		case LayoutPacked:
			seg.Bits = 0
		case LayoutCols:
			seg.RowLen = t.Shape[0]
		default:
			seg.RowLen = t.NumElements()
			if len(t.Shape) == 2 {
				seg.RowLen = t.Shape[1]
			}
		}
		h.Segments = append(h.Segments, seg)
	}
	if len(h.Segments) == 1 {
		h.Bits, h.RowLen = h.Segments[0].Bits, h.Segments[0].RowLen
	}
	return h
}

func unpackStreams(body []byte, a *Artifact) error {
	q := a.Quantized
	sl := planLayout(q, a.Layouts)
	want := map[StreamKind]int{StreamFP16: sl.fp16, StreamFP32: sl.fp32, StreamSide: sl.side, StreamRowOrders: sl.orders}
	inStream := make([]bool, len(q.Tensors))
	seen := map[StreamKind]bool{}
	hints := make([]codec.Hint, len(a.Streams))
	// Check the stream table against the tensor table before decoding
	// anything, so a bad table never makes a codec allocate.
	for i, s := range a.Streams {
		fail := func(format string, args ...any) error {
			return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v, %s): ", i, s.Kind, s.Codec) + fmt.Sprintf(format, args...)}
		}
		switch s.Kind {
		case StreamSymbols:
			raw := 0
			for _, ti := range s.Tensors {
				if q.Tensors[ti].Format != FormatInt || inStream[ti] {
					return fail("tensor %d is not an int tensor or is in two symbol streams", ti)
				}
				inStream[ti] = true
				raw += sl.symbolLen[ti]
			}
			if len(s.Tensors) == 0 || s.Raw != raw {
				return fail("raw length %d for %d tensors, the tensor table implies %d", s.Raw, len(s.Tensors), raw)
			}
			hints[i] = symbolsHint(q, a.Layouts, s.Tensors)
		case StreamFP16, StreamFP32, StreamSide, StreamRowOrders:
			if seen[s.Kind] {
				return fail("repeated stream")
			}
			seen[s.Kind] = true
			if s.Raw != want[s.Kind] || s.Raw == 0 {
				return fail("raw length %d, the tensor table implies %d", s.Raw, want[s.Kind])
			}
			hints[i] = remainderHint(s.Kind, s.Raw)
		default:
			return fail("unknown stream kind")
		}
	}
	for i := range q.Tensors {
		if q.Tensors[i].Format == FormatInt && !inStream[i] {
			return &ArtifactError{Msg: fmt.Sprintf("tensor %q has no symbols stream", q.Tensors[i].Name)}
		}
	}
	for k, n := range want {
		if n > 0 && !seen[k] {
			return &ArtifactError{Msg: fmt.Sprintf("missing the %v stream (%d bytes)", k, n)}
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
	var fp16, fp32, side, orders []byte
	for i, s := range a.Streams {
		if errs[i] != nil {
			return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v, %s)", i, s.Kind, s.Codec), Err: errs[i]}
		}
		switch s.Kind {
		case StreamSymbols:
			raw := raws[i]
			for _, ti := range s.Tensors {
				t := &q.Tensors[ti]
				n := sl.symbolLen[ti]
				var err error
				t.Symbols, err = unlayoutSymbols(raw[:n], t, a.Layouts[ti])
				if err != nil {
					return &ArtifactError{Msg: fmt.Sprintf("stream %d (%v, %s), tensor %q", i, s.Kind, s.Codec, t.Name), Err: err}
				}
				raw = raw[n:]
			}
		case StreamFP16:
			fp16 = ByteUnshuffle(raws[i], 2)
		case StreamFP32:
			fp32 = ByteUnshuffle(raws[i], 4)
		case StreamSide:
			side = raws[i]
		case StreamRowOrders:
			orders = raws[i]
		}
	}
	return fillTensors(q, fp16, fp32, side, orders)
}

// remainderHint is the codec hint of a non-symbol stream.
func remainderHint(k StreamKind, raw int) codec.Hint {
	switch k {
	case StreamFP16:
		return codec.Hint{RowLen: raw / 2}
	case StreamFP32:
		return codec.Hint{RowLen: raw / 4}
	}
	return codec.Hint{}
}

// byteCursor hands out consecutive slices of a decoded stream.
type byteCursor struct{ b []byte }

func (c *byteCursor) take(n int) []byte {
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *byteCursor) f16s(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = Float16(binary.LittleEndian.Uint16(c.take(2))).Float32()
	}
	return out
}

func (c *byteCursor) f32s(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(c.take(4)))
	}
	return out
}

func (c *byteCursor) i8s(n int) []int8 {
	out := make([]int8, n)
	for i, b := range c.take(n) {
		out[i] = int8(b)
	}
	return out
}

// fillTensors distributes the remainder streams over the tensors (in the
// order the layout comment gives) and validates every value.
func fillTensors(q *Quantized, fp16, fp32, side, orders []byte) error {
	h, f, s, o := &byteCursor{fp16}, &byteCursor{fp32}, &byteCursor{side}, &byteCursor{orders}
	fail := func(t *QTensor, format string, args ...any) error {
		return &ArtifactError{Msg: fmt.Sprintf("tensor %q: ", t.Name) + fmt.Sprintf(format, args...)}
	}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if t.Format != FormatInt || t.NumElements() == 0 {
			continue
		}
		if t.ScaleFormat == FormatFP16 {
			t.Scales = h.f16s(t.Shape[0])
		} else {
			t.Scales = f.f32s(1)
		}
	}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		switch {
		case t.Format == FormatFP16:
			t.Values = h.f16s(t.NumElements())
		case t.Format == FormatInt && t.NumElements() == 0:
			t.Scales = []float32{}
		}
	}
	for i := range q.Tensors {
		if t := &q.Tensors[i]; t.Format == FormatFP32 {
			t.Values = f.f32s(t.NumElements())
		}
	}
	for i := range q.Tensors {
		if p := q.Tensors[i].Protected; p != nil {
			p.Scales = h.f16s(q.Tensors[i].Shape[0])
		}
	}
	for i := range q.Tensors {
		if lq := q.Tensors[i].LQER; lq != nil {
			rows, cols := q.Tensors[i].Shape[0], q.Tensors[i].Shape[1]
			lq.SA = h.f16s(rows * lq.Rank / lq.AGroup)
			lq.SB = h.f16s(lq.Rank * cols / lq.BGroup)
		}
	}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if p := t.Protected; p != nil {
			p.Symbols = s.i8s(t.Shape[0] * len(p.Starts) * p.Size)
		}
		if lq := t.LQER; lq != nil {
			lq.QA = s.i8s(t.Shape[0] * lq.Rank)
			lq.QB = s.i8s(lq.Rank * t.Shape[1])
		}
		if t.RowOrder != nil {
			rows := t.Shape[0]
			p, err := DecodePermutation(o.take(PermutationBytes(rows)), rows)
			if err != nil {
				return fail(t, "row order: %v", err)
			}
			t.RowOrder = p
			t.Symbols = unpermuteRows(t.Symbols, t.Shape[1], p)
		}
		if err := t.validate(); err != nil {
			return fail(t, "%v", err)
		}
	}
	return nil
}

// validate checks a tensor's values: symbols within ±QMax, positive finite
// scales (fp16 values for per-row ones), finite float values, and its
// protected groups and LQER factors.
func (t *QTensor) validate() error {
	n := t.NumElements()
	switch t.Format {
	case FormatFP16, FormatFP32:
		if len(t.Values) != n {
			return fmt.Errorf("%d values for shape %v", len(t.Values), t.Shape)
		}
		for j, v := range t.Values {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("value %d is %v", j, v)
			}
			if t.Format == FormatFP16 && RoundFloat16(v) != v {
				return fmt.Errorf("value %v is not an fp16 value", v)
			}
		}
		return nil
	case FormatInt:
	default:
		return fmt.Errorf("unknown format %v", t.Format)
	}
	rows := 1
	if t.ScaleFormat == FormatFP16 {
		if len(t.Shape) != 2 {
			return fmt.Errorf("per-row scales need a 2-D shape, have %v", t.Shape)
		}
		rows = t.Shape[0]
	} else if t.ScaleFormat != FormatFP32 {
		return fmt.Errorf("unknown scale format %v", t.ScaleFormat)
	}
	if n == 0 {
		rows = 0
	}
	if len(t.Symbols) != n || len(t.Scales) != rows || t.Bits < 2 || t.Bits > 8 {
		return fmt.Errorf("%d symbols, %d scales, %d bits for shape %v", len(t.Symbols), len(t.Scales), t.Bits, t.Shape)
	}
	qmax := int8(1<<(t.Bits-1) - 1)
	for j, v := range t.Symbols {
		if v < -qmax || v > qmax {
			return fmt.Errorf("symbol %d at %d outside ±%d", v, j, qmax)
		}
	}
	for r, s := range t.Scales {
		if t.ScaleFormat == FormatFP16 && RoundFloat16(s) != s {
			return fmt.Errorf("row %d: scale %v is not an fp16 value", r, s)
		}
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("row %d: scale %v is not positive and finite", r, s)
		}
	}
	if (t.Protected != nil || t.LQER != nil || t.RowOrder != nil) && (len(t.Shape) != 2 || t.ScaleFormat != FormatFP16) {
		return fmt.Errorf("protected groups, LQER and row orders need a matrix with per-row scales, shape %v", t.Shape)
	}
	if p := t.Protected; p != nil {
		if err := p.validate(t.Shape[0], t.Shape[1]); err != nil {
			return err
		}
		for r := range t.Shape[0] {
			for _, c := range p.columns() {
				if t.Symbols[r*t.Shape[1]+c] != 0 {
					return fmt.Errorf("row %d column %d: symbol %d under a protected group (must be 0)", r, c, t.Symbols[r*t.Shape[1]+c])
				}
			}
		}
	}
	if t.LQER != nil {
		if err := t.LQER.validate(t.Shape[0], t.Shape[1]); err != nil {
			return err
		}
	}
	if t.RowOrder != nil {
		if err := checkPermutation(t.RowOrder, t.Shape[0]); err != nil {
			return fmt.Errorf("row order: %w", err)
		}
	}
	return nil
}

// layoutSymbols returns a tensor's symbol bytes in layout l, rows in its
// stored order.
func layoutSymbols(t *QTensor, l Layout) []byte {
	sym := t.Symbols
	if t.RowOrder != nil {
		sym = permuteRows(sym, t.Shape[1], t.RowOrder)
	}
	switch l {
	case LayoutCols:
		rows, cols := t.Shape[0], t.Shape[1]
		out := make([]byte, len(sym))
		for r := range rows {
			for c := range cols {
				out[c*rows+r] = byte(sym[r*cols+c])
			}
		}
		return out
	case LayoutPacked:
		out := make([]byte, (len(sym)*t.Bits+7)/8)
		off := 1 << (t.Bits - 1)
		bit := 0
		for _, s := range sym {
			u := uint32(int(s) + off)
			for k := 0; k < t.Bits; k++ {
				out[bit>>3] |= byte(u>>k&1) << (bit & 7)
				bit++
			}
		}
		return out
	}
	out := make([]byte, len(sym))
	for i, s := range sym {
		out[i] = byte(s)
	}
	return out
}

// unlayoutSymbols inverts layoutSymbols up to the row order (the caller
// restores that once it is decoded).
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

// encodeHeader writes the header table (metadata to stream table).
func encodeHeader(meta []byte, q *Quantized, layouts []Layout, codecNames []string, streams []Stream) []byte {
	var b bytes.Buffer
	putBytes := func(v []byte) {
		b.Write(binary.AppendUvarint(nil, uint64(len(v))))
		b.Write(v)
	}
	putUv := func(v int) { b.Write(binary.AppendUvarint(nil, uint64(v))) }
	putBytes(meta)
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
		putBytes([]byte(t.Init.String()))
		b.WriteByte(byte(t.Format))
		b.WriteByte(byte(len(t.Shape)))
		for _, d := range t.Shape {
			putUv(d)
		}
		if t.Format != FormatInt {
			continue
		}
		b.WriteByte(byte(t.Bits))
		b.WriteByte(byte(t.ScaleFormat))
		b.WriteByte(byte(layouts[i]))
		var flags byte
		if t.RowOrder != nil {
			flags |= flagRowOrder
		}
		if t.Protected != nil {
			flags |= flagProtected
		}
		if t.LQER != nil {
			flags |= flagLQER
		}
		b.WriteByte(flags)
		if p := t.Protected; p != nil {
			putUv(p.Size)
			b.WriteByte(byte(p.Bits))
			putUv(len(p.Starts))
			next := 0
			for _, s := range p.Starts {
				putUv(s - next)
				next = s + p.Size
			}
		}
		if f := t.LQER; f != nil {
			putUv(f.Rank)
			b.WriteByte(byte(f.ABits))
			putUv(f.AGroup)
			b.WriteByte(byte(f.BBits))
			putUv(f.BGroup)
		}
	}
	putUv(len(streams))
	index := map[string]int{}
	for i, n := range codecNames {
		index[n] = i
	}
	for _, s := range streams {
		b.WriteByte(byte(s.Kind))
		putUv(index[s.Codec])
		putUv(s.Raw)
		putUv(s.Size)
		if s.Kind == StreamSymbols {
			putUv(len(s.Tensors))
			for _, ti := range s.Tensors {
				putUv(ti)
			}
		}
	}
	return b.Bytes()
}

// remainders builds the fp16, fp32, side-symbol and row-order streams of q
// (before byte shuffling for the float ones).
func remainders(q *Quantized) (fp16, fp32, side, orders []byte, err error) {
	var h, f []byte
	put16 := func(vs []float32) {
		for _, v := range vs {
			h = binary.LittleEndian.AppendUint16(h, uint16(ToFloat16(v)))
		}
	}
	put32 := func(vs []float32) {
		for _, v := range vs {
			f = binary.LittleEndian.AppendUint32(f, math.Float32bits(v))
		}
	}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if t.Format == FormatInt {
			if t.ScaleFormat == FormatFP16 {
				put16(t.Scales)
			} else {
				put32(t.Scales)
			}
		}
	}
	for i := range q.Tensors {
		if t := &q.Tensors[i]; t.Format == FormatFP16 {
			put16(t.Values)
		}
	}
	for i := range q.Tensors {
		if t := &q.Tensors[i]; t.Format == FormatFP32 {
			put32(t.Values)
		}
	}
	for i := range q.Tensors {
		if p := q.Tensors[i].Protected; p != nil {
			put16(p.Scales)
		}
	}
	for i := range q.Tensors {
		if lq := q.Tensors[i].LQER; lq != nil {
			put16(lq.SA)
			put16(lq.SB)
		}
	}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if p := t.Protected; p != nil {
			for _, v := range p.Symbols {
				side = append(side, byte(v))
			}
		}
		if lq := t.LQER; lq != nil {
			for _, v := range slices.Concat(lq.QA, lq.QB) {
				side = append(side, byte(v))
			}
		}
		if t.RowOrder != nil {
			b, err := EncodePermutation(t.RowOrder)
			if err != nil {
				return nil, nil, nil, nil, fmt.Errorf("tensor %q: row order: %w", t.Name, err)
			}
			orders = append(orders, b...)
		}
	}
	return ByteShuffle(h, 2), ByteShuffle(f, 4), side, orders, nil
}
