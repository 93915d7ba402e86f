// Package bench measures how quantization schemes and codecs trade bytes
// for quality: each scheme x codec x packing is quantized, packed into a
// real artifact (the bytes golf pack writes for the same options), decoded
// back and checked, with sizes, speeds, the weight error and, given an
// EvalFunc, the val_bpb cost of the round trip. External compressors
// (zstd, brotli, xz, lrzip, zpaq) run on exactly the same streams when they
// are installed. On synthetic weights, whose distribution is known, the
// target table also shows the symbols' entropy under it (SourceEntropy):
// the floor no coder goes below, which says whether a ratio target is
// reachable at all. It is tooling: golf's counted code does not include it.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
)

// EvalFunc scores weights on held-out data and returns their val_bpb. The
// benchmark calls it on the original weights and on each scheme's
// round-tripped weights (the caller wires in train.Evaluate, keeping this
// package free of the training code).
type EvalFunc func(ctx context.Context, w model.Weights) (valBPB float64, err error)

// Packing is how a quantized model's symbols are laid out in streams.
type Packing struct {
	Layout   quant.Layout
	Group    quant.Grouping
	SortRows bool
}

// String is the packing in short form: "rows", "cols/class", "cols/class/sorted".
func (p Packing) String() string {
	s := p.Layout.String()
	if p.Group == quant.GroupClass {
		s += "/class"
	}
	if p.SortRows {
		s += "/sorted"
	}
	return s
}

// ParsePacking reads the short form of String.
func ParsePacking(s string) (Packing, error) {
	parts := strings.Split(s, "/")
	l, err := quant.ParseLayout(parts[0])
	if err != nil {
		return Packing{}, err
	}
	p := Packing{Layout: l}
	for _, x := range parts[1:] {
		switch x {
		case "class":
			p.Group = quant.GroupClass
		case "sorted":
			p.SortRows = true
		default:
			return Packing{}, fmt.Errorf("packing %q: unknown part %q (want class or sorted)", s, x)
		}
	}
	return p, nil
}

// Options returns the PackOptions of this packing with codec c.
func (p Packing) Options(c string) quant.PackOptions {
	return quant.PackOptions{Codec: c, Layout: p.Layout, Group: p.Group, SortRows: p.SortRows}
}

// Config says what Run measures.
type Config struct {
	Schemes  []quant.Scheme // nil: every predefined scheme (GPTQ ones only with Hessians)
	Codecs   []string       // codec names, AutoCodec allowed; nil: DefaultCodecs
	Packings []Packing      // nil: rows, one stream per tensor
	Options  quant.Options  // quantization options (Hessians for GPTQ)
	// Meta is stored in every artifact, so a row's bytes are what golf pack
	// writes for the same weights, scheme, codec and packing.
	Meta quant.Meta
	// Eval, when set, gives each scheme's post-round-trip val_bpb delta.
	Eval EvalFunc
	// Code is the counted code, added to each row's model bytes against
	// the budget.
	Code     quant.CodeSize
	Workers  int       // compression workers (0 = GOMAXPROCS)
	Progress io.Writer // progress lines (nil: silent)
	// Notes are passed through to the result (e.g. external tools missing).
	Notes []string
	// SourceEntropy, when set, gives the entropy in bits of a scheme's int
	// symbols under the known distribution the weights were drawn from
	// (synthetic weights: synthetic.Source.SymbolEntropy), ok false where
	// it is not known (GPTQ's symbols depend on the rounding of earlier
	// columns). No coder's symbol bytes go below it; Targets show it.
	SourceEntropy func(s quant.Scheme, q *quant.Quantized) (bits float64, ok bool)
}

// DefaultCodecs are the built-in codecs a benchmark compares by default.
var DefaultCodecs = []string{"zlib-9", "zstd-best", "brotli-11", "xz", "huff0", "fse", "cm", quant.AutoCodec}

// GeneralPurpose are the codecs the targets compare golf's own against: the
// best general-purpose compressors, as the external tools run them.
var GeneralPurpose = []string{"zstd-22", "brotli-q11", "xz-9e", "lrzip-z9", "zpaq-m5"}

