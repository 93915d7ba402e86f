package quant

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/paramgolf/golf/quant/codec"
)

// AutoCodec is the codec name that makes Pack try every candidate codec on
// each stream and keep the smallest.
const AutoCodec = "auto"

// PackOptions adjusts Pack.
type PackOptions struct {
	// Codec is a codec name (see quant/codec) or AutoCodec ("" means auto).
	Codec string
	// Candidates are the codecs auto tries (nil: every registered codec).
	Candidates []string
	// Layout is the symbol layout of int tensors (0 means LayoutRows).
	Layout Layout
	// AutoLayout makes auto also try the column-major layout of each 2-D
	// symbol stream and keep whichever codec and layout is smallest.
	AutoLayout bool
	// Workers bounds the streams compressed at once (0 = GOMAXPROCS).
	Workers int
}

// StreamReport is one stream of a packed artifact.
type StreamReport struct {
	Stream
	Layout Layout // symbol streams: the layout chosen
	Name   string // the tensor's name, or the stream kind
	// Order0Bytes is, for a symbol stream, the order-0 entropy bound of its
	// symbols in bytes (Order0Bits / 8 over one symbol per byte); 0 otherwise.
	Order0Bytes float64
}

// PackReport sums up what Pack wrote.
type PackReport struct {
	Scheme  string
	Params  int // values over all tensors
	Streams []StreamReport
	// FileBytes = HeaderBytes + SymbolBytes + ScaleBytes + FloatBytes + 4 (checksum).
	FileBytes, HeaderBytes              int
	SymbolBytes, ScaleBytes, FloatBytes int
	RawBytes                            int     // all streams before compression
	Order0Bytes                         float64 // sum of the symbol streams' order-0 bounds
	Seconds                             float64 // wall time of compression
}

// BitsPerParam is FileBytes*8 / Params.
func (r *PackReport) BitsPerParam() float64 {
	if r.Params == 0 {
		return 0
	}
	return float64(r.FileBytes) * 8 / float64(r.Params)
}

type streamJob struct {
	kind    StreamKind
	tensor  int
	name    string
	layouts []Layout
	raw     map[Layout][]byte
	order0  float64
	best    []byte
	codec   string
	layout  Layout
	err     error
}

