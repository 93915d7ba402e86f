package spmtrain

import "fmt"

// The reference trainer (SentencePiece 0.1.97, built with GCC 12's
// libstdc++ as Debian ships it) depends on three behaviours of the C++
// standard library that the C++ standard leaves open, and which decide the
// trained vocabulary:
//
//   - The BPE trainer keeps only the most frequent 5% of its symbols
//     "active", re-chosen every 100 merges with std::partial_sort over the
//     symbols in the iteration order of a std::unordered_map. Among symbols
//     tied at the cut, which ones stay active depends on that order and on
//     partial_sort's heap algorithm; once the best frequency falls to the
//     cut (it does, at 8192 pieces on a 10 MB corpus), it decides merges.
//   - Sampling input sentences (input_sentence_size) draws from
//     std::uniform_int_distribution<uint64> over std::mt19937 seeded with
//     12345678.
//
// This file reproduces them exactly; testdata/stdcompat.cc is the C++
// program whose output the tests compare against.

// cxxHashOrder tracks the iteration order of a libstdc++
// std::unordered_map<uint64_t, V> with std::hash (the identity), the
// default maximum load factor 1.0 and the prime rehash policy. libstdc++
// keeps every element on one singly linked list, each bucket's elements
// contiguous on it; a bucket's slot points at the node before its first
// element. A new element goes first in its bucket's run, or first on the
// list if its bucket was empty; rehashing walks the list in order and
// re-inserts each element the same way. Iteration walks the list.
//
// Elements are small integers (the caller's indices) with a 64-bit key
// each; key(i) must stay fixed while i is in the map.
type cxxHashOrder struct {
	key      func(i int32) uint64
	next     []int32 // by element: the next element on the list, or -1
	buckets  []int32 // by bucket: the node before its first element, beforeBegin, or -1 (empty)
	head     int32   // first element on the list (the before-begin node's next), or -1
	count    int
	growth   int // index in cxxBucketGrowth of the current bucket count; -1: one bucket, nothing allocated
	nbuckets uint64
}

// beforeBegin stands for libstdc++'s _M_before_begin node in buckets.
const beforeBegin int32 = -2

// cxxBucketGrowth is the sequence of bucket counts a libstdc++ unordered_map
// goes through as it grows one insertion at a time from empty: the first
// insertion allocates 13 buckets (the policy's minimum of 11, rounded up to
// a prime); then, when an insertion would take the size above the bucket
// count, the count becomes the smallest prime of libstdc++'s __prime_list
// that is at least twice the old count. (Printed by growing a real
// std::unordered_map; see testdata/stdcompat.cc.)
var cxxBucketGrowth = [...]uint64{
	13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229,
	172933, 351061, 712697, 1447153, 2938679, 5967347, 12117689, 24607243,
	49969847, 101473717, 206062531, 418451333, 849749479, 1725587117,
	3504151727,
}

func newCxxHashOrder(key func(i int32) uint64) *cxxHashOrder {
	return &cxxHashOrder{key: key, head: -1, growth: -1, nbuckets: 1, buckets: []int32{-1}}
}

func (h *cxxHashOrder) bucket(i int32) uint64 { return h.key(i) % h.nbuckets }

func (h *cxxHashOrder) nextOf(n int32) int32 {
	if n == beforeBegin {
		return h.head
	}
	return h.next[n]
}

func (h *cxxHashOrder) setNext(n, to int32) {
	if n == beforeBegin {
		h.head = to
	} else {
		h.next[n] = to
	}
}

// insert adds element i (not already present), rehashing first when
// libstdc++ would.
func (h *cxxHashOrder) insert(i int32) error {
	for int(i) >= len(h.next) {
		h.next = append(h.next, -1)
	}
	// _M_need_rehash: the next resize is at the bucket count (load factor 1).
	limit := uint64(0)
	if h.growth >= 0 {
		limit = h.nbuckets
	}
	if uint64(h.count)+1 > limit {
		if h.growth+1 >= len(cxxBucketGrowth) {
			return fmt.Errorf("more than %d symbols", cxxBucketGrowth[len(cxxBucketGrowth)-1])
		}
		h.growth++
		h.rehash(cxxBucketGrowth[h.growth])
	}
	h.insertBucketBegin(h.bucket(i), i)
	h.count++
	return nil
}

// insertBucketBegin is libstdc++'s _M_insert_bucket_begin.
func (h *cxxHashOrder) insertBucketBegin(b uint64, i int32) {
	if prev := h.buckets[b]; prev != -1 {
		h.next[i] = h.nextOf(prev)
		h.setNext(prev, i)
		return
	}
	h.next[i] = h.head
	h.head = i
	if h.next[i] != -1 {
		h.buckets[h.bucket(h.next[i])] = i
	}
	h.buckets[b] = beforeBegin
}

// rehash is libstdc++'s _M_rehash_aux for unique keys.
func (h *cxxHashOrder) rehash(n uint64) {
	nb := make([]int32, n)
	for j := range nb {
		nb[j] = -1
	}
	p := h.head
	h.head = -1
	var bbeginBkt uint64
	h.nbuckets = n
	for p != -1 {
		next := h.next[p]
		b := h.bucket(p)
		if nb[b] == -1 {
			h.next[p] = h.head
			h.head = p
			nb[b] = beforeBegin
			if h.next[p] != -1 {
				nb[bbeginBkt] = p
			}
			bbeginBkt = b
		} else {
			h.next[p] = h.nextOf(nb[b])
			h.setNext(nb[b], p)
		}
		p = next
	}
	h.buckets = nb
}