// Row is one scheme, codec and packing.
type Row struct {
	Scheme       string  `json:"scheme"`
	Bits         string  `json:"bits"` // symbol widths used, e.g. "6/7"
	Codec        string  `json:"codec"`
	Packing      string  `json:"packing"`
	ModelBytes   int     `json:"model_bytes"`
	TotalBytes   int     `json:"total_bytes"` // model + code
	FitsBudget   bool    `json:"fits_budget"`
	BitsPerParam float64 `json:"bits_per_param"`
	SymbolBytes  int     `json:"symbol_bytes"`
	OtherBytes   int     `json:"other_bytes"`  // header, remainders, side symbols, row orders, checksum
	Order0Bytes  float64 `json:"order0_bytes"` // order-0 entropy bound of the symbols
	// RatioToOrder0 is SymbolBytes / Order0Bytes: below 1 means the codec
	// modelled structure beyond symbol frequencies.
	RatioToOrder0  float64 `json:"ratio_to_order0"`
	CompressMBps   float64 `json:"compress_mb_per_s"`   // raw stream bytes / wall time of Pack
	DecompressMBps float64 `json:"decompress_mb_per_s"` // raw stream bytes / wall time of DecodeArtifact
	// WeightRMSE is the root-mean-square difference between the original
	// and the round-tripped weights, relative to the weights' RMS.
	WeightRMSE float64 `json:"weight_rel_rmse"`
	// ValBPBDelta is round-tripped val_bpb minus the original's (nil
	// without an EvalFunc).
	ValBPBDelta *float64 `json:"val_bpb_delta,omitempty"`
	// SourceBytes is the entropy of the symbols under their known source
	// (Config.SourceEntropy), in bytes; nil where there is none.
	SourceBytes *float64 `json:"source_entropy_bytes,omitempty"`
}

// Result is a whole benchmark.
type Result struct {
	Params      int            `json:"params"`
	BaselineBPB *float64       `json:"baseline_val_bpb,omitempty"`
	Code        quant.CodeSize `json:"code"`
	Budget      int            `json:"budget_bytes"`
	Workers     int            `json:"workers"`
	Rows        []Row          `json:"rows"`
	Notes       []string       `json:"notes,omitempty"`
}

// Run quantizes w under each scheme, packs it with each codec and packing,
// decodes it back (checking the round trip is exact) and measures sizes,
// speeds and errors. Rows come grouped by scheme, in the order given.
func Run(ctx context.Context, w model.Weights, cfg Config) (*Result, error) {
	schemes := cfg.Schemes
	if schemes == nil {
		for _, s := range quant.Schemes() {
			if !s.UsesGPTQ() || len(cfg.Options.Hessians) > 0 {
				schemes = append(schemes, s)
			}
		}
	}
	codecs := cfg.Codecs
	if codecs == nil {
		codecs = DefaultCodecs
	}
	packings := cfg.Packings
	if packings == nil {
		packings = []Packing{{Layout: quant.LayoutRows}}
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = defaultWorkers()
	}
	res := &Result{Params: w.NumParams(), Code: cfg.Code, Budget: quant.Budget, Workers: workers, Notes: cfg.Notes}
	if cfg.Eval != nil {
		b, err := cfg.Eval(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("bench: evaluating the original weights: %w", err)
		}
		res.BaselineBPB = &b
	}
	meter := progress.New(cfg.Progress, "bench compress", "packs", int64(len(schemes)*len(codecs)*len(packings)))
	meter.SetInterval(5 * time.Second)
	for _, s := range schemes {
		q, err := quant.Quantize(ctx, w, s, cfg.Options)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		deq := q.Dequantize()
		relErr := relativeRMSE(w, deq)
		var delta *float64
		if cfg.Eval != nil {
			b, err := cfg.Eval(ctx, deq)
			if err != nil {
				return nil, fmt.Errorf("bench: evaluating scheme %s: %w", s.Name, err)
			}
			d := b - *res.BaselineBPB
			delta = &d
		}
		var source *float64
		if cfg.SourceEntropy != nil {
			if bits, ok := cfg.SourceEntropy(s, q); ok {
				b := bits / 8
				source = &b
			}
		}
		var sorted *quant.Quantized
		for _, p := range packings {
			qp := q
			if p.SortRows {
				if sorted == nil {
					sorted = &quant.Quantized{Scheme: q.Scheme, Tensors: slices.Clone(q.Tensors)}
					if err := quant.SortRows(ctx, sorted, workers); err != nil {
						return nil, err
					}
				}
				qp = sorted
			}
			for _, c := range codecs {
				row, err := packRow(ctx, cfg.Meta, qp, q, c, p, workers)
				if err != nil {
					return nil, fmt.Errorf("bench: scheme %s codec %s packing %v: %w", s.Name, c, p, err)
				}
				row.Bits = bitsUsed(q)
				row.WeightRMSE = relErr
				row.ValBPBDelta = delta
				row.SourceBytes = source
				row.TotalBytes = row.ModelBytes + cfg.Code.Bytes
				row.FitsBudget = row.TotalBytes <= quant.Budget
				res.Rows = append(res.Rows, row)
				meter.Add(1)
			}
		}
	}
	meter.Done()
	return res, nil
}

