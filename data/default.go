package data

import (
	"bytes"
	"context"

	"github.com/paramgolf/golf/data/corpus"
)

// BuildDefault builds the embedded corpus (package corpus: 233 State of the
// Union addresses, 10.8 MB of text) into dir with enc (usually
// tokenizer.Default()): its first corpus.ValDocs documents as the
// validation split, the rest as training, in one shard each. It replaces
// an earlier build in dir. With sp1024 it takes a few seconds on two cores.
func BuildDefault(ctx context.Context, dir string, enc Encoder) (*Manifest, error) {
	raw, err := corpus.JSONL()
	if err != nil {
		return nil, err
	}
	return Build(ctx, BuildOptions{
		Dir:       dir,
		Inputs:    []Input{{Name: corpus.Name + ".jsonl", R: bytes.NewReader(raw)}},
		Format:    FormatJSONL,
		Encoder:   enc,
		ValDocs:   corpus.ValDocs,
		Overwrite: true,
	})
}
