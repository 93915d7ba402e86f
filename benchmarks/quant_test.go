package benchmarks

// Quantization and codec benchmarks on baseline-shaped synthetic weights:
//
//	go test ./benchmarks -run XXX -bench Quant -benchtime 1x

import (
	"context"
	"sync"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/codec"
	"github.com/paramgolf/golf/quant/synthetic"
)

// quantFixture is the baseline-shaped synthetic model under the int6-sd
// scheme, with each codec's total size on its symbol streams.
type quantFixture struct {
	weights model.Weights
	q       *quant.Quantized
	streams [][]byte
	hints   []codec.Hint
	raw     int
	order0  float64
	generic int // smallest of zstd-best, brotli-11, xz on the same streams
}

var (
	fixtureOnce sync.Once
	fixture     quantFixture
	fixtureErr  error
)

func loadFixture(b *testing.B) *quantFixture {
	b.Helper()
	fixtureOnce.Do(func() {
		w, err := synthetic.Weights("baseline", 1)
		if err != nil {
			fixtureErr = err
			return
		}
		s, _ := quant.SchemeByName("int6-sd")
		q, err := quant.Quantize(context.Background(), w, s, quant.Options{})
		if err != nil {
			fixtureErr = err
			return
		}
		f := quantFixture{weights: w, q: q}
		for i := range q.Tensors {
			t := &q.Tensors[i]
			if t.Format != quant.FormatInt {
				continue
			}
			buf := make([]byte, len(t.Symbols))
			for j, v := range t.Symbols {
				buf[j] = byte(v)
			}
			f.streams = append(f.streams, buf)
			f.hints = append(f.hints, codec.Hint{Bits: t.Bits, RowLen: t.Shape[len(t.Shape)-1]})
			f.raw += len(buf)
			f.order0 += codec.Order0Bits(buf) / 8
		}
		for _, name := range []string{"zstd-best", "brotli-11", "xz"} {
			c, _ := codec.ByName(name)
			n := 0
			for i, s := range f.streams {
				z, err := c.Compress(s, f.hints[i])
				if err != nil {
					fixtureErr = err
					return
				}
				n += len(z)
			}
			if f.generic == 0 || n < f.generic {
				f.generic = n
			}
		}
		fixture = f
	})
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return &fixture
}

// BenchmarkQuantCompress compresses the int6 symbol streams of the
// baseline-shaped synthetic model with each codec. Metrics: the size as a
// ratio to the order-0 entropy bound and to the best of zstd/brotli/xz on the
// same symbols (measured in the same run); throughput in MB/s of symbols.
func BenchmarkQuantCompress(b *testing.B) {
	f := loadFixture(b)
	for _, c := range codec.All() {
		b.Run(c.Name(), func(b *testing.B) {
			b.SetBytes(int64(f.raw))
			var size int
			for range b.N {
				size = 0
				for i, s := range f.streams {
					z, err := c.Compress(s, f.hints[i])
					if err != nil {
						b.Fatal(err)
					}
					size += len(z)
				}
			}
			b.ReportMetric(float64(size)/f.order0, "x-order0")
			b.ReportMetric(float64(size)/float64(f.generic), "x-best-generic")
		})
	}
}

// BenchmarkQuantDecompress decodes the same streams.
func BenchmarkQuantDecompress(b *testing.B) {
	f := loadFixture(b)
	for _, c := range codec.All() {
		b.Run(c.Name(), func(b *testing.B) {
			enc := make([][]byte, len(f.streams))
			for i, s := range f.streams {
				z, err := c.Compress(s, f.hints[i])
				if err != nil {
					b.Fatal(err)
				}
				enc[i] = z
			}
			b.SetBytes(int64(f.raw))
			b.ResetTimer()
			for range b.N {
				for i, z := range enc {
					if _, err := c.Decompress(z, len(f.streams[i]), f.hints[i]); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkQuantize times each predefined scheme (GPTQ aside) on the
// baseline-shaped model; throughput is parameters as bytes of float32.
func BenchmarkQuantize(b *testing.B) {
	f := loadFixture(b)
	for _, s := range quant.Schemes() {
		if s.UsesGPTQ() {
			continue
		}
		b.Run(s.Name, func(b *testing.B) {
			b.SetBytes(int64(4 * f.weights.NumParams()))
			for range b.N {
				if _, err := quant.Quantize(context.Background(), f.weights, s, quant.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQuantScaleLayout measures the byte-plane transform the artifact
// applies to fp16 scales: the size of all per-row scales of the int6-sd
// baseline model stored as planes (low bytes, then high bytes) divided by
// the size of the same scales interleaved (little-endian pairs), per codec.
func BenchmarkQuantScaleLayout(b *testing.B) {
	f := loadFixture(b)
	var scales []uint16
	for i := range f.q.Tensors {
		t := &f.q.Tensors[i]
		if t.Format == quant.FormatInt && t.ScaleFormat == quant.FormatFP16 {
			for _, s := range t.Scales {
				scales = append(scales, uint16(quant.ToFloat16(s)))
			}
		}
	}
	n := len(scales)
	planes, pairs := make([]byte, 2*n), make([]byte, 2*n)
	for i, s := range scales {
		planes[i], planes[n+i] = byte(s), byte(s>>8)
		pairs[2*i], pairs[2*i+1] = byte(s), byte(s>>8)
	}
	for _, name := range []string{"zlib-9", "zstd-best", "brotli-11", "xz", "fse", "cm"} {
		c, _ := codec.ByName(name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(2 * n))
			var zp, zi []byte
			for range b.N {
				var err error
				if zp, err = c.Compress(planes, codec.Hint{RowLen: n}); err != nil {
					b.Fatal(err)
				}
				if zi, err = c.Compress(pairs, codec.Hint{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(zp)), "planes-bytes")
			b.ReportMetric(float64(len(zp))/float64(len(zi)), "x-interleaved")
		})
	}
}
