package model

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// BenchmarkAttentionImpl times one attention call forward and backward
// (gradients with respect to q, k and v) at a preset's shapes on the
// pure-Go backend, the materialised and the chunked implementation
// alternately in the same run, and reports each one's ms per call, the
// speed ratio (materialised time / chunked time, > 1: chunked faster), and
// the peak Go heap while one call runs (the pure-Go backend's buffers live
// there), sampled every millisecond in a separate call with the garbage
// collector at GOGC=5 so that the heap follows the live buffers closely,
// next to the analytic size of the materialised score matrix:
//
//	go test ./model -run XXX -bench AttentionImpl -benchtime 3x
func BenchmarkAttentionImpl(b *testing.B) {
	for _, c := range []struct {
		preset    string
		rows, seq int
	}{
		{"tiny", 4, 256},
		{"baseline", 1, 1024},
		{"record", 1, 2048},
	} {
		b.Run(fmt.Sprintf("%s/%dx%d", c.preset, c.rows, c.seq), func(b *testing.B) {
			cfg, err := Preset(c.preset)
			if err != nil {
				b.Fatal(err)
			}
			run := map[string]func(bool) (time.Duration, uint64){}
			for _, impl := range []string{"materialized", "chunked"} {
				cfg := cfg
				cfg.AttentionImpl = impl
				run[impl] = attentionStep(b, cfg, c.rows, c.seq)
			}
			elapsed := map[string]time.Duration{}
			peak := map[string]uint64{}
			for _, impl := range []string{"materialized", "chunked"} {
				_, peak[impl] = run[impl](true)
			}
			for range b.N {
				for _, impl := range []string{"materialized", "chunked"} {
					d, _ := run[impl](false)
					elapsed[impl] += d
				}
			}
			n := float64(b.N)
			m, ch := elapsed["materialized"].Seconds()/n, elapsed["chunked"].Seconds()/n
			b.ReportMetric(m*1000, "materialized_ms")
			b.ReportMetric(ch*1000, "chunked_ms")
			b.ReportMetric(m/ch, "speed_ratio")
			b.ReportMetric(float64(peak["materialized"])/1e6, "materialized_peak_MB")
			b.ReportMetric(float64(peak["chunked"])/1e6, "chunked_peak_MB")
			scores := 4 * float64(c.rows*cfg.NumHeads*c.seq*c.seq)
			b.ReportMetric(scores/1e6, "scores_f32_MB")
		})
	}
}

// attentionStep compiles attention forward and backward for cfg at
// [rows, seq] and returns a function running it once, which reports the
// wall time and, when asked, the peak heap above the level before the call.
func attentionStep(b *testing.B, cfg Config, rows, seq int) func(memory bool) (time.Duration, uint64) {
	b.Helper()
	hkv, grp, hd := cfg.NumKVHeads, cfg.NumHeads/cfg.NumKVHeads, cfg.HeadDim()
	exec, err := graph.NewExec(backend(b), func(q, k, v *graph.Node) []*graph.Node {
		f := &forward{cfg: cfg, g: q.Graph(), b: rows, t: seq, dtype: dtypes.Float32}
		y := f.attend(q, k, v)
		return graph.Gradient(graph.ReduceAllSum(graph.Mul(y, y)), q, k, v)
	})
	if err != nil {
		b.Fatal(err)
	}
	q := tensors.FromFlatDataAndDimensions(randomFloats(rows*hkv*grp*seq*hd, 1, 1), rows*hkv, grp*seq, hd)
	k := tensors.FromFlatDataAndDimensions(randomFloats(rows*hkv*seq*hd, 1, 2), rows*hkv, seq, hd)
	v := tensors.FromFlatDataAndDimensions(randomFloats(rows*hkv*seq*hd, 1, 3), rows*hkv, seq, hd)
	once := func(memory bool) (time.Duration, uint64) {
		stop := func() uint64 { return 0 }
		if memory {
			defer debug.SetGCPercent(debug.SetGCPercent(5))
			runtime.GC()
			runtime.GC() // twice: the second also empties the buffer pools' victim caches
			stop = sampleHeap()
		}
		start := time.Now()
		out, err := exec.Exec(q, k, v)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			o.FinalizeAll()
		}
		d := time.Since(start)
		return d, stop()
	}
	once(false) // compile
	return once
}

// sampleHeap samples the live heap every millisecond until the returned
// function is called, which returns the peak above the level at the start.
func sampleHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := read(); h > base {
				peak = max(peak, h-base)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}
