package model

import (
	"errors"
	"fmt"
	"slices"
)

// Config describes a GPT of the challenge's family, from its first baseline
// to the final record (PR #2135). Every field is stored with checkpoints and
// artifacts (JSON), so a model file says what it is. The zero value of every
// technique's field turns it off, so a baseline config lists only the
// baseline's fields; the options' defaults are the record's (see Preset
// "record").
type Config struct {
	// Name of the preset this config came from ("baseline", "record"), or "".
	Name string `json:"name,omitempty"`
	// VocabSize is the number of token ids (the tokenizer's vocabulary).
	VocabSize int `json:"vocab_size"`
	// NumLayers is the number of physical transformer blocks. Without depth
	// recurrence the first NumLayers/2 are the U-Net's encoder half.
	NumLayers int `json:"num_layers"`
	// ModelDim is the width of the residual stream.
	ModelDim int `json:"model_dim"`
	// NumHeads is the number of query heads; head dim = ModelDim/NumHeads.
	NumHeads int `json:"num_heads"`
	// NumKVHeads is the number of key/value heads (grouped-query attention:
	// query head h reads KV head h / (NumHeads/NumKVHeads)).
	NumKVHeads int `json:"num_kv_heads"`
	// MLPHidden is the MLP's hidden width (MLP_MULT × ModelDim: 2× in the
	// baseline, 4× in the record).
	MLPHidden int `json:"mlp_hidden"`
	// SeqLen is the training context length, the default for loaders and
	// evaluation (RoPE itself works at any length).
	SeqLen int `json:"seq_len"`
	// RopeBase is the rotary embedding's base frequency.
	RopeBase float64 `json:"rope_base"`
	// LogitSoftcap bounds logits: z -> cap * tanh(z / cap).
	LogitSoftcap float64 `json:"logit_softcap"`
	// EmbedInitStd is the standard deviation of the tied embedding's
	// normal initialisation.
	EmbedInitStd float64 `json:"embed_init_std"`
	// QKGainInit is the initial value of the per-head query gain (baseline
	// 1.5, record 5.0).
	QKGainInit float64 `json:"qk_gain_init"`
	// ComputeDType is the matmul precision: "float32" (default, and the
	// right choice on the CPU) or "bfloat16" (GPUs; master weights,
	// normalisations, softmax and the loss stay float32).
	ComputeDType string `json:"compute_dtype,omitempty"`
	// AttentionImpl chooses how attention is computed, not what: "" or
	// "materialized" (the reference formulation, kept as the reference: the
	// whole score matrix [B*Hkv, G*T, T] in float32, which autodiff keeps for
	// the backward pass) or "chunked" (queries in blocks of AttentionChunk
	// rows, keys after a block's last query skipped, and a backward pass that
	// recomputes each block's scores instead of keeping them; see
	// attention_chunked.go). Both give the same values and gradients up to
	// float rounding.
	AttentionImpl string `json:"attention_impl,omitempty"`
	// AttentionChunk is the number of query positions per block of the
	// chunked attention; 0 means DefaultAttentionChunk.
	AttentionChunk int `json:"attention_chunk,omitempty"`
	// QAT, when set, passes every Attention and MLP weight through a
	// straight-through fake quantizer in the forward pass (see QATConfig).
	QAT *QATConfig `json:"qat,omitempty"`

	// Activation is the MLP's nonlinearity φ in proj(φ(fc(x))):
	// "relu2" (default, the baseline's relu(u)²) or "leaky_relu2"
	// ((max(u,0) + LeakySlope·min(u,0))², PR #549; record §2.3).
	Activation string `json:"activation,omitempty"`
	// LeakySlope is leaky_relu2's negative slope (record 0.5).
	LeakySlope float64 `json:"leaky_slope,omitempty"`
	// MatrixInit initialises the blocks' input matrices (c_q, c_k, c_v,
	// fc): "uniform" (default, PyTorch nn.Linear's U(±1/sqrt(in)), the
	// baseline) or "orthogonal" (the record, §2.10). Output projections
	// start at zero either way.
	MatrixInit string `json:"matrix_init,omitempty"`
	// RopeDims rotates only the first RopeDims of each head's dimensions
	// (partial RoPE, record 16 of 64, §2.2); 0 rotates all.
	RopeDims int `json:"rope_dims,omitempty"`
	// LNScale multiplies both normalised block inputs of physical layer i by
	// 1/sqrt(i+1) (record §2.1).
	LNScale bool `json:"ln_scale,omitempty"`
	// XSALastN applies exclusive self-attention to the last XSALastN
	// physical layers: each head's output loses its component along the
	// token's own (normalised) value vector (record: all 11, §2.2).
	XSALastN int `json:"xsa_last_n,omitempty"`
	// AttnGate is "" (none) or "sparse": each head's output is multiplied by
	// σ(AttnGateScale · W_g[h]·x[0:GateWindow]), W_g zero-initialised, x the
	// attention input (record §2.2).
	AttnGate string `json:"attn_gate,omitempty"`
	// AttnGateScale is the sparse gate's logit scale (record 0.5).
	AttnGateScale float64 `json:"attn_gate_scale,omitempty"`
	// GateWindow is the number of leading residual channels the sparse
	// attention gate and the SmearGate read (record 12).
	GateWindow int `json:"gate_window,omitempty"`
	// SmearGate adds λ·σ(w·e_t[0:GateWindow])·e_{t-1} to each raw token
	// embedding e_t (t ≥ 1 within a row), w and λ zero-initialised (record
	// §2.5).
	SmearGate bool `json:"smear_gate,omitempty"`
	// SmearBOSFix stops the SmearGate at document starts: a BOS token's
	// embedding is not smeared with the previous document's last token
	// (PR #1851; off in #2135's run).
	SmearBOSFix bool `json:"smear_bos_fix,omitempty"`
	// BOSID is the tokenizer's beginning-of-document id (SmearBOSFix; the
	// challenge's tokenizers use 1). 0 means 1.
	BOSID int `json:"bos_id,omitempty"`
	// SkipGates turns the U-Net's additive skips into sigmoid-gated lerps:
	// x = σ(g)⊙x + (1-σ(g))⊙(w⊙skip), g zero-initialised (record §2.6).
	SkipGates bool `json:"skip_gates,omitempty"`
	// NumLoops > 0 turns on depth recurrence: physical layers
	// LoopStart..LoopEnd (inclusive) run NumLoops+1 times in a row with
	// shared weights (record 2 loops of layers 3..5: 17 virtual layers,
	// §2.7). The virtual sequence is split in half into encoder and
	// decoder; see LayerOrder.
	NumLoops  int `json:"num_loops,omitempty"`
	LoopStart int `json:"loop_start,omitempty"`
	LoopEnd   int `json:"loop_end,omitempty"`
	// ParallelStartLayer > 0 makes every decoder block of physical index >=
	// it a two-lane parallel block (attention and MLP read separate lanes,
	// mixed by learned lambdas; record 8, §2.8).
	ParallelStartLayer int `json:"parallel_start_layer,omitempty"`
	// ParallelFinalLane is how the two lanes become the final hidden state:
	// "mean" (default), "attn" (lane 0) or "mlp" (lane 1).
	ParallelFinalLane string `json:"parallel_final_lane,omitempty"`
	// UntiedHead gives the model its own zero-initialised output head
	// lm_head instead of reusing the token embedding.
	UntiedHead bool `json:"untied_head,omitempty"`
	// AsymLogit declares the softcap's two halves as parameters
	// softcap_pos/softcap_neg (both LogitSoftcap, class Frozen): z ≥ 0 maps
	// to s₊tanh(z/s₊), z < 0 to s₋tanh(z/s₋). The record never trains them
	// (§2.9), so it is numerically the plain softcap.
	AsymLogit bool `json:"asym_logit,omitempty"`
	// BigramVocab > 0 adds a hashed-bigram embedding to the token embedding
	// (PR #162, removed by #1218; §2.11): a zero-initialised table
	// [BigramVocab, BigramDim], projected to ModelDim when BigramDim differs,
	// times a learned scale (init 0.05).
	BigramVocab int `json:"bigram_vocab,omitempty"`
	BigramDim   int `json:"bigram_dim,omitempty"`
	// VEDim > 0 adds value embeddings (PR #374, removed by #1394; §2.11): a
	// shared table [VocabSize, VEDim] ~ N(0, 0.01) projected to the KV width
	// (zero-initialised) times a shared scale (0.1) and a per-layer scale
	// (1), added to the value projection of each physical layer in VELayers.
	VEDim    int   `json:"ve_dim,omitempty"`
	VELayers []int `json:"ve_layers,omitempty"`
}

