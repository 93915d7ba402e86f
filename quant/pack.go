package quant

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/paramgolf/golf/quant/codec"
)

// AutoCodec is the codec name that makes Pack try every candidate codec on
// each stream and keep the smallest.
const AutoCodec = "auto"

// Grouping says how int tensors are gathered into symbol streams.
type Grouping uint8

// Groupings.
const (
	// GroupTensor gives every int tensor its own stream.
	GroupTensor Grouping = iota
	// GroupClass puts the int tensors of one parameter class (all attention
	// matrices, all MLP matrices, the embedding) into one stream, so a
	// codec learns each role's statistics once (the record's per-group
	// streams, §5.1).
	GroupClass
)

// String returns "tensor" or "class".
func (g Grouping) String() string {
	if g == GroupClass {
		return "class"
	}
	return "tensor"
}

// ParseGrouping parses "tensor" or "class".
func ParseGrouping(s string) (Grouping, error) {
	switch s {
	case "tensor":
		return GroupTensor, nil
	case "class":
		return GroupClass, nil
	}
	return 0, fmt.Errorf("unknown stream grouping %q (want tensor or class)", s)
}

// PackOptions adjusts Pack.
type PackOptions struct {
	// Codec is a codec name (see quant/codec) or AutoCodec ("" means auto).
	Codec string
	// Candidates are the codecs auto tries (nil: every built-in codec,
	// codec.BuiltinNames).
	Candidates []string
	// Layout is the symbol layout of int tensors (0 means LayoutRows).
	Layout Layout
	// AutoLayout makes Pack also try the column-major layout of each
	// symbol stream and keep whichever codec and layout is smallest.
	AutoLayout bool
	// Group gathers int tensors into streams (default one per tensor).
	Group Grouping
	// MaxStreamSymbols, with GroupClass, splits a class whose tensors hold
	// more symbols than this into several streams of consecutive whole
	// tensors, each at most this many symbols (a tensor larger than the
	// cap gets a stream of its own): streams decode in parallel, so the
	// longest one bounds the time to read an artifact, at the price of a
	// codec that learns each class's statistics once per stream. 0: one
	// stream per class.
	MaxStreamSymbols int
	// SortRows stores every int matrix's rows in similarity order
	// (SimilarityOrder, the record's greedy L1 sort) unless the tensor
	// already carries a RowOrder; the order costs PermutationBytes(rows).
	SortRows bool
	// Workers bounds the streams compressed at once (0 = GOMAXPROCS).
	Workers int
}

// StreamReport is one stream of a packed artifact.
type StreamReport struct {
	Stream
	Layout Layout // symbol streams: the layout chosen
	Name   string // the tensor's name, the class of a group, or the stream kind
	// Order0Bytes is, for a symbol stream, the order-0 entropy bound of its
	// symbols in bytes (Order0Bits / 8 of each tensor's symbols, summed); 0
	// otherwise.
	Order0Bytes float64
}

// PackReport sums up what Pack wrote.
type PackReport struct {
	Scheme  string
	Params  int // values over all tensors
	Streams []StreamReport
	// FileBytes = HeaderBytes + SymbolBytes + FP16Bytes + FP32Bytes +
	// SideBytes + OrderBytes + 4 (checksum).
	FileBytes, HeaderBytes int
	SymbolBytes            int     // int tensors' symbols
	FP16Bytes, FP32Bytes   int     // scales, float tensors, LQER and protected-group scales
	SideBytes              int     // LQER codes and protected-group symbols
	OrderBytes             int     // stored row orders
	RawBytes               int     // all streams before compression
	Order0Bytes            float64 // sum of the symbol streams' order-0 bounds
	Seconds                float64 // wall time of compression
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
	tensors []int
	name    string
	layouts []Layout
	raw     map[Layout][]byte
	hint    map[Layout]codec.Hint
	order0  float64
	best    []byte
	codec   string
	layout  Layout
}

