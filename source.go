// Package golf holds the module's counted source code, embedded, so that
// golf pack can count its code bytes the way the challenge counts
// train_gpt.py: the 16,000,000-byte limit covers the model bytes plus the
// code needed to train and evaluate it.
//
// The counting rule is Counted: go.mod, go.sum and the non-test .go files
// of the packages the golf command is built from, except tooling — the
// packages and command files that benchmark, ablate, plot, synthesize
// weights, tokenize text, train tokenizers, download, build and inspect
// datasets or list a model's parameters (Tooling lists them), which a
// submission does not need to train, pack and evaluate. Third-party
// modules are not counted, as the challenge does not count PyTorch; data
// files the packages embed (the tokenizer models, the default corpus) are
// data, not code. Tests check that the embedded files are exactly the
// build's files that Counted accepts, and that those files alone build the
// golf command (train, pack and eval), so the count cannot drift from the
// build or lean on uncounted code. quant.MeasureCode turns the files into
// a byte count (stripped of comments, as the records count train_gpt.py
// after pyminify, then compressed); `golf pack -v` lists it per package.
package golf

import (
	"embed"
	"io/fs"
	"path"
	"strings"
)

// The files below must be Counted's selection of `go list -deps ./cmd/golf`
// (see TestSourceIsTheCountedBuild, which prints the directive to use).
//
//go:embed go.mod go.sum *.go
//go:embed cmd/golf/eval.go cmd/golf/hessians.go cmd/golf/main.go cmd/golf/pack.go cmd/golf/train.go
//go:embed data/build.go data/check.go data/default.go data/doc.go data/docs.go data/documents.go data/files.go data/loader.go
//go:embed data/mmap_linux.go data/mmap_nolinux.go data/mmap_other.go data/mmap_unix.go data/open.go data/packing.go
//go:embed data/shard.go data/shardring.go data/sidecar.go data/validation.go
//go:embed tokenizer/bytetable.go tokenizer/caseops.go tokenizer/decode.go tokenizer/doc.go tokenizer/encode.go
//go:embed tokenizer/lines.go tokenizer/model.go tokenizer/normalize.go tokenizer/proto.go tokenizer/save.go tokenizer/spans.go
//go:embed train/backend.go train/checkpoint.go train/config.go train/distributed.go train/doc.go train/eval.go
//go:embed train/history.go train/modelnet.go train/optim.go train/run.go train/run_distributed.go train/schedule.go
//go:embed train/settings.go train/stepdata.go train/tensorfile.go train/trainer.go
//go:embed data/corpus/*.go eval/*.go internal/atomicfile/*.go internal/compute/*.go internal/gosrc/*.go
//go:embed internal/jsonltext/*.go internal/outlock/*.go internal/progress/*.go internal/report/*.go
//go:embed internal/strictjson/*.go model/*.go quant/*.go quant/codec/*.go tokenizer/internal/spm/*.go
var source embed.FS

// Source returns the counted source tree: go.mod, go.sum and the counted
// .go files (tests included; quant.MeasureCode leaves them out), under their
// module-relative paths.
func Source() fs.FS { return source }

// Tooling lists what the counting rule leaves out, as module-relative
// directories (every file below them) and file patterns (path.Match
// syntax): whole tooling packages, and the files of a counted package that
// only tooling calls (the test that builds the counted files alone keeps
// them so).
var Tooling = []string{
	"benchmarks/",                 // Go benchmarks
	"examples/",                   // example programs
	"scripts/",                    // shell tooling
	"quant/bench/",                // golf bench compress: codec and scheme comparison, plots
	"quant/synthetic/",            // synthetic weights and Hessians
	"tokenizer/spmtrain/",         // SentencePiece BPE training (golf tokenizer train)
	"data/download/",              // the challenge's data from Hugging Face (golf data download)
	"cmd/golf/bench_*.go",         // golf bench tokenize|train|compress|ablate
	"cmd/golf/data.go",            // golf data build|inspect
	"cmd/golf/download.go",        // golf data download
	"cmd/golf/model.go",           // golf model (lists a config's parameters)
	"cmd/golf/tokenize.go",        // golf tokenize
	"cmd/golf/tokenizer_train.go", // golf tokenizer train
	"cmd/golf/pack_synthetic.go",  // golf pack --synthetic
	"cmd/golf/sample.go",          // golf sample (text from a model)
	"cmd/golf/audit*.go",          // golf audit (legality checks of a result)
	"eval/audit/",                 // the audit's checks
	"train/bench.go",              // golf bench train: step timing and the matmul peak
	"train/sample.go",             // golf sample: text from a model
	"tokenizer/bench.go",          // golf bench tokenize: the encoder against spm_encode
	"data/inspect.go",             // golf data inspect: per-shard statistics
	"train/ablate/",               // golf bench ablate: the record stack's techniques one at a time
	"train/lossplot/",             // golf train's loss.png
	"internal/plotfile/",          // PNG files of the plots above
	"cmd/golf/train_plot.go",      // hands golf train the loss plot
}

// Counted reports whether the module file at the slash-separated,
// module-relative path p counts as code: go.mod and go.sum do, and so does
// every .go file that is not a test and not under Tooling. (Which packages
// are in the build at all is decided by the golf command's imports.)
func Counted(p string) bool {
	if p == "go.mod" || p == "go.sum" {
		return true
	}
	if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
		return false
	}
	for _, t := range Tooling {
		if strings.HasSuffix(t, "/") {
			if strings.HasPrefix(p, t) {
				return false
			}
		} else if ok, _ := path.Match(t, p); ok {
			return false
		}
	}
	return true
}
