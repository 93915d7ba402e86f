package benchmarks

// Data benchmarks. Reading throughput is in MB/s of shard file; each
// sub-benchmark also reports its speed as a multiple of a plain os.ReadFile
// of the same file, timed between its own iterations (x_readfile), so the
// ratio holds on any machine and under any load. The file was just written, so it is in the page cache:
// these are warm-cache numbers, the case of every epoch after the first.
//
//	go test ./benchmarks -run XXX -bench 'Shard|DataBuild' -benchtime 2s
//
// BenchmarkDataBuild tokenizes the embedded corpus into shards and reports
// the build's rate as a multiple of the tokenizer's EncodeAll alone on the
// same documents, timed between its iterations (x_encode): 1 would mean that
// reading, JSON decoding, batching and writing cost nothing.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
)

// benchShardTokens is the size of the benchmark shard: 50 M tokens, a
// 100 MB file (half a challenge shard).
const benchShardTokens = 50_000_000

// writeBenchShard writes a shard of sp1024-like ids into dir.
func writeBenchShard(b *testing.B, dir string) (string, int64) {
	b.Helper()
	toks := make([]uint16, benchShardTokens)
	x := uint32(1)
	for i := range toks {
		x = x*1664525 + 1013904223
		toks[i] = uint16(x>>16) % 1024
	}
	path := filepath.Join(dir, "fineweb_train_000000.bin")
	if err := data.WriteShard(path, toks); err != nil {
		b.Fatal(err)
	}
	return path, data.ShardFileSize(benchShardTokens)
}

// readFileRef measures the reference, os.ReadFile of the same file,
// interleaved with the benchmarked operation (with the timer stopped), so
// that both see the same machine load.
type readFileRef struct {
	path  string
	bytes int64
	time  time.Duration
}

func (r *readFileRef) sample(b *testing.B) {
	b.StopTimer()
	start := time.Now()
	buf, err := os.ReadFile(r.path)
	r.time += time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	r.bytes += int64(len(buf))
	b.StartTimer()
}

// report gives the benchmark's rate (bytesPerOp per iteration) as a
// multiple of the reference's.
func (r *readFileRef) report(b *testing.B, bytesPerOp int64) {
	if s := b.Elapsed().Seconds(); s > 0 && r.time > 0 {
		ours := float64(bytesPerOp) * float64(b.N) / s
		b.ReportMetric(ours/(float64(r.bytes)/r.time.Seconds()), "x_readfile")
	}
}

// sumTokens touches every token.
func sumTokens(toks []uint16) uint64 {
	var sum uint64
	for _, t := range toks {
		sum += uint64(t)
	}
	return sum
}

func BenchmarkShardRead(b *testing.B) {
	path, size := writeBenchShard(b, b.TempDir())
	var sink uint64

	b.Run("os.ReadFile", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			buf, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			sink += uint64(buf[len(buf)-1])
		}
	})
	b.Run("ReadShard", func(b *testing.B) {
		ref := &readFileRef{path: path}
		b.SetBytes(size)
		for b.Loop() {
			ref.sample(b)
			toks, err := data.ReadShard(path)
			if err != nil {
				b.Fatal(err)
			}
			sink += uint64(toks[len(toks)-1])
		}
		ref.report(b, size)
	})
	// OpenShard alone costs a header read and a mapping; touching every
	// token makes the comparison fair (page faults on the page cache).
	b.Run("OpenShard+scan", func(b *testing.B) {
		ref := &readFileRef{path: path}
		b.SetBytes(size)
		for b.Loop() {
			ref.sample(b)
			s, err := data.OpenShard(path)
			if err != nil {
				b.Fatal(err)
			}
			sink += sumTokens(s.Tokens())
			s.Close()
		}
		ref.report(b, size)
	})
	b.Run("OpenShard", func(b *testing.B) {
		for b.Loop() {
			s, err := data.OpenShard(path)
			if err != nil {
				b.Fatal(err)
			}
			sink += uint64(s.Len())
			s.Close()
		}
	})
	// The loader as the trainer uses it on one GPU: the baseline's
	// 524,288-token step as 8 micro-batches of 64 × 1024, as int32 inputs
	// and targets. Bytes are the shard bytes consumed per call.
	b.Run("LoaderNext", func(b *testing.B) {
		const global, seq, accum = 524_288, 1024, 8
		l, err := data.NewLoader([]string{path}, 0, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		per := int64(2 * (global/accum + 1))
		ref := &readFileRef{path: path}
		b.SetBytes(per)
		for i := 0; b.Loop(); i++ {
			if i%256 == 0 { // a 100 MB read per 256 calls: about as long as the calls
				ref.sample(b)
			}
			in, _, err := l.Next(global, seq, accum)
			if err != nil {
				b.Fatal(err)
			}
			sink += uint64(in[0])
		}
		b.ReportMetric(float64(global/accum)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtok/s")
		ref.report(b, per)
	})
	// The same into reused buffers: no allocation, no garbage collection.
	b.Run("LoaderNextInto", func(b *testing.B) {
		const global, seq, accum = 524_288, 1024, 8
		l, err := data.NewLoader([]string{path}, 0, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		in, tg := make([]int32, global/accum), make([]int32, global/accum)
		per := int64(2 * (global/accum + 1))
		ref := &readFileRef{path: path}
		b.SetBytes(per)
		for i := 0; b.Loop(); i++ {
			if i%256 == 0 { // a 100 MB read per 256 calls: about as long as the calls
				ref.sample(b)
			}
			if err := l.NextInto(in, tg, global, seq, accum); err != nil {
				b.Fatal(err)
			}
			sink += uint64(in[0])
		}
		b.ReportMetric(float64(global/accum)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtok/s")
		ref.report(b, per)
	})
	b.Run("LoadValidation", func(b *testing.B) {
		ref := &readFileRef{path: path}
		b.SetBytes(size)
		for b.Loop() {
			ref.sample(b)
			val, err := data.LoadValidation([]string{path}, 1024)
			if err != nil {
				b.Fatal(err)
			}
			sink += uint64(val[0])
		}
		ref.report(b, size)
	})
	_ = sink
}

func BenchmarkDataBuild(b *testing.B) {
	raw, err := corpus.JSONL()
	if err != nil {
		b.Fatal(err)
	}
	texts, err := corpusTexts()
	if err != nil {
		b.Fatal(err)
	}
	var textBytes int64
	for _, t := range texts {
		textBytes += int64(len(t))
	}
	m := tokenizer.Default()
	dir := b.TempDir()
	var encodeTime time.Duration
	b.SetBytes(textBytes)
	for b.Loop() {
		b.StopTimer()
		start := time.Now()
		if _, err := m.EncodeAll(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
		encodeTime += time.Since(start)
		b.StartTimer()
		_, err := data.Build(context.Background(), data.BuildOptions{
			Dir: dir, Inputs: []data.Input{{Name: corpus.Name + ".jsonl", R: bytes.NewReader(raw)}},
			Encoder: m, ValDocs: corpus.ValDocs, Overwrite: true,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(encodeTime.Seconds()/b.Elapsed().Seconds(), "x_encode")
}
