package quant

import (
	"context"
	"fmt"
	"slices"

	"github.com/paramgolf/golf/model"
)

// Packed is a model quantized and packed into artifact bytes.
type Packed struct {
	Bytes     []byte      // the artifact file's contents
	Report    *PackReport // what each part weighs
	Quantized *Quantized  // the stored form (symbols, scales, corrections)
}

// WriteFile writes the artifact to path atomically.
func (p *Packed) WriteFile(path string) error { return WriteArtifact(path, p.Bytes) }

// PackModel quantizes a model's weights under scheme s (qopts: GPTQ's
// Hessians, workers) and packs them with meta into artifact bytes: the one
// call from trained weights (e.g. a checkpoint's, which the caller loads)
// to the artifact golf pack writes. When meta names a model, w must be its
// parameters in order; their classes and initialisers come from the
// model's registry. ReadArtifact and Artifact.Model read the result back.
func PackModel(ctx context.Context, meta Meta, w model.Weights, s Scheme, qopts Options, popts PackOptions) (*Packed, error) {
	if meta.HasModel() {
		if err := model.CheckOrderedWeights(meta.Model, w); err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		w = slices.Clone(w) // annotate a copy; the values are shared
		model.Annotate(meta.Model, w)
	}
	q, err := Quantize(ctx, w, s, qopts)
	if err != nil {
		return nil, err
	}
	data, rep, err := Pack(ctx, meta, q, popts)
	if err != nil {
		return nil, err
	}
	return &Packed{Bytes: data, Report: rep, Quantized: q}, nil
}
