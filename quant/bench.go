package quant

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
)

// EvalFunc scores weights on held-out data and returns their val_bpb. The
// benchmark calls it on the original weights and on each scheme's
// round-tripped weights (train.Evaluate, wired in by the caller, keeps this
// package free of the training code).
type EvalFunc func(ctx context.Context, w model.Weights) (valBPB float64, err error)

// BenchConfig says what Bench measures.
type BenchConfig struct {
	Schemes []Scheme // nil: every predefined scheme (GPTQ ones only with Hessians)
	Codecs  []string // codec names, AutoCodec allowed; nil: DefaultBenchCodecs
	Layouts []Layout // symbol layouts; nil: rows only
	Options Options  // quantization options (Hessians for GPTQ)
	// Eval, when set, gives each scheme's post-round-trip val_bpb delta.
	Eval     EvalFunc
	Workers  int       // compression workers (0 = GOMAXPROCS)
	Progress io.Writer // progress lines (nil: silent)
}

// DefaultBenchCodecs are the codecs a benchmark compares by default.
var DefaultBenchCodecs = []string{"zlib-9", "zstd-best", "brotli-11", "xz", "huff0", "fse", "cm", AutoCodec}

// BenchRow is one scheme, codec and layout.
type BenchRow struct {
	Scheme       string  `json:"scheme"`
	Bits         string  `json:"bits"` // symbol widths used, e.g. "6/8"
	Codec        string  `json:"codec"`
	Layout       string  `json:"layout"`
	ModelBytes   int     `json:"model_bytes"`
	BitsPerParam float64 `json:"bits_per_param"`
	SymbolBytes  int     `json:"symbol_bytes"`
	Order0Bytes  float64 `json:"order0_bytes"` // order-0 entropy bound of the symbols
	// RatioToOrder0 is SymbolBytes / Order0Bytes: below 1 means the codec
	// modelled structure beyond symbol frequencies.
	RatioToOrder0 float64 `json:"ratio_to_order0"`
	CompressMBps  float64 `json:"compress_mb_per_s"`   // raw stream bytes / wall time
	DecompressMBs float64 `json:"decompress_mb_per_s"` // raw stream bytes / wall time of DecodeArtifact
	// WeightRMSE is the root-mean-square difference between the original
	// and the round-tripped weights, relative to the weights' RMS.
	WeightRMSE float64 `json:"weight_rel_rmse"`
	// ValBPBDelta is round-tripped val_bpb minus the original's (nil
	// without an EvalFunc).
	ValBPBDelta *float64 `json:"val_bpb_delta,omitempty"`
}

// BenchResult is a whole benchmark.
type BenchResult struct {
	Params      int        `json:"params"`
	BaselineBPB *float64   `json:"baseline_val_bpb,omitempty"`
	Rows        []BenchRow `json:"rows"`
}

// Bench quantizes w under each scheme, packs it with each codec and layout,
// decodes it back (checking the round trip is exact) and measures sizes,
// speeds and errors.
func Bench(ctx context.Context, w model.Weights, cfg BenchConfig) (*BenchResult, error) {
	schemes := cfg.Schemes
	if schemes == nil {
		for _, s := range Schemes() {
			if !s.UsesGPTQ() || len(cfg.Options.Hessians) > 0 {
				schemes = append(schemes, s)
			}
		}
	}
	codecs := cfg.Codecs
	if codecs == nil {
		codecs = DefaultBenchCodecs
	}
	layouts := cfg.Layouts
	if layouts == nil {
		layouts = []Layout{LayoutRows}
	}
	res := &BenchResult{Params: w.NumParams()}
	if cfg.Eval != nil {
		b, err := cfg.Eval(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("bench: evaluating the original weights: %w", err)
		}
		res.BaselineBPB = &b
	}
	meter := progress.New(cfg.Progress, "bench compress", "packs", int64(len(schemes)*len(codecs)*len(layouts)))
	meter.SetInterval(5 * time.Second)
	for _, s := range schemes {
		q, err := Quantize(ctx, w, s, cfg.Options)
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
		for _, l := range layouts {
			for _, c := range codecs {
				row, err := benchPack(ctx, q, c, l, cfg.Workers)
				if err != nil {
					return nil, fmt.Errorf("bench: scheme %s codec %s layout %v: %w", s.Name, c, l, err)
				}
				row.Bits = bitsUsed(q)
				row.WeightRMSE = relErr
				row.ValBPBDelta = delta
				res.Rows = append(res.Rows, row)
				meter.Add(1)
			}
		}
	}
	meter.Done()
	return res, nil
}

