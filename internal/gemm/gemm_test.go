package gemm

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/paramgolf/golf/internal/compute"
)

const float32Type = dtypes.Float32

var (
	backendOnce sync.Once
	testBackend backends.Backend
	backendErr  error
)

func backend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() { testBackend, _, backendErr = compute.Open("") })
	if backendErr != nil {
		t.Fatal(backendErr)
	}
	return testBackend
}

// layout is one DotGeneral configuration the model (or a caller) uses.
type layout struct {
	name           string
	lDims, rDims   []int
	lc, lb, rc, rb []int
	outDims        []int // expected output shape
}

var layouts = []layout{
	{name: "linear 2-D x·wᵀ", lDims: []int{5, 7}, rDims: []int{3, 7}, lc: []int{1}, rc: []int{1}, outDims: []int{5, 3}},
	{name: "linear 3-D x·wᵀ", lDims: []int{2, 4, 7}, rDims: []int{3, 7}, lc: []int{-1}, rc: []int{1}, outDims: []int{2, 4, 3}},
	{name: "matmul a·b", lDims: []int{5, 7}, rDims: []int{7, 3}, lc: []int{1}, rc: []int{0}, outDims: []int{5, 3}},
	{name: "tied logits h·Eᵀ", lDims: []int{2, 3, 4}, rDims: []int{6, 4}, lc: []int{2}, rc: []int{1}, outDims: []int{2, 3, 6}},
	// q [B,T,Hkv,G,D] · k [B,S,Hkv,D] -> [B,Hkv,T,G,S] (grouped-query attention scores)
	{name: "attention scores GQA", lDims: []int{2, 5, 2, 3, 4}, rDims: []int{2, 5, 2, 4},
		lc: []int{4}, lb: []int{0, 2}, rc: []int{3}, rb: []int{0, 2}, outDims: []int{2, 2, 5, 3, 5}},
	// p [B,Hkv,T,G,S] · v [B,S,Hkv,D] -> [B,Hkv,T,G,D]
	{name: "attention values GQA", lDims: []int{2, 2, 5, 3, 5}, rDims: []int{2, 5, 2, 4},
		lc: []int{4}, lb: []int{0, 1}, rc: []int{1}, rb: []int{0, 2}, outDims: []int{2, 2, 5, 3, 4}},
	{name: "two contracting axes, unsorted", lDims: []int{3, 4, 5}, rDims: []int{5, 6, 3},
		lc: []int{2, 0}, rc: []int{0, 2}, outDims: []int{4, 6}},
	{name: "batch axes not leading", lDims: []int{4, 2, 3}, rDims: []int{3, 2, 5},
		lc: []int{2}, lb: []int{1}, rc: []int{0}, rb: []int{1}, outDims: []int{2, 4, 5}},
	{name: "swapped batch order", lDims: []int{3, 2, 4, 5}, rDims: []int{2, 5, 3, 6},
		lc: []int{3}, lb: []int{1, 0}, rc: []int{1}, rb: []int{0, 2}, outDims: []int{2, 3, 4, 6}},
}

