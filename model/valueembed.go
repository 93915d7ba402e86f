package model

import (
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// valueEmbedding is the shared value embedding (PR #374, removed by #1394;
// §2.11): ve/table [V, VEDim] ~ N(0, 0.01) (class Table), ve/proj [KV,
// VEDim] (when VEDim != KV; see auxProjInit) and ve/scale [1] = 0.1, plus
// block_<i>/ve_scale [1] = 1 for each layer in VELayers (class Control).
type valueEmbedding struct{ c Config }

func (m valueEmbedding) params() []ParamSpec {
	c := m.c
	ps := []ParamSpec{{"ve/table", []int{c.VocabSize, c.VEDim}, Table, Normal(0.01)}}
	if c.VEDim != c.KVDim() {
		ps = append(ps, ParamSpec{"ve/proj", []int{c.KVDim(), c.VEDim}, Control, auxProjInit(c.KVDim(), c.VEDim)})
	}
	ps = append(ps, ParamSpec{"ve/scale", []int{1}, Control, Const(0.1)})
	for _, i := range c.VELayers {
		ps = append(ps, ParamSpec{BlockScope(i) + "/ve_scale", []int{1}, Control, Const(1)})
	}
	return ps
}

// valueEmbedding returns the term added to physical layer i's value
// projection [B*T, KV], or nil when i is not in VELayers:
//
//	ve_i = layer_scale_i · scale · proj(table[tokens])
func (f *forward) valueEmbedding(i int) *Node {
	c := f.cfg
	if c.VEDim == 0 || !slices.Contains(c.VELayers, i) {
		return nil
	}
	if f.ve == nil {
		x := graph.Gather(f.param("ve/table"), graph.Reshape(f.inputs, f.b*f.t, 1))
		if c.VEDim != c.KVDim() {
			x = f.linearNamed(x, "ve/proj")
		}
		f.ve = graph.Mul(x, f.scalar("ve/scale"))
	}
	return graph.Mul(f.ve, f.scalar(BlockScope(i)+"/ve_scale"))
}