// QATConfig configures quantization-aware training: for each row w of a
// matrix weight (class Attention or MLP), forward uses
//
//	c = ClipStd * std(w) (n-1 denominator) if ClipStd > 0, else max|w|
//	s = c / qmax, qmax = 2^(Bits-1) - 1 (s = 1 where c = 0)
//	fq(w) = s * clamp(round(w / s), -qmax, qmax)
//	w_eff = w + enabled * stopgrad(fq(w) - w)
//
// so the gradient is the identity (straight-through) and `enabled`, a
// non-trainable scalar variable (QATEnabledVar), switches it on late in
// training without recompiling. This mirrors quant.FakeQuantSpec.
type QATConfig struct {
	Bits    int     `json:"bits"`
	ClipStd float64 `json:"clip_std,omitempty"`
	// ByClass gives a matrix class its own width and clip (a quantization
	// scheme's per-class rules, e.g. the record's attention at 13 std and
	// MLP at 11.5); classes not listed use Bits and ClipStd.
	ByClass map[Class]QATRule `json:"by_class,omitempty"`
}

// QATRule is one class's fake quantizer: Bits and ClipStd as in QATConfig.
type QATRule struct {
	Bits    int     `json:"bits"`
	ClipStd float64 `json:"clip_std,omitempty"`
}

