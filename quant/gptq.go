package quant

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/paramgolf/golf/model"
)

// Hessian accumulates the input Gram matrix H = sum over samples of x x^T of
// one linear layer y = W x (W is [out, in], x has In values). GPTQ weighs a
// matrix's quantization error by it: the output error of row r is
// e_r H e_r^T for weight error e_r.
type Hessian struct {
	In    int       // input features (the matrix's columns)
	Sum   []float64 // In x In, row-major; symmetric
	Count int       // samples added
}

// NewHessian returns an empty accumulator for in input features.
func NewHessian(in int) *Hessian {
	return &Hessian{In: in, Sum: make([]float64, in*in)}
}

// Add adds the rows of x (row-major, n x In, one input vector per row) to H.
func (h *Hessian) Add(x []float32) error {
	if h.In == 0 || len(x)%h.In != 0 {
		return fmt.Errorf("hessian: %d values are not rows of %d inputs", len(x), h.In)
	}
	n := len(x) / h.In
	if n == 0 {
		return nil
	}
	x64 := make([]float64, len(x))
	for i, v := range x {
		x64[i] = float64(v)
	}
	a := blas64.General{Rows: n, Cols: h.In, Stride: h.In, Data: x64}
	c := blas64.Symmetric{Uplo: blas.Upper, N: h.In, Stride: h.In, Data: h.Sum}
	blas64.Syrk(blas.Trans, 1, a, 1, c)
	// Syrk fills the upper triangle; mirror it so Sum stays symmetric.
	for i := range h.In {
		for j := i + 1; j < h.In; j++ {
			h.Sum[j*h.In+i] = h.Sum[i*h.In+j]
		}
	}
	h.Count += n
	return nil
}

// GPTQOptions tunes GPTQ.
type GPTQOptions struct {
	// Damp adds Damp * mean(diag H) to the diagonal before inverting (0.01
	// in the GPTQ paper), which keeps the inverse well conditioned.
	Damp float64
	// BlockSize is the number of columns quantized between lazy batch
	// updates of the rest of the matrix (128 in the paper); it changes
	// speed, not the result (up to rounding).
	BlockSize int
	// ActOrder quantizes columns in order of decreasing H diagonal (the
	// most active inputs first), so later columns absorb their error.
	ActOrder bool
}

// DefaultGPTQ returns the GPTQ paper's settings with act-order on.
func DefaultGPTQ() GPTQOptions { return GPTQOptions{Damp: 0.01, BlockSize: 128, ActOrder: true} }