// packRow packs qp (q, possibly with row orders) and decodes it back.
func packRow(ctx context.Context, meta quant.Meta, qp, q *quant.Quantized, codecName string, p Packing, workers int) (Row, error) {
	opts := p.Options(codecName)
	opts.SortRows = false // qp carries the orders already
	opts.Workers = workers
	data, rep, err := quant.Pack(ctx, meta, qp, opts)
	if err != nil {
		return Row{}, err
	}
	start := time.Now()
	a, err := quant.DecodeArtifact(data)
	if err != nil {
		return Row{}, fmt.Errorf("decoding what was just packed: %w", err)
	}
	dec := time.Since(start).Seconds()
	for i := range q.Tensors {
		x, y := &q.Tensors[i], &a.Quantized.Tensors[i]
		if !slices.Equal(x.Symbols, y.Symbols) || !slices.Equal(x.Scales, y.Scales) || !slices.Equal(x.Values, y.Values) {
			return Row{}, fmt.Errorf("round trip of tensor %s is not exact", x.Name)
		}
	}
	mb := float64(rep.RawBytes) / 1e6
	return Row{
		Scheme:         q.Scheme,
		Codec:          codecName,
		Packing:        p.String(),
		ModelBytes:     rep.FileBytes,
		BitsPerParam:   rep.BitsPerParam(),
		SymbolBytes:    rep.SymbolBytes,
		OtherBytes:     rep.FileBytes - rep.SymbolBytes,
		Order0Bytes:    rep.Order0Bytes,
		RatioToOrder0:  float64(rep.SymbolBytes) / math.Max(rep.Order0Bytes, 1),
		CompressMBps:   mb / math.Max(rep.Seconds, 1e-9),
		DecompressMBps: mb / math.Max(dec, 1e-9),
	}, nil
}

// bitsUsed lists the distinct symbol widths of q, e.g. "5/6/8", or "fp16".
func bitsUsed(q *quant.Quantized) string {
	seen := map[int]bool{}
	for i := range q.Tensors {
		if q.Tensors[i].Format == quant.FormatInt {
			seen[q.Tensors[i].Bits] = true
		}
	}
	var bs []int
	for b := range seen {
		bs = append(bs, b)
	}
	sort.Ints(bs)
	var parts []string
	for _, b := range bs {
		parts = append(parts, strconv.Itoa(b))
	}
	if len(parts) == 0 {
		return "fp16"
	}
	return strings.Join(parts, "/")
}

// relativeRMSE is sqrt(sum (a-b)^2 / sum a^2) over all tensors.
func relativeRMSE(a, b model.Weights) float64 {
	var num, den float64
	for i := range a {
		for j, v := range a[i].Data {
			d := float64(v) - float64(b[i].Data[j])
			num += d * d
			den += float64(v) * float64(v)
		}
	}
	if den == 0 {
		return 0
	}
	return math.Sqrt(num / den)
}

// Table renders the result for people: rows grouped by scheme (the scheme,
// its widths, weight error and val_bpb delta on its first row, a blank line
// between schemes).
func (r *Result) Table() *report.Table {
	title := fmt.Sprintf("compression benchmark: %d parameters, code %d bytes, budget %d, %d workers", r.Params, r.Code.Bytes, r.Budget, r.Workers)
	if r.BaselineBPB != nil {
		title += fmt.Sprintf(", unquantized val_bpb %.4f", *r.BaselineBPB)
	}
	t := report.NewTable(title, "scheme", "bits", "weight err", "val_bpb delta", "packing", "codec", "model bytes", "symbols",
		"bits/param", "vs order-0", "comp MB/s", "decomp MB/s", "total", "fits")
	prev := ""
	for _, row := range r.Rows {
		scheme, bits, werr, delta := "", "", "", ""
		if row.Scheme != prev {
			if prev != "" {
				t.Add("", "", "", "", "", "", "", "", "", "", "", "", "", "")
			}
			scheme, bits, werr = row.Scheme, row.Bits, fmt.Sprintf("%.4f", row.WeightRMSE)
			if row.ValBPBDelta != nil {
				delta = fmt.Sprintf("%+.4f", *row.ValBPBDelta)
			}
			prev = row.Scheme
		}
		fits := "yes"
		if !row.FitsBudget {
			fits = "no"
		}
		t.Add(scheme, bits, werr, delta, row.Packing, row.Codec, row.ModelBytes, row.SymbolBytes, fmt.Sprintf("%.3f", row.BitsPerParam),
			fmt.Sprintf("%.4f", row.RatioToOrder0), fmt.Sprintf("%.2f", row.CompressMBps),
			fmt.Sprintf("%.2f", row.DecompressMBps), row.TotalBytes, fits)
	}
	return t
}

