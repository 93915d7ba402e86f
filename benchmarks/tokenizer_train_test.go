package benchmarks

// Tokenizer training against spm_train. Each iteration trains on the
// embedded corpus's training documents (one per line, as spm_train reads a
// file) with the challenge's settings, with spmtrain.Train and then with
// spm_train on the same file, checks that the two .model files are the same
// bytes, and reports our speed as a multiple of spm_train's (x_spm, above 1
// is faster), both wall-clock times, and peak memory: spm_train's maximum
// resident set and our peak Go heap (sampled every 5 ms while training).
// Skipped without spm_train. On the project's 2-core machines:
//
//	go test ./benchmarks -run XXX -bench TokenizerTrainVsSPM -benchtime 2x

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

// peakHeap runs fn while sampling the Go heap and returns the largest
// in-use heap seen, in bytes.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if v := ms.HeapInuse + ms.StackInuse; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak.Load()
}

func BenchmarkTokenizerTrainVsSPM(b *testing.B) {
	spmTrain, err := exec.LookPath("spm_train")
	if err != nil {
		b.Skip("spm_train is not installed")
	}
	_, train, err := corpus.Split()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var sb strings.Builder
	lines := make([]string, len(train))
	for i, d := range train {
		lines[i] = d.Text
		sb.WriteString(d.Text + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "corpus.txt"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, vocab := range []int{1024, 8192} {
		b.Run("sp"+strconv.Itoa(vocab), func(b *testing.B) {
			prefix := "sp" + strconv.Itoa(vocab)
			opts := spmtrain.DefaultOptions(vocab)
			opts.MaxSentenceLength = 300000
			opts.Input, opts.ModelPrefix = []string{"corpus.txt"}, prefix
			var ours, ref time.Duration
			var ourPeak, refPeak uint64
			for b.Loop() {
				var m *tokenizer.Model
				start := time.Now()
				peak := peakHeap(func() {
					if m, err = spmtrain.Train(context.Background(), lines, opts); err != nil {
						b.Fatal(err)
					}
				})
				ours += time.Since(start)
				ourPeak = max(ourPeak, peak)

				cmd := exec.Command(spmTrain, "--input=corpus.txt", "--model_prefix="+prefix, "--model_type=bpe",
					"--vocab_size="+strconv.Itoa(vocab), "--character_coverage=0.999", "--byte_fallback=true",
					"--split_digits=true", "--normalization_rule_name=nmt_nfkc", "--add_dummy_prefix=false",
					"--pad_id=0", "--bos_id=1", "--eos_id=2", "--unk_id=3", "--hard_vocab_limit=false",
					"--max_sentence_length=300000")
				cmd.Dir = dir
				start = time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("spm_train: %v\n%s", err, out)
				}
				ref += time.Since(start)
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					refPeak = max(refPeak, uint64(ru.Maxrss)*1024)
				}
				want, err := os.ReadFile(filepath.Join(dir, prefix+".model"))
				if err != nil {
					b.Fatal(err)
				}
				if got, _ := m.MarshalBinary(); !bytes.Equal(got, want) {
					b.Fatal("the trained model differs from spm_train's")
				}
			}
			k := float64(b.N)
			b.ReportMetric(ref.Seconds()/ours.Seconds(), "x_spm")
			b.ReportMetric(ours.Seconds()/k, "s/train")
			b.ReportMetric(ref.Seconds()/k, "spm_s/train")
			b.ReportMetric(float64(ourPeak)/(1<<20), "peak_heap_MB")
			b.ReportMetric(float64(refPeak)/(1<<20), "spm_maxrss_MB")
		})
	}
}
