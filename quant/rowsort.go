package quant

import (
	"fmt"
	"math/big"
)

// SimilarityOrder returns the greedy nearest-neighbour row order of the
// rows x cols symbol matrix sym (row-major), the record's
// _similarity_sort_l1 (PR #2135): start at row 0, then repeatedly append the
// unused row with the smallest L1 distance sum_c |sym[r][c] - sym[last][c]|
// to the row appended last, ties going to the lowest row index. Adjacent
// rows of the reordered matrix are then similar, which a compressor reading
// it column by column (transposed) can exploit. The cost is O(rows² cols).
func SimilarityOrder(sym []int8, rows, cols int) []int {
	order := make([]int, 0, rows)
	if rows == 0 {
		return order
	}
	used := make([]bool, rows)
	order = append(order, 0)
	used[0] = true
	for len(order) < rows {
		last := sym[order[len(order)-1]*cols:][:cols]
		best, bestD := -1, int(^uint(0)>>1)
		for r := range rows {
			if used[r] {
				continue
			}
			row := sym[r*cols:][:cols]
			d := 0
			for c, v := range row {
				x := int(v) - int(last[c])
				if x < 0 {
					x = -x
				}
				d += x
				if d >= bestD {
					break // cannot win: equal distance keeps the lower index
				}
			}
			if d < bestD {
				best, bestD = r, d
			}
		}
		order = append(order, best)
		used[best] = true
	}
	return order
}

// checkPermutation reports whether p is a permutation of 0..n-1.
func checkPermutation(p []int, n int) error {
	if len(p) != n {
		return fmt.Errorf("permutation of %d entries for %d rows", len(p), n)
	}
	seen := make([]bool, n)
	for i, v := range p {
		if v < 0 || v >= n || seen[v] {
			return fmt.Errorf("permutation entry %d is %d: not a permutation of 0..%d", i, v, n-1)
		}
		seen[v] = true
	}
	return nil
}

// EncodePermutation writes a permutation of 0..n-1 in ceil(log2(n!)/8)
// bytes, the least any code for arbitrary permutations can use (the record
// stores 2 bytes per row). Entry i is replaced by its rank among the
// entries not yet used (its Lehmer digit d_i in [0, n-i)), and the digits
// form one mixed-radix integer
//
//	v = d_0 + n·(d_1 + (n-1)·(d_2 + ...))
//
// written little-endian in exactly PermutationBytes(n) bytes.
func EncodePermutation(p []int) ([]byte, error) {
	n := len(p)
	if err := checkPermutation(p, n); err != nil {
		return nil, err
	}
	digits := lehmerDigits(p)
	v := new(big.Int)
	radix := new(big.Int)
	d := new(big.Int)
	for i := n - 1; i >= 0; i-- {
		v.Mul(v, radix.SetInt64(int64(n-i)))
		v.Add(v, d.SetInt64(int64(digits[i])))
	}
	be := v.Bytes()
	out := make([]byte, PermutationBytes(n))
	for i, b := range be { // big-endian to little-endian
		out[len(be)-1-i] = b
	}
	return out, nil
}

// DecodePermutation reads a permutation of 0..n-1 written by
// EncodePermutation; b must be exactly PermutationBytes(n) long and hold a
// value below n!.
func DecodePermutation(b []byte, n int) ([]int, error) {
	if n < 0 || len(b) != PermutationBytes(n) {
		return nil, fmt.Errorf("permutation of %d rows needs %d bytes, has %d", n, PermutationBytes(n), len(b))
	}
	be := make([]byte, len(b))
	for i, x := range b {
		be[len(b)-1-i] = x
	}
	v := new(big.Int).SetBytes(be)
	digits := make([]int, n)
	radix, d := new(big.Int), new(big.Int)
	for i := range n {
		v.QuoRem(v, radix.SetInt64(int64(n-i)), d)
		digits[i] = int(d.Int64())
	}
	if v.Sign() != 0 {
		return nil, fmt.Errorf("permutation code of %d rows is %d bytes but holds a value of n! or more", n, len(b))
	}
	return lehmerPermutation(digits), nil
}

// PermutationBytes is the length of EncodePermutation's output for n rows:
// ceil(log2(n!) / 8) bytes.
func PermutationBytes(n int) int {
	if n < 2 {
		return 0
	}
	f := new(big.Int).MulRange(1, int64(n))
	f.Sub(f, big.NewInt(1)) // the largest value, n! - 1
	return (f.BitLen() + 7) / 8
}

// fenwick counts the unused entries for rank queries in O(log n).
type fenwick []int

func newFenwickFull(n int) fenwick {
	f := make(fenwick, n+1)
	for i := 1; i <= n; i++ {
		f[i]++
		if j := i + i&-i; j <= n {
			f[j] += f[i]
		}
	}
	return f
}

func (f fenwick) add(i, v int) {
	for i++; i < len(f); i += i & -i {
		f[i] += v
	}
}

// prefix returns the count of entries below i.
func (f fenwick) prefix(i int) int {
	s := 0
	for ; i > 0; i -= i & -i {
		s += f[i]
	}
	return s
}

// find returns the smallest index whose prefix count (inclusive) exceeds k.
func (f fenwick) find(k int) int {
	pos, step := 0, 1
	for step*2 < len(f) {
		step *= 2
	}
	for ; step > 0; step /= 2 {
		if next := pos + step; next < len(f) && f[next] <= k {
			pos = next
			k -= f[next]
		}
	}
	return pos
}

func lehmerDigits(p []int) []int {
	f := newFenwickFull(len(p))
	d := make([]int, len(p))
	for i, v := range p {
		d[i] = f.prefix(v)
		f.add(v, -1)
	}
	return d
}

func lehmerPermutation(d []int) []int {
	f := newFenwickFull(len(d))
	p := make([]int, len(d))
	for i, k := range d {
		p[i] = f.find(k)
		f.add(p[i], -1)
	}
	return p
}

// invertPermutation returns q with q[p[i]] = i.
func invertPermutation(p []int) []int {
	q := make([]int, len(p))
	for i, v := range p {
		q[v] = i
	}
	return q
}

// permuteRows returns the rows of sym in the order p (row i of the result
// is row p[i] of sym).
func permuteRows(sym []int8, cols int, p []int) []int8 {
	out := make([]int8, 0, len(sym))
	for _, r := range p {
		out = append(out, sym[r*cols:(r+1)*cols]...)
	}
	return out
}

// unpermuteRows inverts permuteRows.
func unpermuteRows(sorted []int8, cols int, p []int) []int8 {
	out := make([]int8, len(sorted))
	for i, r := range p {
		copy(out[r*cols:(r+1)*cols], sorted[i*cols:(i+1)*cols])
	}
	return out
}