// Best returns, for each scheme, its smallest row.
func (r *Result) Best() []Row {
	best := map[string]int{}
	var order []string
	for i, row := range r.Rows {
		j, ok := best[row.Scheme]
		if !ok {
			order = append(order, row.Scheme)
		}
		if !ok || row.ModelBytes < r.Rows[j].ModelBytes {
			best[row.Scheme] = i
		}
	}
	var out []Row
	for _, s := range order {
		out = append(out, r.Rows[best[s]])
	}
	return out
}

// Target is the comparison the targets ask for, for one scheme and
// packing: golf's best built-in codec against the best general-purpose
// compressor on exactly the same symbols.
type Target struct {
	Scheme, Packing string
	Ours            string  `json:"ours"` // golf's smallest built-in codec
	OursSymbols     int     `json:"ours_symbol_bytes"`
	Best            string  `json:"best_general"` // the smallest of GeneralPurpose present
	BestSymbols     int     `json:"best_general_symbol_bytes"`
	Ratio           float64 `json:"ratio"` // OursSymbols / BestSymbols (target <= 0.97)
	Order0          float64 `json:"order0_bytes"`
	RatioToOrder0   float64 `json:"ours_ratio_to_order0"` // target <= 1.01
	// SourceBytes is the symbols' entropy under their known source (nil
	// without one), and SourceToBest its ratio to BestSymbols: above 0.97,
	// no coder whatever reaches the ratio target on these symbols.
	SourceBytes  *float64 `json:"source_entropy_bytes,omitempty"`
	SourceToBest *float64 `json:"source_to_best_general,omitempty"`
}

// Targets compares, for every scheme and packing with both kinds of row,
// golf's codecs with the general-purpose ones.
func (r *Result) Targets() []Target {
	type key struct{ s, p string }
	var order []key
	ours, general := map[key]Row{}, map[key]Row{}
	for _, row := range r.Rows {
		k := key{row.Scheme, row.Packing}
		if _, ok := ours[k]; !ok {
			if _, ok := general[k]; !ok {
				order = append(order, k)
			}
		}
		if slices.Contains(GeneralPurpose, row.Codec) {
			if g, ok := general[k]; !ok || row.SymbolBytes < g.SymbolBytes {
				general[k] = row
			}
		} else if slices.Contains(codec.BuiltinNames(), row.Codec) || row.Codec == quant.AutoCodec {
			if o, ok := ours[k]; !ok || row.SymbolBytes < o.SymbolBytes {
				ours[k] = row
			}
		}
	}
	var out []Target
	for _, k := range order {
		o, ok1 := ours[k]
		g, ok2 := general[k]
		if !ok1 || !ok2 {
			continue
		}
		x := Target{Scheme: k.s, Packing: k.p, Ours: o.Codec, OursSymbols: o.SymbolBytes, Best: g.Codec,
			BestSymbols: g.SymbolBytes, Ratio: float64(o.SymbolBytes) / float64(max(g.SymbolBytes, 1)),
			Order0: o.Order0Bytes, RatioToOrder0: o.RatioToOrder0, SourceBytes: o.SourceBytes}
		if o.SourceBytes != nil {
			f := *o.SourceBytes / float64(max(g.SymbolBytes, 1))
			x.SourceToBest = &f
		}
		out = append(out, x)
	}
	return out
}

// TargetTable renders Targets.
func (r *Result) TargetTable() *report.Table {
	targets := r.Targets()
	withSource := slices.ContainsFunc(targets, func(x Target) bool { return x.SourceBytes != nil })
	title := "golf's codec against the best general-purpose compressor on the same symbols (targets: ratio <= 0.97, vs order-0 <= 1.01)"
	cols := []string{"scheme", "packing", "ours", "symbol bytes", "best general", "symbol bytes", "ratio", "vs order-0"}
	if withSource {
		title += "; source entropy: the floor no coder goes below, from how the weights were drawn (floor/best above 0.97: no coder meets the ratio target)"
		cols = append(cols, "source entropy", "ours/floor", "floor/best")
	}
	t := report.NewTable(title, cols...)
	for _, x := range targets {
		cells := []any{x.Scheme, x.Packing, x.Ours, x.OursSymbols, x.Best, x.BestSymbols, fmt.Sprintf("%.4f", x.Ratio), fmt.Sprintf("%.4f", x.RatioToOrder0)}
		if withSource {
			if x.SourceBytes != nil {
				cells = append(cells, fmt.Sprintf("%.0f", *x.SourceBytes), fmt.Sprintf("%.4f", float64(x.OursSymbols) / *x.SourceBytes), fmt.Sprintf("%.4f", *x.SourceToBest))
			} else {
				cells = append(cells, "-", "-", "-")
			}
		}
		t.Add(cells...)
	}
	return t
}
