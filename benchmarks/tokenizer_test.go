package benchmarks

// Tokenizer benchmarks. Throughput is in MB/s of input text (the embedded
// corpus, 10.8 MB); BenchmarkTokenizerVsSPM also runs the reference C++
// encoder on the same file and reports our speed as a multiple of its own
// (x_spm), failing if the outputs differ:
//
//	go test ./benchmarks -run XXX -bench Tokenizer -benchtime 3x

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
)

// tokenizerModels are the challenge's sp1024 (embedded) and the community
// sp8192 kept in the tokenizer's testdata.
var tokenizerModels = []struct{ name, file string }{
	{"sp1024", "../tokenizer/models/fineweb_1024_bpe.model"},
	{"sp8192", "../tokenizer/testdata/fineweb_8192_bpe.model"},
}

var corpusTexts = sync.OnceValues(func() ([]string, error) {
	docs, err := corpus.Documents()
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.Text
	}
	return texts, nil
})

func loadTokenizerCorpus(b *testing.B, file string) (*tokenizer.Model, []string, int64) {
	b.Helper()
	m, err := tokenizer.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	texts, err := corpusTexts()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, t := range texts {
		n += int64(len(t))
	}
	return m, texts, n
}

// BenchmarkTokenizerEncode encodes the corpus one document after another on
// one goroutine (word cache warm after the first iteration).
func BenchmarkTokenizerEncode(b *testing.B) {
	for _, tm := range tokenizerModels {
		b.Run(tm.name, func(b *testing.B) {
			m, texts, n := loadTokenizerCorpus(b, tm.file)
			b.SetBytes(n)
			for b.Loop() {
				for _, t := range texts {
					m.Encode(t)
				}
			}
		})
	}
}

// BenchmarkTokenizerEncodeAll encodes the corpus with EncodeAll (GOMAXPROCS
// workers).
func BenchmarkTokenizerEncodeAll(b *testing.B) {
	for _, tm := range tokenizerModels {
		b.Run(tm.name, func(b *testing.B) {
			m, texts, n := loadTokenizerCorpus(b, tm.file)
			b.SetBytes(n)
			for b.Loop() {
				if _, err := m.EncodeAll(context.Background(), texts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenizerVsSPM runs tokenizer.Bench (what `golf bench tokenize`
// prints): our line encoder from a cold word cache and spm_encode on the
// same file of one document per line. Skipped without spm_encode.
func BenchmarkTokenizerVsSPM(b *testing.B) {
	if _, err := exec.LookPath("spm_encode"); err != nil {
		b.Skip("spm_encode is not installed")
	}
	texts, err := corpusTexts()
	if err != nil {
		b.Fatal(err)
	}
	input := filepath.Join(b.TempDir(), "corpus.txt")
	if err := os.WriteFile(input, []byte(strings.Join(texts, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, tm := range tokenizerModels {
		b.Run(tm.name, func(b *testing.B) {
			m, _, _ := loadTokenizerCorpus(b, tm.file)
			var ratio, ours, ref float64
			for b.Loop() {
				res, err := m.Bench(context.Background(), tokenizer.BenchOptions{Input: input, ModelFile: tm.file})
				if err != nil {
					b.Fatal(err)
				}
				if !res.Identical {
					b.Fatalf("%s: our ids differ from spm_encode's", tm.name)
				}
				ratio += res.Ratio
				ours += res.Runs[0].MBps
				ref += res.Reference.MBps
			}
			k := float64(b.N)
			b.ReportMetric(ratio/k, "x_spm")
			b.ReportMetric(ours/k, "MB/s")
			b.ReportMetric(ref/k, "spm_MB/s")
		})
	}
}
