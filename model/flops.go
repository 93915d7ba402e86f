package model

// FLOPs is a model's forward arithmetic per token, counted as PaLM's
// appendix B counts it: 2 flops per multiply-accumulate of every matmul,
// elementwise work (norms, softmax, activations, RoPE, gates' sigmoids)
// left out. Training costs three forward passes (the backward pass is two).
type FLOPs struct {
	// Matmul is the weight matmuls: every block matrix once per virtual
	// layer that runs it (depth recurrence reruns shared weights), the
	// sparse attention gate, the output head (the tied embedding's use as a
	// head; its lookup costs none), and the SmearGate, bigram and
	// value-embedding projections once per token.
	Matmul float64 `json:"matmul"`
	// Attention is q·kᵀ and p·v at the sequence length: 4·T·ModelDim per
	// token and virtual layer, every key of the row counted (PaLM's 12·L·d·T
	// for training). A causal kernel computes about half of it; document
	// masks, as the record's varlen kernel uses them, less still.
	Attention float64 `json:"attention"`
	// VirtualLayers is the number of block applications counted.
	VirtualLayers int `json:"virtual_layers"`
}

// Forward returns the forward flops per token, Matmul + Attention.
func (f FLOPs) Forward() float64 { return f.Matmul + f.Attention }

// Train returns the training flops per token, 3 · Forward (forward,
// activation gradients, weight gradients).
func (f FLOPs) Train() float64 { return 3 * f.Forward() }

// FLOPsPerToken counts cfg's forward arithmetic per token at sequence
// length seqLen, looped (the full graph) or unlooped (Options.Unlooped, as
// the record trains before its loops switch on). Per virtual layer, with D
// the width, KV the key/value width and F the MLP width:
//
//	matmul    2·(D·D + 2·KV·D + D·D + 2·F·D)  (+ 2·H·GateWindow with the sparse gate)
//	attention 4·T·D
//
// plus 2·V·D for the head and the small projections once per token. The
// parallel lanes change which residual each block reads, not its
// arithmetic, so a two-lane block counts as a sequential one.
func (c Config) FLOPsPerToken(seqLen int, looped bool) FLOPs {
	d, kv, h := c.ModelDim, c.KVDim(), c.MLPHidden
	layer := 2 * (d*d + 2*kv*d + d*d + 2*h*d)
	if c.AttnGate == "sparse" {
		layer += 2 * c.NumHeads * c.GateWindow
	}
	enc, dec := c.LayerOrder(looped)
	n := len(enc) + len(dec)
	mm := n*layer + 2*c.VocabSize*d
	if c.SmearGate {
		mm += 2 * c.GateWindow
	}
	if c.BigramVocab > 0 && c.BigramDim != d {
		mm += 2 * c.BigramDim * d
	}
	if c.VEDim > 0 && c.VEDim != kv {
		mm += 2 * c.VEDim * kv
	}
	return FLOPs{Matmul: float64(mm), Attention: float64(n) * 4 * float64(seqLen) * float64(d), VirtualLayers: n}
}