// For returns the fake quantizer of class c: its ByClass rule, else Bits
// and ClipStd.
func (q *QATConfig) For(c Class) *QATConfig {
	if r, ok := q.ByClass[c]; ok {
		return &QATConfig{Bits: r.Bits, ClipStd: r.ClipStd}
	}
	return q
}

// Presets lists the names Preset accepts.
func Presets() []string { return []string{"baseline", "tiny", "record", "tiny-record"} }

// Preset returns a named configuration:
//
//   - "baseline": the challenge's train_gpt.py baseline, 9 blocks of width
//     512, 8 heads of 64 with 4 KV heads, MLP 1024, vocab 1024, seq 1024:
//     17,059,912 parameters.
//   - "tiny": the same graph at 4 blocks of width 128 (4 heads of 32, 2 KV
//     heads, MLP 256, seq 256): 592,144 parameters, which trains usefully in
//     minutes on two CPU cores with the pure-Go backend.
//   - "record": PR #2135's model (record-stack.md §2): 11 blocks of width
//     512, 8/4 heads, MLP 4× with LeakyReLU(0.5)², vocab 8192, seq 2048,
//     partial RoPE 16/64, LN scale, q_gain 5, XSA on all layers, the sparse
//     attention gate, SmearGate (BOS fix off, as the record ran), gated
//     skips, layers 3-5 looped twice, parallel lanes from layer 8, AsymLogit
//     softcaps, orthogonal init: 35,945,673 parameters.
//   - "tiny-record": the record's techniques at the tiny size for the CPU
//     (6 blocks of width 128, vocab 1024, seq 256, layers 2-3 looped once,
//     parallel lanes from layer 4, partial RoPE 16/32).
func Preset(name string) (Config, error) {
	c := Config{
		Name: name, VocabSize: 1024, RopeBase: 10000, LogitSoftcap: 30,
		EmbedInitStd: 0.005, QKGainInit: 1.5,
	}
	switch name {
	case "baseline":
		c.NumLayers, c.ModelDim, c.NumHeads, c.NumKVHeads, c.MLPHidden, c.SeqLen = 9, 512, 8, 4, 1024, 1024
	case "tiny":
		c.NumLayers, c.ModelDim, c.NumHeads, c.NumKVHeads, c.MLPHidden, c.SeqLen = 4, 128, 4, 2, 256, 256
	case "record":
		c.VocabSize = 8192
		c.NumLayers, c.ModelDim, c.NumHeads, c.NumKVHeads, c.MLPHidden, c.SeqLen = 11, 512, 8, 4, 2048, 2048
		c.recordTechniques()
		c.RopeDims = 16
		c.XSALastN = 11
		c.NumLoops, c.LoopStart, c.LoopEnd = 2, 3, 5
		c.ParallelStartLayer = 8
	case "tiny-record":
		c.NumLayers, c.ModelDim, c.NumHeads, c.NumKVHeads, c.MLPHidden, c.SeqLen = 6, 128, 4, 2, 512, 256
		c.recordTechniques()
		c.RopeDims = 16
		c.XSALastN = 6
		c.NumLoops, c.LoopStart, c.LoopEnd = 1, 2, 3
		c.ParallelStartLayer = 4
	default:
		return Config{}, fmt.Errorf("unknown model preset %q (have %v)", name, Presets())
	}
	return c, nil
}