func benchPack(ctx context.Context, q *Quantized, codecName string, l Layout, workers int) (BenchRow, error) {
	data, rep, err := Pack(ctx, nil, q, PackOptions{Codec: codecName, Layout: l, Workers: workers})
	if err != nil {
		return BenchRow{}, err
	}
	start := time.Now()
	a, err := DecodeArtifact(data)
	if err != nil {
		return BenchRow{}, fmt.Errorf("decoding what was just packed: %w", err)
	}
	dec := time.Since(start).Seconds()
	for i := range q.Tensors {
		x, y := &q.Tensors[i], &a.Quantized.Tensors[i]
		if !slices.Equal(x.Symbols, y.Symbols) || !slices.Equal(x.Scales, y.Scales) || !slices.Equal(x.Values, y.Values) {
			return BenchRow{}, fmt.Errorf("round trip of tensor %s is not exact", x.Name)
		}
	}
	mb := float64(rep.RawBytes) / 1e6
	return BenchRow{
		Scheme:        q.Scheme,
		Codec:         codecName,
		Layout:        l.String(),
		ModelBytes:    rep.FileBytes,
		BitsPerParam:  rep.BitsPerParam(),
		SymbolBytes:   rep.SymbolBytes,
		Order0Bytes:   rep.Order0Bytes,
		RatioToOrder0: float64(rep.SymbolBytes) / math.Max(rep.Order0Bytes, 1),
		CompressMBps:  mb / math.Max(rep.Seconds, 1e-9),
		DecompressMBs: mb / math.Max(dec, 1e-9),
	}, nil
}

// bitsUsed lists the distinct symbol widths of q, e.g. "5/6/8", or "fp16".
func bitsUsed(q *Quantized) string {
	seen := map[int]bool{}
	for i := range q.Tensors {
		if q.Tensors[i].Format == FormatInt {
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

// Table renders the result for people: one row per scheme, codec and layout.
func (r *BenchResult) Table() *report.Table {
	title := fmt.Sprintf("compression benchmark: %d parameters", r.Params)
	if r.BaselineBPB != nil {
		title += fmt.Sprintf(", unquantized val_bpb %.4f", *r.BaselineBPB)
	}
	t := report.NewTable(title, "scheme", "bits", "codec", "layout", "model bytes", "bits/param",
		"vs order-0", "comp MB/s", "decomp MB/s", "weight rel err", "val_bpb delta")
	for _, row := range r.Rows {
		delta := ""
		if row.ValBPBDelta != nil {
			delta = fmt.Sprintf("%+.4f", *row.ValBPBDelta)
		}
		t.Add(row.Scheme, row.Bits, row.Codec, row.Layout, row.ModelBytes, fmt.Sprintf("%.3f", row.BitsPerParam),
			fmt.Sprintf("%.4f", row.RatioToOrder0), fmt.Sprintf("%.1f", row.CompressMBps),
			fmt.Sprintf("%.1f", row.DecompressMBs), fmt.Sprintf("%.4f", row.WeightRMSE), delta)
	}
	return t
}

// Best returns, for each scheme, its smallest row.
func (r *BenchResult) Best() []BenchRow {
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
	var out []BenchRow
	for _, s := range order {
		out = append(out, r.Rows[best[s]])
	}
	return out
}
