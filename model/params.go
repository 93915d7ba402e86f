package model

import (
	"fmt"
	"slices"
)

// Class is a parameter's role in the network. It travels with the tensor
// (Tensor.Class, checkpoints, artifacts) and is all the other packages need:
// train picks a parameter's optimizer group from it and quant its storage
// rule, so neither ever guesses from a name.
type Class uint8

// Parameter classes. The numbers are stored in files: never renumber.
const (
	// Attention is a matrix of an attention layer (c_q, c_k, c_v, proj):
	// Muon; the record stores it GPTQ int6 at 13 std.
	Attention Class = iota + 1
	// MLP is a matrix of an MLP (fc, proj): Muon; GPTQ int6 at 11.5 std.
	MLP
	// Embedding is the tied token embedding, also the output head: Adam at
	// the embedding learning rate; GPTQ int7 at 14 std.
	Embedding
	// Head is an untied output head: Adam at the head learning rate.
	Head
	// Table is an auxiliary lookup table (BigramHash, value embeddings):
	// Adam at the embedding learning rate.
	Table
	// Control is a gain, scale, mix, gate or small projection: Adam at the
	// scalar learning rate, stored as floats.
	Control
	// Frozen is a parameter no optimizer updates (AsymLogit's softcaps,
	// which the record declares but never trains).
	Frozen
)

var classNames = map[Class]string{
	Attention: "attention", MLP: "mlp", Embedding: "embedding", Head: "head",
	Table: "table", Control: "control", Frozen: "frozen",
}

// Classes lists every class in order.
func Classes() []Class { return []Class{Attention, MLP, Embedding, Head, Table, Control, Frozen} }

// String returns the class name ("attention", "mlp", ...).
func (c Class) String() string {
	if n, ok := classNames[c]; ok {
		return n
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Valid reports whether c is one of the defined classes.
func (c Class) Valid() bool { _, ok := classNames[c]; return ok }

// IsMatrix reports whether the class holds the blocks' 2-D weights that
// Muon trains and GPTQ quantizes (Attention and MLP).
func (c Class) IsMatrix() bool { return c == Attention || c == MLP }

// ParseClass returns the class with the given name.
func ParseClass(name string) (Class, error) {
	for c, n := range classNames {
		if n == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown parameter class %q", name)
}

// MarshalText writes the class name (JSON, configs).
func (c Class) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("invalid parameter class %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText reads a class name.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParamSpec is one parameter as a module declares it: its scoped name,
// shape, class and initialiser.
type ParamSpec struct {
	Name  string
	Shape []int
	Class Class
	Init  Init
}

// NumElements returns the product of the shape.
func (p ParamSpec) NumElements() int { return numElements(p.Shape) }

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Params lists every parameter in a fixed order (the order of checkpoints
// and artifacts), as the config's modules declare them (see modules).
// Linear weights are [out, in] like PyTorch's, so rows are output channels.
func (c Config) Params() []ParamSpec {
	var ps []ParamSpec
	for _, m := range c.modules() {
		ps = append(ps, m.params()...)
	}
	return ps
}

// NumParams returns the total number of parameters.
func (c Config) NumParams() int {
	n := 0
	for _, p := range c.Params() {
		n += p.NumElements()
	}
	return n
}

// Param returns the spec of the named parameter, or false.
func (c Config) Param(name string) (ParamSpec, bool) {
	ps := c.Params()
	i := slices.IndexFunc(ps, func(p ParamSpec) bool { return p.Name == name })
	if i < 0 {
		return ParamSpec{}, false
	}
	return ps[i], true
}

// BlockScope is the name prefix of physical block i's parameters:
// "block_<i>".
func BlockScope(i int) string { return fmt.Sprintf("block_%d", i) }