// Pack encodes q with its metadata into artifact bytes (see the byte layout
// in artifact.go). When meta has a model, q's tensors must be exactly its
// parameters, in order. Streams are compressed in parallel; ctx cancels
// between streams. The output depends only on the inputs, never on timing.
func Pack(ctx context.Context, meta Meta, q *Quantized, opts PackOptions) ([]byte, *PackReport, error) {
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
	metaJSON, err := encodeMeta(meta)
	if err != nil {
		return nil, nil, fmt.Errorf("pack: metadata: %w", err)
	}
	if meta.HasModel() {
		if err := checkModelTensors(meta.Model, q.Tensors); err != nil {
			return nil, nil, fmt.Errorf("pack: tensors do not match the model config: %w", err)
		}
	}
	if opts.SortRows {
		if q, err = withRowOrders(ctx, q, opts.Workers); err != nil {
			return nil, nil, err
		}
	}
	jobs, layouts, err := planStreams(q, opts)
	if err != nil {
		return nil, nil, err
	}
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
		var err error
		results[i], err = t.codec.Compress(t.job.raw[t.layout], t.job.hint[t.layout])
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
		for _, ti := range j.tensors {
			layouts[ti] = layoutFor(&q.Tensors[ti], j.layout)
		}
		streams = append(streams, Stream{Kind: j.kind, Tensors: j.tensors, Codec: j.codec, Raw: len(j.raw[j.layout]), Size: len(j.best)})
		if !used[j.codec] {
			used[j.codec] = true
			codecNames = append(codecNames, j.codec)
		}
	}
	table := encodeHeader(metaJSON, q, layouts, codecNames, streams)
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
		case StreamFP16:
			rep.FP16Bytes += len(j.best)
		case StreamFP32:
			rep.FP32Bytes += len(j.best)
		case StreamSide:
			rep.SideBytes += len(j.best)
		case StreamRowOrders:
			rep.OrderBytes += len(j.best)
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

