package model

import (
	"errors"
	"fmt"
	"slices"
)

// Config describes a GPT of the challenge's baseline family. Every field is
// stored with checkpoints and artifacts (JSON), so a model file says what it
// is.
type Config struct {
	// Name of the preset this config came from ("baseline", "tiny"), or "".
	Name string `json:"name,omitempty"`
	// VocabSize is the number of token ids (the tokenizer's vocabulary).
	VocabSize int `json:"vocab_size"`
	// NumLayers is the number of transformer blocks. The first NumLayers/2
	// are the U-Net's encoder half, whose outputs feed the decoder half.
	NumLayers int `json:"num_layers"`
	// ModelDim is the width of the residual stream.
	ModelDim int `json:"model_dim"`
	// NumHeads is the number of query heads; head dim = ModelDim/NumHeads.
	NumHeads int `json:"num_heads"`
	// NumKVHeads is the number of key/value heads (grouped-query attention:
	// query head h reads KV head h / (NumHeads/NumKVHeads)).
	NumKVHeads int `json:"num_kv_heads"`
	// MLPHidden is the MLP's hidden width (ReLU² activation).
	MLPHidden int `json:"mlp_hidden"`
	// SeqLen is the training context length (RoPE works at any length; this
	// is the default for loaders and evaluation).
	SeqLen int `json:"seq_len"`
	// RopeBase is the rotary embedding's base frequency.
	RopeBase float64 `json:"rope_base"`
	// LogitSoftcap bounds logits: z -> cap * tanh(z / cap).
	LogitSoftcap float64 `json:"logit_softcap"`
	// EmbedInitStd is the standard deviation of the tied embedding's
	// normal initialisation.
	EmbedInitStd float64 `json:"embed_init_std"`
	// QKGainInit is the initial value of the per-head query gain.
	QKGainInit float64 `json:"qk_gain_init"`
	// ComputeDType is the matmul precision: "float32" (default, and the
	// right choice on the CPU) or "bfloat16" (GPUs; master weights,
	// normalisations, softmax and the loss stay float32).
	ComputeDType string `json:"compute_dtype,omitempty"`
	// QAT, when set, passes every Matrix weight through a straight-through
	// fake quantizer in the forward pass (see QATConfig).
	QAT *QATConfig `json:"qat,omitempty"`
}

// QATConfig configures quantization-aware training: for each row w of a
// Matrix weight, forward uses
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
}

// Class says how a parameter is optimised and stored.
type Class int

const (
	// Matrix is a 2-D weight inside a block: Muon, quantized per row.
	Matrix Class = iota + 1
	// Embedding is the tied token embedding (also the output head): Adam.
	Embedding
	// Control is a small gain, scale, mix or skip weight: Adam, kept fp32.
	Control
)

// String returns the class name.
func (c Class) String() string {
	switch c {
	case Matrix:
		return "matrix"
	case Embedding:
		return "embedding"
	case Control:
		return "control"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ParamSpec names one parameter: its scoped name, shape and class.
type ParamSpec struct {
	Name  string
	Shape []int
	Class Class
}

// NumElements returns the product of the shape.
func (p ParamSpec) NumElements() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Presets lists the names Preset accepts.
func Presets() []string { return []string{"baseline", "tiny"} }

// Preset returns a named configuration:
//
//   - "baseline": the challenge's train_gpt.py baseline, 9 blocks of width
//     512, 8 heads of 64 with 4 KV heads, MLP 1024, vocab 1024, seq 1024:
//     17,059,912 parameters.
//   - "tiny": the same graph at 4 blocks of width 128 (4 heads of 32, 2 KV
//     heads, MLP 256, seq 256): 592,144 parameters, which trains usefully in
//     minutes on two CPU cores with the pure-Go backend.
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
	default:
		return Config{}, fmt.Errorf("unknown model preset %q (have %v)", name, Presets())
	}
	return c, nil
}

// HeadDim returns ModelDim / NumHeads.
func (c Config) HeadDim() int { return c.ModelDim / max(c.NumHeads, 1) }

// KVDim returns the width of the key and value projections.
func (c Config) KVDim() int { return c.NumKVHeads * c.HeadDim() }

// NumEncoderLayers is the U-Net's first half, NumLayers/2.
func (c Config) NumEncoderLayers() int { return c.NumLayers / 2 }

// NumSkips is the number of U-Net skip connections, min(encoder, decoder).
func (c Config) NumSkips() int { return min(c.NumEncoderLayers(), c.NumLayers-c.NumEncoderLayers()) }

// Validate reports the first inconsistency in the config.
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
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	return nil
}

// Params lists every parameter in a fixed order (the order of checkpoints
// and artifacts). Linear weights are [out, in] like PyTorch's, so rows are
// output channels.
func (c Config) Params() []ParamSpec {
	d, kv, h := c.ModelDim, c.KVDim(), c.MLPHidden
	ps := []ParamSpec{{"tok_emb", []int{c.VocabSize, d}, Embedding}}
	if n := c.NumSkips(); n > 0 {
		ps = append(ps, ParamSpec{"skip_weights", []int{n, d}, Control})
	}
	for i := range c.NumLayers {
		b := BlockScope(i)
		ps = append(ps,
			ParamSpec{b + "/attn/c_q", []int{d, d}, Matrix},
			ParamSpec{b + "/attn/c_k", []int{kv, d}, Matrix},
			ParamSpec{b + "/attn/c_v", []int{kv, d}, Matrix},
			ParamSpec{b + "/attn/proj", []int{d, d}, Matrix},
			ParamSpec{b + "/attn/q_gain", []int{c.NumHeads}, Control},
			ParamSpec{b + "/mlp/fc", []int{h, d}, Matrix},
			ParamSpec{b + "/mlp/proj", []int{d, h}, Matrix},
			ParamSpec{b + "/attn_scale", []int{d}, Control},
			ParamSpec{b + "/mlp_scale", []int{d}, Control},
			ParamSpec{b + "/resid_mix", []int{2, d}, Control},
		)
	}
	return ps
}

// BlockScope is the name prefix of block i's parameters: "block_<i>".
func BlockScope(i int) string { return fmt.Sprintf("block_%d", i) }

// NumParams returns the total number of parameters.
func (c Config) NumParams() int {
	n := 0
	for _, p := range c.Params() {
		n += p.NumElements()
	}
	return n
}

// ClassOf returns the class of a parameter name of this config, or false.
func (c Config) ClassOf(name string) (Class, bool) {
	for _, p := range c.Params() {
		if p.Name == name {
			return p.Class, true
		}
	}
	return 0, false
}
