package model

import "fmt"

// Tensor is one named parameter on the host: float32 values in row-major
// order. It is the currency between packages: checkpoints hold Tensors, the
// quant package quantizes them and the trainer loads them back into a graph.
// A model parameter carries its Class and Init from the config's module
// registry (Config.Params), so other packages never infer them from names;
// other tensors (optimizer state) leave them zero.
type Tensor struct {
	Name  string // scoped parameter name, e.g. "block_3/attn/c_q"
	Shape []int  // dimensions, outermost first; a 2-D matrix is [rows, cols]
	Class Class  // the parameter's role (0 for tensors that are not parameters)
	Init  Init   // how the parameter was initialised (zero Kind when unknown)
	Data  []float32
}

// NumElements returns the product of the shape.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Validate checks that the data length matches the shape.
func (t Tensor) Validate() error {
	if len(t.Data) != t.NumElements() {
		return fmt.Errorf("tensor %q: shape %v needs %d values, has %d", t.Name, t.Shape, t.NumElements(), len(t.Data))
	}
	return nil
}

// Weights is a model's parameters in a fixed order.
type Weights []Tensor

// NumParams returns the total number of values over all tensors.
func (w Weights) NumParams() int {
	n := 0
	for _, t := range w {
		n += t.NumElements()
	}
	return n
}

// Get returns the tensor with the given name.
func (w Weights) Get(name string) (Tensor, bool) {
	for _, t := range w {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}