// Pack encodes q with its model configuration (JSON) into artifact bytes
// (see the byte layout in artifact.go). Streams are compressed in parallel;
// ctx cancels between streams.
func Pack(ctx context.Context, config []byte, q *Quantized, opts PackOptions) ([]byte, *PackReport, error) {
	start := time.Now()
	if opts.Layout == 0 {
		opts.Layout = LayoutRows
	}
	candidates, err := packCandidates(opts)
	if err != nil {
		return nil, nil, err
	}
	if err := checkQuantized(q); err != nil {
		return nil, nil, err
	}
	jobs, layouts := planStreams(q, opts)
	type task struct {
		job    *streamJob
		layout Layout
		codec  codec.Codec
	}
	var tasks []task
	for _, j := range jobs {
		for _, l := range j.layouts {
			for _, c := range candidates {
				tasks = append(tasks, task{j, l, c})
			}
		}
	}
	results := make([][]byte, len(tasks))
	errs, ctxErr := forEach(ctx, len(tasks), opts.Workers, func(i int) error {
		t := tasks[i]
		hint := codec.Hint{RowLen: len(t.job.raw[t.layout]) / max(planeCountOf(t.job.kind), 1)}
		if t.job.kind == StreamSymbols {
			hint = symbolHint(&q.Tensors[t.job.tensor], t.layout)
		}
		var err error
		results[i], err = t.codec.Compress(t.job.raw[t.layout], hint)
		return err
	})
	if ctxErr != nil {
		return nil, nil, fmt.Errorf("pack: %w", ctxErr)
	}
	for i, t := range tasks {
		if errs[i] != nil {
			return nil, nil, fmt.Errorf("pack %s with %s: %w", t.job.name, t.codec.Name(), errs[i])
		}
		if t.job.best == nil || len(results[i]) < len(t.job.best) {
			t.job.best, t.job.codec, t.job.layout = results[i], t.codec.Name(), t.layout
		}
	}
	var streams []Stream
	used := map[string]bool{}
	var codecNames []string
	for _, j := range jobs {
		if j.kind == StreamSymbols {
			layouts[j.tensor] = j.layout
		}
		streams = append(streams, Stream{Kind: j.kind, Tensor: j.tensor, Codec: j.codec, Raw: len(j.raw[j.layout]), Size: len(j.best)})
		if !used[j.codec] {
			used[j.codec] = true
			codecNames = append(codecNames, j.codec)
		}
	}
	table := encodeHeader(config, q, layouts, codecNames, streams)
	out, err := wrapHeader(table)
	if err != nil {
		return nil, nil, err
	}
	rep := &PackReport{Scheme: q.Scheme, HeaderBytes: len(out)}
	for i, j := range jobs {
		streams[i].Offset = len(out)
		out = append(out, j.best...)
		rep.Streams = append(rep.Streams, StreamReport{Stream: streams[i], Layout: j.layout, Name: j.name, Order0Bytes: j.order0})
		rep.RawBytes += streams[i].Raw
		switch j.kind {
		case StreamSymbols:
			rep.SymbolBytes += len(j.best)
			rep.Order0Bytes += j.order0
		case StreamScales16, StreamScales32:
			rep.ScaleBytes += len(j.best)
		default:
			rep.FloatBytes += len(j.best)
		}
	}
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
	rep.FileBytes = len(out)
	for i := range q.Tensors {
		rep.Params += q.Tensors[i].NumElements()
	}
	rep.Seconds = time.Since(start).Seconds()
	return out, rep, nil
}

// headerCodecs are the codecs tried on the header table (mostly tensor
// names, which compress 4-5x).
var headerCodecs = []codec.Codec{codec.Store{}, codec.Zlib{}, codec.Brotli{}, codec.XZ{}}

// wrapHeader writes magic, version and the smallest compression of table.
func wrapHeader(table []byte) ([]byte, error) {
	var best []byte
	var bestName string
	for _, c := range headerCodecs {
		z, err := c.Compress(table, codec.Hint{})
		if err != nil {
			return nil, fmt.Errorf("pack: header: %w", err)
		}
		if best == nil || len(z) < len(best) {
			best, bestName = z, c.Name()
		}
	}
	out := append([]byte(artifactMagic), artifactVersion)
	out = binary.AppendUvarint(out, uint64(len(bestName)))
	out = append(out, bestName...)
	out = binary.AppendUvarint(out, uint64(len(table)))
	out = binary.AppendUvarint(out, uint64(len(best)))
	return append(out, best...), nil
}

func planeCountOf(k StreamKind) int {
	if k == StreamSymbols {
		return 1
	}
	return planeCount(k)
}

