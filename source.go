// Package golf holds the module's own source code, embedded, so that the
// golf command can count its code bytes the way the challenge counts
// train_gpt.py: the artifact limit of 16,000,000 bytes covers the model
// bytes plus the code needed to train and evaluate it.
//
// What counts as code: the non-test .go files of every package of this
// module that cmd/golf depends on (including cmd/golf itself and this
// package), plus go.mod and go.sum. Third-party modules are not counted, as
// the challenge does not count PyTorch; data files the packages embed (the
// default tokenizer model and corpus) are data, not code. A test checks that
// the embedded set equals `go list -deps ./cmd/golf` restricted to this
// module, so the count cannot drift from the build. quant.MeasureCode turns
// the files into a byte count.
package golf

import (
	"embed"
	"io/fs"
)

// The package list below must match `go list -deps ./cmd/golf` (see
// TestSourceMatchesDependencies, which prints the line to use).
//
//go:embed go.mod go.sum *.go
//go:embed cmd/golf/*.go data/*.go data/corpus/*.go eval/*.go eval/audit/*.go internal/atomicfile/*.go internal/compute/*.go internal/jsonltext/*.go internal/outlock/*.go internal/progress/*.go internal/report/*.go internal/strictjson/*.go model/*.go quant/*.go quant/codec/*.go tokenizer/*.go train/*.go
var source embed.FS

// Source returns the embedded source tree: go.mod, go.sum and the .go files
// (tests included; quant.MeasureCode leaves them out) of the packages the
// golf command is built from, under their module-relative paths.
func Source() fs.FS { return source }
