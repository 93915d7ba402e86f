package quant

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/paramgolf/golf/model"
)

// Format is how a tensor's values are stored in an artifact.
type Format uint8

// Storage formats.
const (
	FormatInt  Format = iota + 1 // signed integer symbols times a scale
	FormatFP16                   // IEEE binary16
	FormatFP32                   // IEEE binary32
)

// String returns "int", "fp16" or "fp32".
func (f Format) String() string {
	switch f {
	case FormatInt:
		return "int"
	case FormatFP16:
		return "fp16"
	case FormatFP32:
		return "fp32"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// ClipMethod chooses the clip c of a row (or tensor); the quantization step
// is then scale = c / qmax with qmax = 2^(bits-1) - 1.
type ClipMethod uint8

// Clip methods.
const (
	// ClipMaxAbs: c = max |w|. No value is clipped.
	ClipMaxAbs ClipMethod = iota + 1
	// ClipPercentile: c = Quantile(|w|, Value), torch.quantile's linear
	// interpolation; the reference uses Value = 0.9999984.
	ClipPercentile
	// ClipStd: c = Value * std(w), std with Bessel's correction (n-1) as
	// torch.std; Value is k, e.g. 12.85 for int6 and 20 for int8 (PR #1394).
	// A large k widens the step: fewer distinct symbols, fewer bytes, more error.
	ClipStd
	// ClipMSE: c = a * max|w| with a chosen from the grid a = 1 - i*(1-MinFrac)/(Value-1),
	// i = 0..Value-1 (Value candidates, MinFrac = 0.2), minimising the
	// row's squared round-trip error sum (w - scale*q)^2 with the stored scale.
	// a = 1 is a candidate, so the result is never worse than ClipMaxAbs.
	ClipMSE
)

// String returns the method's short name.
func (m ClipMethod) String() string {
	switch m {
	case ClipMaxAbs:
		return "maxabs"
	case ClipPercentile:
		return "pct"
	case ClipStd:
		return "std"
	case ClipMSE:
		return "mse"
	}
	return fmt.Sprintf("clip(%d)", uint8(m))
}

// Clip is a clip method with its parameter.
type Clip struct {
	Method ClipMethod
	Value  float64
}

// String is the clip in short form, e.g. "std12.85", "mse64", "pct99.99984".
func (c Clip) String() string {
	switch c.Method {
	case ClipMaxAbs:
		return "maxabs"
	case ClipPercentile:
		return "pct" + strconv.FormatFloat(c.Value*100, 'g', 10, 64)
	}
	return fmt.Sprintf("%s%g", c.Method, c.Value)
}

// mseMinFrac is the smallest clip fraction of max|w| that ClipMSE tries.
const mseMinFrac = 0.2

// Rule says how to store one tensor.
type Rule struct {
	Format Format // FormatInt, FormatFP16 or FormatFP32
	Bits   int    // symbol width for FormatInt, 2..8
	Clip   Clip   // how each row's clip is chosen (FormatInt)
	// PerTensor uses one scale for the whole tensor instead of one per row
	// (row = index along the first dimension); tensors that are not 2-D are
	// always per tensor. A per-tensor scale is stored in fp32, per-row
	// scales in fp16.
	PerTensor bool
	// ScaleFloor is the smallest per-row scale (0 = none); the reference
	// clamps its scales to at least 1/127.
	ScaleFloor float32
	// RoundWithFP32Scale reproduces the reference exactly: symbols are
	// rounded with the float32 scale, but the stored fp16 scale dequantizes
	// them. By default the stored scale is used for both, which is never
	// worse.
	RoundWithFP32Scale bool
	// GPTQ quantizes the matrix column by column with error feedback through
	// its input Hessian (Options.Hessians must hold one); per-row scales come
	// from Clip on the original weights.
	GPTQ bool
}

// QMax is the largest symbol magnitude, 2^(Bits-1) - 1.
func (r Rule) QMax() int { return 1<<(r.Bits-1) - 1 }

// Validate checks the rule's fields.
func (r Rule) Validate() error {
	switch r.Format {
	case FormatFP16, FormatFP32:
		return nil
	case FormatInt:
	default:
		return fmt.Errorf("unknown format %d", r.Format)
	}
	if r.Bits < 2 || r.Bits > 8 {
		return fmt.Errorf("int format needs 2..8 bits, has %d", r.Bits)
	}
	switch r.Clip.Method {
	case ClipMaxAbs:
	case ClipPercentile:
		if !(r.Clip.Value > 0 && r.Clip.Value <= 1) {
			return fmt.Errorf("percentile clip needs a quantile in (0, 1], has %g", r.Clip.Value)
		}
	case ClipStd:
		if !(r.Clip.Value > 0) {
			return fmt.Errorf("std clip needs k > 0, has %g", r.Clip.Value)
		}
	case ClipMSE:
		if r.Clip.Value < 2 || r.Clip.Value > 4096 {
			return fmt.Errorf("mse clip needs 2..4096 grid points, has %g", r.Clip.Value)
		}
	default:
		return fmt.Errorf("unknown clip method %d", r.Clip.Method)
	}
	return nil
}

// String is the rule in short form, e.g. "int6/std12.85/gptq" or "fp16".
func (r Rule) String() string {
	switch r.Format {
	case FormatFP16, FormatFP32:
		return r.Format.String()
	}
	s := fmt.Sprintf("int%d/%s", r.Bits, r.Clip)
	if r.GPTQ {
		s += "/gptq"
	}
	if r.PerTensor {
		s += "/tensor"
	}
	return s
}

// Scheme is a complete quantization recipe: which rule applies to which
// tensor, chosen by the tensor's parameter class (model.Class, which the
// model's registry attaches to every weight) and size. Rules are looked up
// in this order: Control for the Control and Frozen classes, Small for
// tensors of at most KeepMaxElements values, Other for tensors that are not
// 2-D, the class's entry in ByClass, then Matrix (Attention, MLP, Head) or
// Embedding (Embedding, Table).
type Scheme struct {
	Name        string
	Description string
	// KeepMaxElements: tensors with at most this many values use Small
	// (the reference keeps tensors of <= 65,536 values as fp16).
	KeepMaxElements int
	Small           Rule
	Control         Rule
	Matrix          Rule
	Embedding       Rule
	Other           Rule
	// ByClass overrides the rule of a class (e.g. fewer bits for MLP).
	ByClass map[model.Class]Rule
	GPTQ    GPTQOptions
	// LQER, when set, adds low-rank corrections of the largest
	// quantization errors (see LQEROptions).
	LQER *LQEROptions
	// AWQ, when set, keeps the most salient input-column groups of the GPTQ
	// matrices on a finer grid (see AWQOptions).
	AWQ *AWQOptions
}

// RuleFor returns the rule for a tensor of the given shape and class.
// Control and Frozen tensors get the Control rule whatever their size: the
// baseline applies its control-name patterns only to tensors of at most
// KeepMaxElements values, and quantizes a larger one, but none of its
// control tensors has more than 1,024.
func (s *Scheme) RuleFor(shape []int, class model.Class) Rule {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if class == model.Control || class == model.Frozen {
		return s.Control
	}
	if n <= s.KeepMaxElements {
		return s.Small
	}
	if len(shape) != 2 {
		return s.Other // per-tensor, as the reference treats every tensor that is not 2-D
	}
	if r, ok := s.ByClass[class]; ok {
		return r
	}
	switch class {
	case model.Attention, model.MLP, model.Head:
		return s.Matrix
	case model.Embedding, model.Table:
		return s.Embedding
	}
	return s.Other
}

// Validate checks every rule of the scheme.
func (s *Scheme) Validate() error {
	check := func(what string, r Rule) error {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("scheme %q: %s rule: %w", s.Name, what, err)
		}
		return nil
	}
	for _, c := range []struct {
		what string
		r    Rule
	}{{"small", s.Small}, {"control", s.Control}, {"matrix", s.Matrix}, {"embedding", s.Embedding}, {"other", s.Other}} {
		if err := check(c.what, c.r); err != nil {
			return err
		}
	}
	for c, r := range s.ByClass {
		if err := check(c.String(), r); err != nil {
			return err
		}
	}
	if s.Small.Format == FormatInt || s.Control.Format == FormatInt {
		return fmt.Errorf("scheme %q: small and control tensors must be kept as floats", s.Name)
	}
	if s.LQER != nil {
		if err := s.LQER.Validate(); err != nil {
			return fmt.Errorf("scheme %q: %w", s.Name, err)
		}
	}
	if s.AWQ != nil {
		if err := s.AWQ.Validate(); err != nil {
			return fmt.Errorf("scheme %q: %w", s.Name, err)
		}
	}
	return nil
}

// UsesGPTQ reports whether any rule of the scheme asks for GPTQ.
func (s *Scheme) UsesGPTQ() bool {
	for _, r := range []Rule{s.Matrix, s.Embedding, s.Other} {
		if r.GPTQ {
			return true
		}
	}
	for _, r := range s.ByClass {
		if r.GPTQ {
			return true
		}
	}
	return false
}

// ReferenceClipQuantile is the reference script's INT8_CLIP_PERCENTILE / 100.
const ReferenceClipQuantile = 0.9999984

func fp16Rule() Rule { return Rule{Format: FormatFP16} }
func fp32Rule() Rule { return Rule{Format: FormatFP32} }
func intRule(bits int, clip Clip) Rule {
	return Rule{Format: FormatInt, Bits: bits, Clip: clip}
}

// mse is the default clip search grid (64 candidates from max|w| down to 0.2 max|w|).
var mse = Clip{Method: ClipMSE, Value: 64}

func std(k float64) Clip { return Clip{Method: ClipStd, Value: k} }

// Reference returns the challenge's int8 scheme (quantize_state_dict_int8 in
// the reference train_gpt.py): tensors of more than 65,536 values to int8
// in [-127, 127], 2-D ones per row with the clip at the 99.99984th percentile
// of |w| and scale = max(clip/127, 1/127) stored in fp16 (rounded with the
// fp32 scale), other large ones per tensor with an fp32 scale; smaller
// tensors in fp16, control parameters in fp32.
func Reference() Scheme {
	pct := Clip{Method: ClipPercentile, Value: ReferenceClipQuantile}
	row := Rule{Format: FormatInt, Bits: 8, Clip: pct, ScaleFloor: 1.0 / 127, RoundWithFP32Scale: true}
	tensor := Rule{Format: FormatInt, Bits: 8, Clip: pct, PerTensor: true, RoundWithFP32Scale: true}
	return Scheme{
		Name:            "int8-ref",
		Description:     "the challenge reference: int8 per row at the 99.99984th percentile, fp16 small tensors",
		KeepMaxElements: 65536,
		Small:           fp16Rule(),
		Control:         fp32Rule(),
		Matrix:          row,
		Embedding:       row,
		Other:           tensor,
	}
}

// ownKeepMax is the float threshold of the non-reference schemes: every
// tensor of 1,024 values or more is quantized (the reference's 65,536 would
// keep all of a small model's matrices in fp16).
const ownKeepMax = 1023

// base returns a scheme with the reference's float handling and the given
// matrix and embedding rules.
func base(name, desc string, matrix, emb Rule) Scheme {
	return Scheme{
		Name:            name,
		Description:     desc,
		KeepMaxElements: ownKeepMax,
		Small:           fp16Rule(),
		Control:         fp32Rule(),
		Matrix:          matrix,
		Embedding:       emb,
		Other:           Rule{Format: FormatInt, Bits: 8, Clip: mse, PerTensor: true},
		GPTQ:            DefaultGPTQ(),
	}
}

// Schemes returns the predefined schemes: the reference, then the recipes
// the challenge's records converged on.
func Schemes() []Scheme {
	gptq6 := intRule(6, std(12.85))
	gptq6.GPTQ = true
	gptq8e := intRule(8, std(20))
	gptq8e.GPTQ = true
	mixed := base("int5mlp-int6", "int5 MLP and int6 attention matrices (MSE clip), int8 embedding", intRule(6, mse), intRule(8, mse))
	mixed.ByClass = map[model.Class]Rule{model.MLP: intRule(5, mse)}
	// The record's rules on every matrix of 1,024 values or more: its
	// 65,536-value passthrough keeps a small model's matrices in fp16.
	recordAll := Record()
	recordAll.Name = "record-all"
	recordAll.Description = "the record's per-class GPTQ rules and LQER on every tensor of 1,024 values or more"
	recordAll.KeepMaxElements = ownKeepMax
	awq := DefaultAWQ()
	recordAWQ := Record()
	recordAWQ.Name = "record-awq"
	recordAWQ.Description = "the record plus AWQ-lite: the most salient group of 64 input columns at int8 (PR #1908)"
	recordAWQ.AWQ = &awq
	return []Scheme{
		Reference(),
		base("int8-mse", "int8 per row, MSE-optimal clip", intRule(8, mse), intRule(8, mse)),
		base("int6-sd", "int6 matrices at clip 12.85 std, int8 embedding at 20 std (SD-clip, PR #1394)", intRule(6, std(12.85)), intRule(8, std(20))),
		base("int6-mse", "int6 matrices, int8 embedding, MSE-optimal clips", intRule(6, mse), intRule(8, mse)),
		base("int6-fp16emb", "int6 matrices (MSE clip), fp16 embedding", intRule(6, mse), fp16Rule()),
		mixed,
		base("int5-mse", "int5 matrices, int8 embedding, MSE-optimal clips", intRule(5, mse), intRule(8, mse)),
		base("int4-mse", "int4 matrices, int8 embedding, MSE-optimal clips", intRule(4, mse), intRule(8, mse)),
		base("gptq-int6", "GPTQ int6 matrices at 12.85 std, GPTQ int8 embedding at 20 std", gptq6, gptq8e),
		Record(),
		recordAll,
		recordAWQ,
	}
}

// Record returns the final record's scheme (PR #2135, record-stack.md
// §4.2-4.3): GPTQ (dead columns, 1 % damping, act-order, blocks of 128) at
// per-row SD clips k·std/qmax in fp16 per class — attention int6 at
// k = 13.0, MLP int6 at 11.5, the tied embedding int7 at 14.0, other
// matrices (an untied head) int6 at 12.85 — every tensor of at most 65,536
// values (and every control parameter) passed through as fp16, and LQER on
// the 3 largest errors (rank 4, asymmetric int2/int4, groups of 32).
// Lookup tables (BigramHash, value embeddings) have no input Hessian: int7
// at 14 std by rounding.
func Record() Scheme {
	gptq := func(bits int, k float64) Rule {
		r := intRule(bits, std(k))
		r.GPTQ = true
		return r
	}
	lq := RecordLQER()
	return Scheme{
		Name:            "record",
		Description:     "the record (PR #2135): GPTQ int6 attention 13 std, MLP 11.5 std, int7 embedding 14 std, fp16 <= 65,536 values, LQER top 3",
		KeepMaxElements: 65536,
		Small:           fp16Rule(),
		Control:         fp16Rule(),
		Matrix:          gptq(6, 12.85),
		Embedding:       gptq(7, 14),
		Other:           fp16Rule(),
		ByClass: map[model.Class]Rule{
			model.Attention: gptq(6, 13),
			model.MLP:       gptq(6, 11.5),
			model.Table:     intRule(7, std(14)),
		},
		GPTQ: DefaultGPTQ(),
		LQER: &lq,
	}
}

// SchemeByName returns the predefined scheme with the given name.
func SchemeByName(name string) (Scheme, error) {
	var names []string
	for _, s := range Schemes() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scheme{}, fmt.Errorf("unknown scheme %q (known: %s)", name, strings.Join(names, ", "))
}
