package spmtrain

import (
	_ "embed"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// nmtNFKC097 is SentencePiece 0.1.97's built-in "nmt_nfkc" rule, compiled
// (the precompiled_charsmap that spm_train 0.1.97 writes into every model
// it trains with that rule), zstd-compressed. It differs from the charsmap
// in the challenge's sp1024, which a later SentencePiece wrote, in 157 code
// points that Unicode 14 added (e.g. U+A7F2, U+10781..U+107BA); training
// with the rule of a given model is PrecompiledCharsmap =
// model.NormalizerSpec().PrecompiledCharsmap. See charsmaps/SOURCE.md.
//
//go:embed charsmaps/nmt_nfkc-0.1.97.charsmap.zst
var nmtNFKC097Zst []byte

var nmtNFKC097 = sync.OnceValues(func() ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	b, err := dec.DecodeAll(nmtNFKC097Zst, nil)
	if err != nil {
		return nil, fmt.Errorf("embedded nmt_nfkc charsmap: %w", err)
	}
	return b, nil
})

// builtinCharsmap returns the compiled rule of a built-in normalization
// rule name.
func builtinCharsmap(name string) ([]byte, error) {
	switch name {
	case "nmt_nfkc":
		return nmtNFKC097()
	case "identity":
		return []byte{}, nil
	}
	return nil, fmt.Errorf("normalization rule %q is not built in (nmt_nfkc, identity): give its compiled charsmap (PrecompiledCharsmap, e.g. from a model trained with it)", name)
}
