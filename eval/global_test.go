package eval

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paramgolf/golf/data"
)

// globalRows lays out a rank's packed row so that the model sees what the
// record's one row gives it: every position scored once, in order, under
// the record's segments, no segment across two rows, and each split piece
// preceded by the token before it (weight 0, isolated) for the SmearGate.
func TestGlobalRowsLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const bos = 1
	for trial := range 300 {
		seq := 1 + rng.IntN(9)
		l := seq * (1 + rng.IntN(6))
		flat := make([]uint16, l+1+rng.IntN(3))
		for i := range flat {
			flat[i] = uint16(2 + rng.IntN(50))
			if rng.IntN(5) == 0 {
				flat[i] = bos
			}
		}
		s := rng.IntN(len(flat) - l)
		g := globalRows{width: min(l, 2*seq)}
		const w = 0.25
		g.addRank(flat, s, l, seq, bos, w)
		if len(g.x) != g.n*g.width || len(g.y) != len(g.x) || len(g.seg) != len(g.x) || len(g.weight) != len(g.x) {
			t.Fatalf("trial %d: %d rows of %d, %d/%d/%d/%d values", trial, g.n, g.width, len(g.x), len(g.y), len(g.seg), len(g.weight))
		}
		if l <= 2*seq && g.n != 1 {
			t.Errorf("trial %d: a %d-token row (seq %d) split into %d rows", trial, l, seq, g.n)
		}
		var starts []int
		for i := range l {
			if flat[s+i] == bos {
				starts = append(starts, i)
			}
		}
		wantIDs := make([]int32, l)
		data.SegmentIDs(wantIDs, starts, seq, 0, 0)
		var gotX, gotY, gotIDs []int32
		p := 0 // span position of the next scored token
		for r := range g.n {
			row := r * g.width
			// A split piece starts with the token before it, unscored.
			if p > 0 && (g.weight[row] != 0 || g.x[row] != int32(flat[s+p-1])) {
				t.Errorf("trial %d: row %d starts with token %d weight %v, want the token before its piece (%d), weight 0",
					trial, r, g.x[row], g.weight[row], flat[s+p-1])
			}
			for c := range g.width {
				i := row + c
				switch {
				case g.weight[i] == w:
					gotX, gotY, gotIDs = append(gotX, g.x[i]), append(gotY, g.y[i]), append(gotIDs, g.seg[i])
					p++
				case g.weight[i] != 0 || g.seg[i] != isolated:
					t.Fatalf("trial %d: row %d position %d: weight %v segment %d", trial, r, c, g.weight[i], g.seg[i])
				}
			}
			// No segment continues from this row into the next.
			if r+1 < g.n && p < l && p > 0 && wantIDs[p] == wantIDs[p-1] {
				t.Errorf("trial %d: segment %d split between rows %d and %d", trial, wantIDs[p], r, r+1)
			}
		}
		wantX, wantY := make([]int32, l), make([]int32, l)
		for i := range l {
			wantX[i], wantY[i] = int32(flat[s+i]), int32(flat[s+i+1])
		}
		if !slices.Equal(gotX, wantX) || !slices.Equal(gotY, wantY) || !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("trial %d (seq %d, %d tokens): scored positions\n x %v\n y %v\n segments %v\nwant\n x %v\n y %v\n segments %v",
				trial, seq, l, gotX, gotY, gotIDs, wantX, wantY, wantIDs)
		}
	}
}