func packCandidates(opts PackOptions) ([]codec.Codec, error) {
	name := opts.Codec
	if name == "" {
		name = AutoCodec
	}
	names := []string{name}
	if name == AutoCodec {
		names = opts.Candidates
		if len(names) == 0 {
			names = codec.Names()
		}
	}
	var cs []codec.Codec
	for _, n := range names {
		c, err := codec.ByName(n)
		if err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// checkQuantized verifies that q is consistent before it is written.
func checkQuantized(q *Quantized) error {
	names := map[string]bool{}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		n := t.NumElements()
		switch {
		case t.Name == "" || len(t.Name) > maxNameLen || names[t.Name]:
			return fmt.Errorf("pack: tensor %d: empty, too long or repeated name %q", i, t.Name)
		case len(t.Shape) > maxRank:
			return fmt.Errorf("pack: tensor %q: rank %d above %d", t.Name, len(t.Shape), maxRank)
		}
		names[t.Name] = true
		switch t.Format {
		case FormatFP16, FormatFP32:
			if len(t.Values) != n {
				return fmt.Errorf("pack: tensor %q: %d values for shape %v", t.Name, len(t.Values), t.Shape)
			}
		case FormatInt:
			rows := 1
			if t.ScaleFormat == FormatFP16 {
				if len(t.Shape) != 2 {
					return fmt.Errorf("pack: tensor %q: per-row scales need a 2-D shape, have %v", t.Name, t.Shape)
				}
				rows = t.Shape[0]
			}
			if n == 0 {
				rows = 0
			}
			if len(t.Symbols) != n || len(t.Scales) != rows || t.Bits < 2 || t.Bits > 8 {
				return fmt.Errorf("pack: tensor %q: %d symbols, %d scales, %d bits for shape %v", t.Name, len(t.Symbols), len(t.Scales), t.Bits, t.Shape)
			}
			qmax := int8(1<<(t.Bits-1) - 1)
			for _, s := range t.Symbols {
				if s < -qmax || s > qmax {
					return fmt.Errorf("pack: tensor %q: symbol %d outside ±%d", t.Name, s, qmax)
				}
			}
			for _, s := range t.Scales {
				if t.ScaleFormat == FormatFP16 && RoundFloat16(s) != s {
					return fmt.Errorf("pack: tensor %q: scale %v is not an fp16 value", t.Name, s)
				}
				if !(s > 0) || math.IsInf(float64(s), 0) {
					return fmt.Errorf("pack: tensor %q: scale %v is not positive and finite", t.Name, s)
				}
			}
		default:
			return fmt.Errorf("pack: tensor %q: unknown format %v", t.Name, t.Format)
		}
		if t.Format == FormatFP16 {
			for _, v := range t.Values {
				if RoundFloat16(v) != v {
					return fmt.Errorf("pack: tensor %q: value %v is not an fp16 value", t.Name, v)
				}
			}
		}
	}
	return nil
}

// planStreams builds the raw streams of q.
func planStreams(q *Quantized, opts PackOptions) ([]*streamJob, []Layout) {
	layouts := make([]Layout, len(q.Tensors))
	var jobs []*streamJob
	var s16, v16 []uint16
	var s32, v32 []uint32
	for i := range q.Tensors {
		t := &q.Tensors[i]
		switch t.Format {
		case FormatFP16:
			for _, v := range t.Values {
				v16 = append(v16, uint16(ToFloat16(v)))
			}
		case FormatFP32:
			for _, v := range t.Values {
				v32 = append(v32, math.Float32bits(v))
			}
		case FormatInt:
			l := opts.Layout
			if l == LayoutCols && len(t.Shape) != 2 {
				l = LayoutRows
			}
			j := &streamJob{kind: StreamSymbols, tensor: i, name: t.Name, layouts: []Layout{l}, raw: map[Layout][]byte{}}
			if opts.AutoLayout && len(t.Shape) == 2 && l != LayoutCols {
				j.layouts = append(j.layouts, LayoutCols)
			}
			for _, l := range j.layouts {
				j.raw[l] = layoutSymbols(t, l)
			}
			j.order0 = codec.Order0Bits(layoutSymbols(t, LayoutRows)) / 8
			layouts[i] = l
			jobs = append(jobs, j)
			for _, s := range t.Scales {
				if t.ScaleFormat == FormatFP16 {
					s16 = append(s16, uint16(ToFloat16(s)))
				} else {
					s32 = append(s32, math.Float32bits(s))
				}
			}
		}
	}
	add := func(kind StreamKind, raw []byte) {
		if len(raw) > 0 {
			jobs = append(jobs, &streamJob{kind: kind, name: kind.String(), layouts: []Layout{0}, raw: map[Layout][]byte{0: raw}})
		}
	}
	add(StreamScales16, plane16(s16))
	add(StreamScales32, plane32(s32))
	add(StreamValues16, plane16(v16))
	add(StreamValues32, plane32(v32))
	return jobs, layouts
}
