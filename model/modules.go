package model

// module is one part of the network. Each module's file holds its
// parameters (params: name, shape, class, initialiser) and its forward pass
// (methods of forward).
type module interface {
	params() []ParamSpec
}

// modules lists the modules cfg builds, in parameter order. This is the one
// place where the config's options decide which modules exist; Params,
// InitWeights, checkpoints, artifacts, the trainer's optimizer groups and
// quant's storage rules all follow from it.
//
// The baseline's modules come first, in the order its checkpoints have
// always listed them (tok_emb, skip_weights, then the blocks); the record's
// additions follow.
func (c Config) modules() []module {
	ms := []module{embedding{c}, skips{c}}
	for i := range c.NumLayers {
		ms = append(ms, block{c, i})
	}
	if c.BigramVocab > 0 {
		ms = append(ms, bigramHash{c})
	}
	if c.VEDim > 0 {
		ms = append(ms, valueEmbedding{c})
	}
	if c.SmearGate {
		ms = append(ms, smearGate{c})
	}
	if c.ParallelStartLayer > 0 {
		ms = append(ms, lanes{c})
	}
	ms = append(ms, head{c})
	return ms
}
