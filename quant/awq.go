package quant

import (
	"fmt"
	"math"
	"slices"
)

// AWQOptions configures AWQ-lite mixed precision (PR #1908; record-stack.md
// §4.4): the input-column groups where activations and weights are both
// large keep a finer grid inside the same GPTQ solve. Each GPTQ matrix with
// fewer than Bits bits and a Hessian is cut into groups of GroupSize
// consecutive input columns, scored
//
//	score = sum over the group's columns c of act_rms_c · mean_r |W[r][c]|,
//	act_rms_c = sqrt(H[c][c] / samples)
//
// (H's diagonal is the sum of x_c² over the calibration samples), and the
// TopK groups of all matrices together are quantized with Bits-bit symbols
// at the row scale k·std/(2^(Bits-1)-1) (the same clip, a finer step).
type AWQOptions struct {
	GroupSize int // columns per group (64)
	TopK      int // groups kept over all matrices (1)
	Bits      int // symbol width inside the kept groups (8)
}

// DefaultAWQ returns PR #1908's settings: one group of 64 columns at int8.
func DefaultAWQ() AWQOptions { return AWQOptions{GroupSize: 64, TopK: 1, Bits: 8} }

// Validate checks the options.
func (o AWQOptions) Validate() error {
	if o.GroupSize < 1 || o.TopK < 0 || o.Bits < 3 || o.Bits > 8 {
		return fmt.Errorf("awq: group size %d, top-k %d, bits %d (want size >= 1, top-k >= 0, bits 3..8)", o.GroupSize, o.TopK, o.Bits)
	}
	return nil
}

// Protected holds AWQ-lite's high-precision column groups of a matrix. The
// matrix's own symbols are 0 in these columns; its value at row r, column
// c = Starts[g] + j is
//
//	w[r][c] = float32(Symbols[r·n + g·Size + j]) · Scales[r],   n = len(Starts)·Size
//
// with symbols within ±(2^(Bits-1)-1) and fp16 scales.
type Protected struct {
	Size    int
	Starts  []int // first column of each group, ascending, groups not overlapping
	Bits    int
	Scales  []float32 // one per row
	Symbols []int8    // rows × len(Starts)·Size, row-major
}

// columns returns the protected column indices in order.
func (p *Protected) columns() []int {
	var cs []int
	for _, s := range p.Starts {
		for j := range p.Size {
			cs = append(cs, s+j)
		}
	}
	return cs
}

func (p *Protected) validate(rows, cols int) error {
	if p.Size < 1 || p.Bits < 2 || p.Bits > 8 || len(p.Starts) == 0 {
		return fmt.Errorf("protected groups: size %d, %d bits, %d groups", p.Size, p.Bits, len(p.Starts))
	}
	prev := -1
	for _, s := range p.Starts {
		if s <= prev || s < 0 || s+p.Size > cols {
			return fmt.Errorf("protected group at column %d (size %d) overlaps, is out of order or outside %d columns", s, p.Size, cols)
		}
		prev = s + p.Size - 1
	}
	n := len(p.Starts) * p.Size
	if len(p.Scales) != rows || len(p.Symbols) != rows*n {
		return fmt.Errorf("protected groups: %d scales and %d symbols for %d rows of %d columns", len(p.Scales), len(p.Symbols), rows, n)
	}
	qmax := int8(1<<(p.Bits-1) - 1)
	for i, v := range p.Symbols {
		if v < -qmax || v > qmax {
			return fmt.Errorf("protected symbol %d at %d outside ±%d", v, i, qmax)
		}
	}
	for r, s := range p.Scales {
		if !(s > 0) || math.IsInf(float64(s), 0) || RoundFloat16(s) != s {
			return fmt.Errorf("protected scale %v of row %d is not a positive fp16 value", s, r)
		}
	}
	return nil
}

// awqGroup is one candidate column group.
type awqGroup struct {
	tensor int
	start  int
	score  float64
}

// selectAWQ returns, per tensor index, the starts of its protected groups:
// the TopK highest-scoring groups over the eligible matrices (ties keep
// tensor order, then column order).
func selectAWQ(cands []awqCandidate, o AWQOptions) map[int][]int {
	var groups []awqGroup
	for _, c := range cands {
		rows, cols := c.rows, c.cols
		n := c.h.In
		if n != cols {
			continue
		}
		samples := float64(max(c.h.Count, 1))
		weightScore := make([]float64, cols)
		for r := range rows {
			for j, v := range c.w[r*cols : (r+1)*cols] {
				weightScore[j] += math.Abs(float64(v))
			}
		}
		for g := 0; g+o.GroupSize <= cols; g += o.GroupSize {
			var s float64
			for j := g; j < g+o.GroupSize; j++ {
				s += math.Sqrt(max(c.h.Sum[j*n+j], 0)/samples) * weightScore[j] / float64(rows)
			}
			groups = append(groups, awqGroup{c.index, g, s})
		}
	}
	slices.SortStableFunc(groups, func(a, b awqGroup) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := map[int][]int{}
	for _, g := range groups[:min(o.TopK, len(groups))] {
		out[g.tensor] = append(out[g.tensor], g.start)
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}

// awqCandidate is a matrix AWQ may protect.
type awqCandidate struct {
	index      int
	w          []float32
	rows, cols int
	h          *Hessian
}