// gptq re-quantizes the rows x cols matrix w (row-major) with fixed per-row
// scales, column by column (GPTQ, Frantar et al. 2022):
//
//	H' = H + damp*mean(diag H)*I,  U = upper Cholesky factor of H'^-1
//	for each column i (in act order):
//	    q_i = clamp(round(w_i / s), -qmax, qmax)        (per row r: s = scales[r])
//	    e   = (w_i - s*q_i) / U[i][i]
//	    w_j -= e * U[i][j]  for every later column j
//
// Later columns are updated lazily in blocks. Columns whose H diagonal is
// zero (inputs never active) are quantized as zero. sym receives the symbols.
//
// With fine set (AWQ-lite), the columns it protects are rounded on its
// finer grid instead and their symbols go to fine.p.Symbols (sym holds 0
// there); the error feedback is the same.
func gptq(w []float32, rows, cols int, scales []float32, qmax int, h *Hessian, o GPTQOptions, sym []int8, fine *gptqFine) error {
	if h.In != cols || len(h.Sum) != cols*cols {
		return fmt.Errorf("GPTQ: Hessian is for %d inputs, matrix has %d columns", h.In, cols)
	}
	if o.BlockSize <= 0 {
		o.BlockSize = 128
	}
	H := slices.Clone(h.Sum)
	dead := make([]bool, cols)
	var meanDiag float64
	for i := range cols {
		d := H[i*cols+i]
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return fmt.Errorf("GPTQ: Hessian diagonal %d is %v", i, d)
		}
		if d <= 0 {
			dead[i] = true
			H[i*cols+i] = 1
		}
		meanDiag += H[i*cols+i]
	}
	meanDiag /= float64(cols)
	perm := make([]int, cols)
	for i := range perm {
		perm[i] = i
	}
	if o.ActOrder {
		sort.SliceStable(perm, func(a, b int) bool { return H[perm[a]*cols+perm[a]] > H[perm[b]*cols+perm[b]] })
	}
	// Permuted, damped Hessian.
	hp := mat.NewSymDense(cols, nil)
	damp := o.Damp * meanDiag
	for a := range cols {
		for b := a; b < cols; b++ {
			v := H[perm[a]*cols+perm[b]]
			if a == b {
				v += damp
			}
			hp.SetSym(a, b, v)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(hp) {
		return fmt.Errorf("GPTQ: Hessian is not positive definite (raise the damping)")
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return fmt.Errorf("GPTQ: inverting the Hessian: %w", err)
	}
	var cholInv mat.Cholesky
	if !cholInv.Factorize(&inv) {
		return fmt.Errorf("GPTQ: inverse Hessian is not positive definite")
	}
	var u mat.TriDense
	cholInv.UTo(&u)
	U := u.RawTriangular()

	// Work on columns: wt[a] is permuted column a, contiguous over rows.
	wt := make([]float64, cols*rows)
	for a, c := range perm {
		col := wt[a*rows : (a+1)*rows]
		if dead[c] {
			continue
		}
		for r := range rows {
			col[r] = float64(w[r*cols+c])
		}
	}
	qt := make([]int8, cols*rows)
	fq := float64(qmax)
	errBlock := make([]float64, o.BlockSize*rows)
	for i1 := 0; i1 < cols; i1 += o.BlockSize {
		i2 := min(i1+o.BlockSize, cols)
		for i := i1; i < i2; i++ {
			col := wt[i*rows : (i+1)*rows]
			d := U.Data[i*U.Stride+i]
			e := errBlock[(i-i1)*rows : (i-i1+1)*rows]
			if fine != nil && fine.index[perm[i]] >= 0 {
				fine.quantize(col, e, d, fine.index[perm[i]])
			} else {
				for r := range rows {
					s := float64(scales[r])
					q := math.Max(-fq, math.Min(fq, math.RoundToEven(col[r]/s)))
					qt[i*rows+r] = int8(q)
					e[r] = (col[r] - q*s) / d
				}
			}
			for j := i + 1; j < i2; j++ {
				f := U.Data[i*U.Stride+j]
				if f == 0 {
					continue
				}
				cj := wt[j*rows : (j+1)*rows]
				for r := range rows {
					cj[r] -= f * e[r]
				}
			}
		}
		if i2 < cols {
			// wt[i2:] -= U[i1:i2, i2:]^T * E   ((cols-i2) x rows)
			nb := i2 - i1
			a := blas64.General{Rows: nb, Cols: cols - i2, Stride: U.Stride, Data: U.Data[i1*U.Stride+i2:]}
			b := blas64.General{Rows: nb, Cols: rows, Stride: rows, Data: errBlock[:nb*rows]}
			c := blas64.General{Rows: cols - i2, Cols: rows, Stride: rows, Data: wt[i2*rows:]}
			blas64.Gemm(blas.Trans, blas.NoTrans, -1, a, b, 1, c)
		}
	}
	for a, c := range perm {
		for r := range rows {
			sym[r*cols+c] = qt[a*rows+r]
		}
	}
	return nil
}

// gptqFine is AWQ-lite's finer grid for some columns of a GPTQ solve.
type gptqFine struct {
	p     *Protected
	qmax  int
	index []int // per column: its position among the protected columns, or -1
}

// quantize rounds one protected column (its values over the rows) on the
// fine grid, storing symbols and the scaled error e.
func (f *gptqFine) quantize(col, e []float64, d float64, j int) {
	n := len(f.p.Symbols) / len(col)
	fq := float64(f.qmax)
	for r, v := range col {
		s := float64(f.p.Scales[r])
		q := math.Max(-fq, math.Min(fq, math.RoundToEven(v/s)))
		f.p.Symbols[r*n+j] = int8(q)
		e[r] = (v - q*s) / d
	}
}

// WeightedError returns the Hessian-weighted squared error of an
// approximation q of the rows x cols matrix w (row-major):
// sum over rows r of e_r H e_r^T with e_r = w_r - q_r. It is the squared
// error of the layer's outputs over the samples H was accumulated from, the
// quantity GPTQ minimises.
func WeightedError(w, q []float32, rows, cols int, h *Hessian) float64 {
	e := make([]float64, cols)
	var total float64
	for r := range rows {
		for c := range cols {
			e[c] = float64(w[r*cols+c]) - float64(q[r*cols+c])
		}
		for i := range cols {
			if e[i] == 0 {
				continue
			}
			row := h.Sum[i*cols : (i+1)*cols]
			var s float64
			for j, v := range row {
				s += v * e[j]
			}
			total += e[i] * s
		}
	}
	return total
}

// HessiansFromTensors converts calibration tensors into GPTQ Hessians: each
// tensor is named after the matrix parameter it belongs to and holds that
// matrix's input Gram matrix X^T X (shape [in, in], symmetric, finite), as a
// calibration run writes it (e.g. with train.WriteTensors). The sample count
// is not needed: GPTQ's result does not depend on the Hessian's scale.
func HessiansFromTensors(ts []model.Tensor) (map[string]*Hessian, error) {
	out := make(map[string]*Hessian, len(ts))
	for _, t := range ts {
		if len(t.Shape) != 2 || t.Shape[0] != t.Shape[1] || len(t.Data) != t.Shape[0]*t.Shape[1] {
			return nil, fmt.Errorf("hessian %q: shape %v with %d values is not a square matrix", t.Name, t.Shape, len(t.Data))
		}
		if _, dup := out[t.Name]; dup {
			return nil, fmt.Errorf("hessian %q appears twice", t.Name)
		}
		n := t.Shape[0]
		h := NewHessian(n)
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("hessian %q: value %d is %v", t.Name, i, v)
			}
			h.Sum[i] = float64(v)
		}
		for i := range n {
			if h.Sum[i*n+i] < 0 {
				return nil, fmt.Errorf("hessian %q: negative diagonal %v at %d", t.Name, h.Sum[i*n+i], i)
			}
			for j := i + 1; j < n; j++ {
				a, b := h.Sum[i*n+j], h.Sum[j*n+i]
				if math.Abs(a-b) > 1e-4*(math.Abs(a)+math.Abs(b))+1e-30 {
					return nil, fmt.Errorf("hessian %q: not symmetric at (%d,%d): %v vs %v", t.Name, i, j, a, b)
				}
			}
		}
		out[t.Name] = h
	}
	return out, nil
}