// SortRows sets the RowOrder of every int matrix of q that has none to its
// similarity order (SimilarityOrder), in parallel; Pack with
// PackOptions.SortRows does the same on a copy. Sorting once and packing
// many times (as the benchmark does) saves the O(rows² cols) sort.
func SortRows(ctx context.Context, q *Quantized, workers int) error {
	errs, err := forEach(ctx, len(q.Tensors), workers, func(i int) error {
		t := &q.Tensors[i]
		if t.Format == FormatInt && len(t.Shape) == 2 && t.ScaleFormat == FormatFP16 && t.RowOrder == nil && t.Shape[0] > 1 {
			t.RowOrder = SimilarityOrder(t.Symbols, t.Shape[0], t.Shape[1])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sort rows: %w", err)
	}
	_ = errs
	return nil
}

// withRowOrders returns q, or a shallow copy with row orders filled in.
func withRowOrders(ctx context.Context, q *Quantized, workers int) (*Quantized, error) {
	c := &Quantized{Scheme: q.Scheme, Tensors: slices.Clone(q.Tensors)}
	if err := SortRows(ctx, c, workers); err != nil {
		return nil, err
	}
	return c, nil
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

func packCandidates(opts PackOptions) ([]codec.Codec, error) {
	name := opts.Codec
	if name == "" {
		name = AutoCodec
	}
	names := []string{name}
	if name == AutoCodec {
		names = opts.Candidates
		if len(names) == 0 {
			names = codec.BuiltinNames()
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
		switch {
		case t.Name == "" || len(t.Name) > maxNameLen || names[t.Name]:
			return fmt.Errorf("pack: tensor %d: empty, too long or repeated name %q", i, t.Name)
		case len(t.Shape) > maxRank:
			return fmt.Errorf("pack: tensor %q: rank %d above %d", t.Name, len(t.Shape), maxRank)
		case !t.Class.Valid():
			return fmt.Errorf("pack: tensor %q: invalid class %d", t.Name, t.Class)
		}
		names[t.Name] = true
		if err := t.validate(); err != nil {
			return fmt.Errorf("pack: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// layoutFor is the layout a tensor gets in a stream laid out as l: tensors
// that are not matrices stay row-major under "cols".
func layoutFor(t *QTensor, l Layout) Layout {
	if l == LayoutCols && len(t.Shape) != 2 {
		return LayoutRows
	}
	return l
}

// splitGroups cuts every group into runs of consecutive tensors of at most
// limit symbols (a tensor above the limit alone).
func splitGroups(q *Quantized, groups [][]int, limit int) [][]int {
	var out [][]int
	for _, g := range groups {
		var run []int
		n := 0
		for _, ti := range g {
			size := len(q.Tensors[ti].Symbols)
			if len(run) > 0 && n+size > limit {
				out = append(out, run)
				run, n = nil, 0
			}
			run = append(run, ti)
			n += size
		}
		out = append(out, run)
	}
	return out
}

// planStreams builds the raw streams of q and each int tensor's default
// layout.
func planStreams(q *Quantized, opts PackOptions) ([]*streamJob, []Layout, error) {
	layouts := make([]Layout, len(q.Tensors))
	var groups [][]int
	byClass := map[int]int{} // class -> group index
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if t.Format != FormatInt {
			continue
		}
		layouts[i] = layoutFor(t, opts.Layout)
		if opts.Group == GroupClass {
			g, ok := byClass[int(t.Class)]
			if !ok {
				g = len(groups)
				byClass[int(t.Class)] = g
				groups = append(groups, nil)
			}
			groups[g] = append(groups[g], i)
		} else {
			groups = append(groups, []int{i})
		}
	}
	if opts.Group == GroupClass && opts.MaxStreamSymbols > 0 {
		groups = splitGroups(q, groups, opts.MaxStreamSymbols)
	}
	var jobs []*streamJob
	for _, g := range groups {
		name := q.Tensors[g[0]].Name
		if opts.Group == GroupClass {
			name = fmt.Sprintf("%s (%d tensors)", q.Tensors[g[0]].Class, len(g))
		}
		j := &streamJob{kind: StreamSymbols, tensors: g, name: name, layouts: []Layout{opts.Layout},
			raw: map[Layout][]byte{}, hint: map[Layout]codec.Hint{}}
		if opts.AutoLayout && opts.Layout != LayoutCols {
			j.layouts = append(j.layouts, LayoutCols)
		}
		for _, l := range j.layouts {
			ls := slices.Clone(layouts)
			var raw []byte
			for _, ti := range g {
				ls[ti] = layoutFor(&q.Tensors[ti], l)
				raw = append(raw, layoutSymbols(&q.Tensors[ti], ls[ti])...)
			}
			j.raw[l] = raw
			j.hint[l] = symbolsHint(q, ls, g)
		}
		for _, ti := range g {
			t := &q.Tensors[ti]
			j.order0 += codec.Order0Bits(layoutSymbols(&QTensor{Symbols: t.Symbols, Bits: t.Bits, Shape: t.Shape}, LayoutRows)) / 8
		}
		jobs = append(jobs, j)
	}
	fp16, fp32, side, orders, err := remainders(q)
	if err != nil {
		return nil, nil, fmt.Errorf("pack: %w", err)
	}
	add := func(kind StreamKind, raw []byte) {
		if len(raw) > 0 {
			jobs = append(jobs, &streamJob{kind: kind, name: kind.String(), layouts: []Layout{0},
				raw: map[Layout][]byte{0: raw}, hint: map[Layout]codec.Hint{0: remainderHint(kind, len(raw))}})
		}
	}
	add(StreamFP16, fp16)
	add(StreamFP32, fp32)
	add(StreamSide, side)
	add(StreamRowOrders, orders)
	return jobs, layouts, nil
}