// recordTechniques switches on the record's size-independent options with
// its settings.
func (c *Config) recordTechniques() {
	c.Activation, c.LeakySlope = "leaky_relu2", 0.5
	c.MatrixInit = "orthogonal"
	c.LNScale = true
	c.QKGainInit = 5.0
	c.AttnGate, c.AttnGateScale, c.GateWindow = "sparse", 0.5, 12
	c.SmearGate = true
	c.SkipGates = true
	c.AsymLogit = true
}

// HeadDim returns ModelDim / NumHeads.
func (c Config) HeadDim() int { return c.ModelDim / max(c.NumHeads, 1) }

// KVDim returns the width of the key and value projections.
func (c Config) KVDim() int { return c.NumKVHeads * c.HeadDim() }

// RotaryDims returns the number of rotated dimensions per head: RopeDims,
// or the whole head when it is 0.
func (c Config) RotaryDims() int {
	if c.RopeDims > 0 {
		return c.RopeDims
	}
	return c.HeadDim()
}

// bosID is the BOS token id the SmearGate's BOS fix looks for.
func (c Config) bosID() int {
	if c.BOSID > 0 {
		return c.BOSID
	}
	return 1
}

// LayerOrder returns the physical layer index of every virtual position of
// the encoder and the decoder. Without depth recurrence (or with looping
// false: the record trains the first 35 % of its run unlooped) the encoder
// is layers 0..L/2-1 and the decoder the rest. With it the virtual sequence
// is
//
//	0..LoopStart-1, then (LoopStart..LoopEnd) NumLoops+1 times, then LoopEnd+1..L-1
//
// split in half (the encoder gets the smaller half): the record's
// [0 1 2 3 4 5 3 4] and [5 3 4 5 6 7 8 9 10].
func (c Config) LayerOrder(looping bool) (encoder, decoder []int) {
	if c.NumLoops <= 0 || !looping {
		enc := c.NumLayers / 2
		for i := range c.NumLayers {
			if i < enc {
				encoder = append(encoder, i)
			} else {
				decoder = append(decoder, i)
			}
		}
		return encoder, decoder
	}
	var all []int
	for i := range c.LoopStart {
		all = append(all, i)
	}
	for range c.NumLoops + 1 {
		for i := c.LoopStart; i <= c.LoopEnd; i++ {
			all = append(all, i)
		}
	}
	for i := c.LoopEnd + 1; i < c.NumLayers; i++ {
		all = append(all, i)
	}
	n := len(all) / 2
	return all[:n], all[n:]
}

