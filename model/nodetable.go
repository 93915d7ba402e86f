package model

import (
	"runtime"
	"sync"
	"weak"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// nodeTable remembers facts about graph nodes this package built (a
// matmul's layout, a slice's range) for the gradients it registers with
// gomlx. It holds weak references and drops an entry when its node is
// collected, so it never keeps a finished graph alive.
type nodeTable[T any] struct{ m sync.Map } // weak.Pointer[graph.Node] -> T

func (t *nodeTable[T]) store(n *graph.Node, v T) {
	key := weak.Make(n)
	t.m.Store(key, v)
	runtime.AddCleanup(n, func(k weak.Pointer[graph.Node]) { t.m.Delete(k) }, key)
}

func (t *nodeTable[T]) load(n *graph.Node) (T, bool) {
	v, ok := t.m.Load(weak.Make(n))
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

// overrideVJP replaces gomlx's registered gradient of a node type: nodes
// that table knows get grad(node, adjoint, fact), every other node keeps
// gomlx's own gradient, so the process-wide change alters no one else's
// graphs. Called from init functions, before any goroutine can be building
// gradients.
func overrideVJP[T any](nt graph.NodeType, table *nodeTable[T], grad func(node, v *graph.Node, fact T) []*graph.Node) {
	builtin := graph.VJPRegistration[nt]
	graph.VJPRegistration[nt] = func(node *graph.Node, v []*graph.Node, outShape shapes.Shape) []*graph.Node {
		if fact, ok := table.load(node); ok {
			return grad(node, v[0], fact)
		}
		return builtin(node, v, outShape)
	}
}