// erase removes element i, which must be present (libstdc++'s _M_erase).
func (h *cxxHashOrder) erase(i int32) {
	b := h.bucket(i)
	prev := h.buckets[b]
	for h.nextOf(prev) != i {
		prev = h.nextOf(prev)
	}
	next := h.next[i]
	if prev == h.buckets[b] { // i was the first of its bucket
		var nextBkt uint64
		if next != -1 {
			nextBkt = h.bucket(next)
		}
		if next == -1 || nextBkt != b { // the bucket is now empty
			if next != -1 {
				h.buckets[nextBkt] = h.buckets[b]
			}
			h.buckets[b] = -1
		}
	} else if next != -1 {
		if nb := h.bucket(next); nb != b {
			h.buckets[nb] = prev
		}
	}
	h.setNext(prev, next)
	h.next[i] = -1
	h.count--
}

// each calls fn for every element in iteration order.
func (h *cxxHashOrder) each(fn func(i int32)) {
	for p := h.head; p != -1; p = h.next[p] {
		fn(p)
	}
}

// cxxHeapSelect reorders v so that v[:k] holds the elements that
// std::partial_sort(v.begin(), v.begin()+k, v.end(), less) leaves there
// (libstdc++'s __heap_select: a heap of the first k under less, then each
// later element that is less than the heap's top replaces it). The order
// within v[:k] is the heap's, not sorted; callers that need only the chosen
// set, as the BPE trainer does, skip the final sort_heap.
func cxxHeapSelect[T any](v []T, k int, less func(a, b T) bool) {
	if k <= 0 {
		return
	}
	cxxMakeHeap(v[:k], less)
	for i := k; i < len(v); i++ {
		if less(v[i], v[0]) {
			// __pop_heap(first, middle, i): the top goes to i, i's value
			// sinks into the heap from the root.
			val := v[i]
			v[i] = v[0]
			cxxAdjustHeap(v[:k], 0, val, less)
		}
	}
}

// cxxMakeHeap is libstdc++'s __make_heap.
func cxxMakeHeap[T any](v []T, less func(a, b T) bool) {
	n := len(v)
	if n < 2 {
		return
	}
	for parent := (n - 2) / 2; ; parent-- {
		cxxAdjustHeap(v, parent, v[parent], less)
		if parent == 0 {
			return
		}
	}
}

// cxxAdjustHeap is libstdc++'s __adjust_heap: move the hole at hole down to
// a leaf along the larger children, then push val up from there.
func cxxAdjustHeap[T any](v []T, hole int, val T, less func(a, b T) bool) {
	n := len(v)
	top := hole
	child := hole
	for child < (n-1)/2 {
		child = 2 * (child + 1)
		if less(v[child], v[child-1]) {
			child--
		}
		v[hole] = v[child]
		hole = child
	}
	if n&1 == 0 && child == (n-2)/2 {
		child = 2 * (child + 1)
		v[hole] = v[child-1]
		hole = child - 1
	}
	// __push_heap
	parent := (hole - 1) / 2
	for hole > top && less(v[parent], val) {
		v[hole] = v[parent]
		hole = parent
		parent = (hole - 1) / 2
	}
	v[hole] = val
}

// mt19937 is the 32-bit Mersenne Twister, std::mt19937.
type mt19937 struct {
	mt  [624]uint32
	idx int
}

func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{idx: 624}
	m.mt[0] = seed
	for i := 1; i < 624; i++ {
		m.mt[i] = 1812433253*(m.mt[i-1]^m.mt[i-1]>>30) + uint32(i)
	}
	return m
}

func (m *mt19937) next() uint32 {
	if m.idx >= 624 {
		for i := range 624 {
			y := m.mt[i]&0x80000000 | m.mt[(i+1)%624]&0x7fffffff
			v := m.mt[(i+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			m.mt[i] = v
		}
		m.idx = 0
	}
	y := m.mt[m.idx]
	m.idx++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// uniform returns std::uniform_int_distribution<uint64_t>(0, hi)(m) as
// libstdc++ 12 computes it: Lemire's nearly divisionless method when the
// range fits the generator's 32 bits, the direct value when it is exactly
// 32 bits, and the composition of a high and a low draw above.
func (m *mt19937) uniform(hi uint64) uint64 {
	const genMax = 1<<32 - 1
	switch {
	case hi < genMax:
		r := uint32(hi + 1)
		prod := uint64(m.next()) * uint64(r)
		low := uint32(prod)
		if low < r {
			threshold := -r % r
			for low < threshold {
				prod = uint64(m.next()) * uint64(r)
				low = uint32(prod)
			}
		}
		return prod >> 32
	case hi == genMax:
		return uint64(m.next())
	default:
		for {
			tmp := uint64(1<<32) * m.uniform(hi/(1<<32))
			ret := tmp + uint64(m.next())
			if ret <= hi && ret >= tmp { // ret < tmp: it wrapped around
				return ret
			}
		}
	}
}