// NumVirtualLayers is the number of block applications of the full
// (looped) forward pass; LoRA adapters have one slot per virtual layer.
func (c Config) NumVirtualLayers() int {
	e, d := c.LayerOrder(true)
	return len(e) + len(d)
}

// NumSkips is the number of U-Net skip connections, min(encoder, decoder)
// of the looped order (the record sizes its skip weights for the looped
// graph; before looping only the first encoder-many are used).
func (c Config) NumSkips() int {
	e, d := c.LayerOrder(true)
	return min(len(e), len(d))
}

// IsParallel reports whether physical layer i runs as a two-lane parallel
// block when it appears in the decoder.
func (c Config) IsParallel(i int) bool {
	return c.ParallelStartLayer > 0 && i >= c.ParallelStartLayer
}

// IsXSA reports whether physical layer i uses exclusive self-attention.
func (c Config) IsXSA(i int) bool { return c.XSALastN > 0 && i >= c.NumLayers-c.XSALastN }

// LNScaleFactor is the factor applied to physical layer i's normalised
// inputs: 1/sqrt(i+1) with LNScale, else 1.
func (c Config) LNScaleFactor(i int) float64 {
	if !c.LNScale {
		return 1
	}
	return 1 / sqrtf(float64(i+1))
}

// Validate reports every inconsistency in the config.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.VocabSize > 1 && c.VocabSize <= 65536, "vocab_size %d must be in 2..65536 (shards store uint16 ids)", c.VocabSize)
	check(c.NumLayers > 0, "num_layers %d must be positive", c.NumLayers)
	check(c.ModelDim > 0, "model_dim %d must be positive", c.ModelDim)
	check(c.NumHeads > 0 && c.ModelDim%max(c.NumHeads, 1) == 0, "num_heads %d must divide model_dim %d", c.NumHeads, c.ModelDim)
	check(c.NumKVHeads > 0 && c.NumHeads%max(c.NumKVHeads, 1) == 0, "num_kv_heads %d must divide num_heads %d", c.NumKVHeads, c.NumHeads)
	check(c.HeadDim()%2 == 0, "head dim %d must be even for RoPE", c.HeadDim())
	check(c.MLPHidden > 0, "mlp_hidden %d must be positive", c.MLPHidden)
	check(c.SeqLen > 0, "seq_len %d must be positive", c.SeqLen)
	check(c.RopeBase > 0, "rope_base %g must be positive", c.RopeBase)
	check(c.LogitSoftcap > 0, "logit_softcap %g must be positive", c.LogitSoftcap)
	check(c.EmbedInitStd >= 0, "embed_init_std %g must not be negative", c.EmbedInitStd)
	check(slices.Contains([]string{"", "float32", "bfloat16"}, c.ComputeDType), "compute_dtype %q must be float32 or bfloat16", c.ComputeDType)
	if c.QAT != nil {
		check(c.QAT.Bits >= 2 && c.QAT.Bits <= 8, "qat bits %d must be in 2..8", c.QAT.Bits)
		check(c.QAT.ClipStd >= 0, "qat clip_std %g must not be negative", c.QAT.ClipStd)
		for cl, r := range c.QAT.ByClass {
			check(cl.IsMatrix() && r.Bits >= 2 && r.Bits <= 8 && r.ClipStd >= 0, "qat rule for class %v: %d bits, clip_std %g (want a matrix class, 2..8 bits, clip >= 0)", cl, r.Bits, r.ClipStd)
		}
	}
	check(slices.Contains([]string{"", "materialized", "chunked"}, c.AttentionImpl), "attention_impl %q must be materialized or chunked", c.AttentionImpl)
	check(c.AttentionChunk >= 0, "attention_chunk %d must not be negative", c.AttentionChunk)
	check(slices.Contains([]string{"", "relu2", "leaky_relu2"}, c.Activation), "activation %q must be relu2 or leaky_relu2", c.Activation)
	check(c.LeakySlope >= 0 && c.LeakySlope < 1, "leaky_slope %g must be in [0, 1)", c.LeakySlope)
	check(slices.Contains([]string{"", "uniform", "orthogonal"}, c.MatrixInit), "matrix_init %q must be uniform or orthogonal", c.MatrixInit)
	check(c.RopeDims >= 0 && c.RopeDims%2 == 0 && c.RopeDims <= c.HeadDim(), "rope_dims %d must be even and in 0..head dim %d", c.RopeDims, c.HeadDim())
	check(c.XSALastN >= 0 && c.XSALastN <= c.NumLayers, "xsa_last_n %d must be in 0..num_layers %d", c.XSALastN, c.NumLayers)
	check(slices.Contains([]string{"", "sparse"}, c.AttnGate), "attn_gate %q must be empty or sparse", c.AttnGate)
	if c.AttnGate != "" || c.SmearGate {
		check(c.GateWindow > 0 && c.GateWindow <= c.ModelDim, "gate_window %d must be in 1..model_dim %d (attn_gate/smear_gate read that many channels)", c.GateWindow, c.ModelDim)
	}
	check(!c.SmearBOSFix || c.SmearGate, "smear_bos_fix needs smear_gate")
	check(c.BOSID >= 0 && c.BOSID < max(c.VocabSize, 1), "bos_id %d must be a token id below vocab_size %d", c.BOSID, c.VocabSize)
	if c.NumLoops != 0 || c.LoopStart != 0 || c.LoopEnd != 0 {
		check(c.NumLoops > 0, "num_loops %d must be positive when loop_start/loop_end are set", c.NumLoops)
		check(c.LoopStart >= 0 && c.LoopStart <= c.LoopEnd && c.LoopEnd < c.NumLayers,
			"loop range %d..%d must satisfy 0 <= loop_start <= loop_end < num_layers %d", c.LoopStart, c.LoopEnd, c.NumLayers)
	}
	check(c.ParallelStartLayer == 0 || (c.ParallelStartLayer > 0 && c.ParallelStartLayer < c.NumLayers),
		"parallel_start_layer %d must be 0 (off) or in 1..num_layers-1 (%d)", c.ParallelStartLayer, c.NumLayers-1)
	check(slices.Contains([]string{"", "mean", "attn", "mlp"}, c.ParallelFinalLane), "parallel_final_lane %q must be mean, attn or mlp", c.ParallelFinalLane)
	if c.ParallelStartLayer > 0 && len(errs) == 0 {
		for _, looping := range []bool{false, true} {
			_, dec := c.LayerOrder(looping)
			first := slices.IndexFunc(dec, c.IsParallel)
			check(first < 0 || !slices.ContainsFunc(dec[first:], func(i int) bool { return !c.IsParallel(i) }),
				"parallel_start_layer %d: decoder order %v runs a sequential block after a parallel one (parallel layers must come last; loop_end must be below it)", c.ParallelStartLayer, dec)
		}
	}
	check((c.BigramVocab == 0) == (c.BigramDim == 0), "bigram_vocab %d and bigram_dim %d must both be set or both 0", c.BigramVocab, c.BigramDim)
	check(c.BigramVocab == 0 || c.BigramVocab >= 2, "bigram_vocab %d must be at least 2", c.BigramVocab)
	check(c.BigramDim >= 0 && c.VEDim >= 0, "bigram_dim and ve_dim must not be negative")
	check((c.VEDim == 0) == (len(c.VELayers) == 0), "ve_dim %d and ve_layers %v must both be set or both empty", c.VEDim, c.VELayers)
	for i, l := range c.VELayers {
		check(l >= 0 && l < c.NumLayers && !slices.Contains(c.VELayers[:i], l), "ve_layers %v: layer %d must be a distinct index below num_layers %d", c.VELayers, l, c.NumLayers)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	return nil
}