func randomTensor(rng *rand.Rand, dims []int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = rng.NormFloat64()
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

func flat(t *tensors.Tensor) []float64 {
	v, err := tensors.CopyFlatData[float64](t)
	if err != nil {
		panic(err)
	}
	return v
}

// gradients returns f = Σ C ⊙ DotGeneral(L, R) and df/dL, df/dR, with the
// product from dot (this package's or gomlx's).
func gradients(t *testing.T, l layout, dot func(*Node, []int, []int, *Node, []int, []int) *Node, lhs, rhs, weights *tensors.Tensor) (out, dl, dr []float64) {
	t.Helper()
	exec, err := graph.NewExec(backend(t), func(L, R, C *Node) (*Node, *Node, *Node) {
		o := dot(L, l.lc, l.lb, R, l.rc, l.rb)
		f := graph.ReduceAllSum(graph.Mul(o, C))
		g := graph.Gradient(f, L, R)
		return o, g[0], g[1]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	res, err := exec.Exec(lhs, rhs, weights)
	if err != nil {
		t.Fatalf("%s: %v", l.name, err)
	}
	if got := res[0].Shape().Dimensions; !equalInts(got, l.outDims) {
		t.Fatalf("%s: output dims %v, want %v", l.name, got, l.outDims)
	}
	return flat(res[0]), flat(res[1]), flat(res[2])
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func maxRelDiff(a, b []float64) float64 {
	var worst, scale float64
	for i := range a {
		worst = max(worst, math.Abs(a[i]-b[i]))
		scale = max(scale, math.Abs(b[i]))
	}
	return worst / max(scale, 1e-300)
}

// TestGradientsMatchBuiltin compares the gemm-built gradients with gomlx's
// own (correct but [M,K,N]-materialising) gradients in float64.
func TestGradientsMatchBuiltin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range layouts {
		lhs, rhs := randomTensor(rng, l.lDims), randomTensor(rng, l.rDims)
		c := randomTensor(rng, l.outDims)
		o1, dl1, dr1 := gradients(t, l, DotGeneral, lhs, rhs, c)
		o2, dl2, dr2 := gradients(t, l, graph.DotGeneral, lhs, rhs, c)
		for _, cmp := range []struct {
			what      string
			got, want []float64
		}{{"value", o1, o2}, {"d lhs", dl1, dl2}, {"d rhs", dr1, dr2}} {
			if d := maxRelDiff(cmp.got, cmp.want); d > 1e-12 {
				t.Errorf("%s: %s differs from gomlx's by %.3g (relative)", l.name, cmp.what, d)
			}
		}
	}
}

// TestGradientsMatchFiniteDifferences checks every layout's gradient against
// central differences of the float64 forward product, an independent
// reference.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range layouts {
		lhs, rhs := randomTensor(rng, l.lDims), randomTensor(rng, l.rDims)
		c := randomTensor(rng, l.outDims)
		_, dl, dr := gradients(t, l, DotGeneral, lhs, rhs, c)
		exec, err := graph.NewExec(backend(t), func(L, R, C *Node) *Node {
			return graph.ReduceAllSum(graph.Mul(DotGeneral(L, l.lc, l.lb, R, l.rc, l.rb), C))
		})
		if err != nil {
			t.Fatal(err)
		}
		f := func(L, R *tensors.Tensor) float64 {
			res, err := exec.Exec(L, R, c)
			if err != nil {
				t.Fatal(err)
			}
			return flat(res[0])[0]
		}
		const h = 1e-6
		check := func(which string, x []float64, dims []int, grad []float64, other []float64, otherDims []int, isLHS bool) {
			for _, i := range []int{0, len(x) / 2, len(x) - 1} {
				plus, minus := append([]float64(nil), x...), append([]float64(nil), x...)
				plus[i] += h
				minus[i] -= h
				mk := func(v []float64) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(v, dims...) }
				o := tensors.FromFlatDataAndDimensions(other, otherDims...)
				var fp, fm float64
				if isLHS {
					fp, fm = f(mk(plus), o), f(mk(minus), o)
				} else {
					fp, fm = f(o, mk(plus)), f(o, mk(minus))
				}
				fd := (fp - fm) / (2 * h)
				if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
					t.Errorf("%s: d%s[%d] = %.9g, finite difference %.9g", l.name, which, i, grad[i], fd)
				}
			}
		}
		lv, rv := flat(lhs), flat(rhs)
		check("lhs", lv, l.lDims, dl, rv, l.rDims, true)
		check("rhs", rv, l.rDims, dr, lv, l.lDims, false)
		exec.Finalize()
	}
}

// largestGradientNode builds the gradient graph of one product and returns
// the most elements any node in it holds.
func largestGradientNode(t *testing.T, l layout, dot func(*Node, []int, []int, *Node, []int, []int) *Node) int {
	g := graph.NewGraph(backend(t), "size")
	defer g.Finalize()
	L := graph.Parameter(g, "L", shapes.Make(float32Type, l.lDims...))
	R := graph.Parameter(g, "R", shapes.Make(float32Type, l.rDims...))
	o := dot(L, l.lc, l.lb, R, l.rc, l.rb)
	graph.Gradient(graph.ReduceAllSum(graph.Square(o)), L, R)
	largest := 0
	for _, n := range g.Nodes() {
		largest = max(largest, n.Shape().Size())
	}
	return largest
}

// TestNoBroadcastProduct checks the point of the package: no node of the
// gradient graph is larger than the biggest operand or output, while gomlx's
// own gradient materialises the [batch, lhs free, contracted, rhs free]
// product (the check would catch a regression to it).
func TestNoBroadcastProduct(t *testing.T) {
	l := layout{name: "linear", lDims: []int{64, 32}, rDims: []int{48, 32}, lc: []int{1}, rc: []int{1}, outDims: []int{64, 48}}
	bound := max(64*32, 48*32, 64*48)
	if got := largestGradientNode(t, l, DotGeneral); got > bound {
		t.Errorf("gemm gradient graph has a node of %d elements, operands and output are at most %d", got, bound)
	}
	if got := largestGradientNode(t, l, graph.DotGeneral); got < 64*32*48 {
		t.Errorf("gomlx's gradient graph's largest node has %d elements; expected the %d-element broadcast product (has gomlx been upgraded? then this package may be unnecessary)", got, 64*32*48)
	}
}

func TestLinearShapesAndErrors(t *testing.T) {
	g := graph.NewGraph(backend(t), "linear")
	defer g.Finalize()
	x := graph.Parameter(g, "x", shapes.Make(float32Type, 2, 3, 8))
	w := graph.Parameter(g, "w", shapes.Make(float32Type, 5, 8))
	if got := Linear(x, w).Shape().Dimensions; !equalInts(got, []int{2, 3, 5}) {
		t.Errorf("Linear shape %v", got)
	}
	bad := graph.Parameter(g, "bad", shapes.Make(float32Type, 8, 5))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Linear with a transposed weight must panic")
			}
		}()
		Linear(x, bad)
	}()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("unpaired axes must panic")
			}
		}()
		DotGeneral(x, []int{2}, []int{0}, w, []int{1}, nil)
	}()
}
