package data

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeShards writes one shard per size with consecutive token values
// (shard contents = the stream positions they hold, mod 65536), returning
// the files and the concatenated stream.
func writeShards(t testing.TB, dir, prefix string, sizes ...int) ([]string, []uint16) {
	t.Helper()
	var files []string
	var stream []uint16
	for i, n := range sizes {
		toks := make([]uint16, n)
		for j := range toks {
			toks[j] = uint16(len(stream) + j)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s_%06d.bin", prefix, i))
		if err := WriteShard(path, toks); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
		stream = append(stream, toks...)
	}
	return files, stream
}

func toInt32(u []uint16) []int32 {
	out := make([]int32, len(u))
	for i, v := range u {
		out[i] = int32(v)
	}
	return out
}

func TestLoaderHandExample(t *testing.T) {
	// One shard 0..9, 2 ranks, seqLen 2, global batch 4, no accumulation:
	// local 2, span 3, chunk 6. Call 1 takes 0..5: rank 0 gets [0 1 2],
	// rank 1 [3 4 5]. Call 2 takes 6..9 then wraps to 0..1: rank 0 gets
	// [6 7 8], rank 1 [9 0 1].
	files, _ := writeShards(t, t.TempDir(), "fineweb_train", 10)
	want := [][2][2][]int32{
		{{{0, 1}, {1, 2}}, {{3, 4}, {4, 5}}},
		{{{6, 7}, {7, 8}}, {{9, 0}, {0, 1}}},
	}
	for rank := range 2 {
		l, err := NewLoader(files, rank, 2)
		if err != nil {
			t.Fatal(err)
		}
		for call, w := range want {
			in, tg, err := l.Next(4, 2, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in, w[rank][0]) || !slices.Equal(tg, w[rank][1]) {
				t.Errorf("rank %d call %d: inputs %v targets %v, want %v %v", rank, call, in, tg, w[rank][0], w[rank][1])
			}
		}
		l.Close()
	}
}

// loaderModel is the reference semantics: the shards' concatenation
// repeated forever; each call consumes world×(local+1) tokens from off.
type loaderModel struct {
	stream []uint16
	off    int
}

func (m *loaderModel) next(local, world, rank int) (in, tg []int32) {
	span := local + 1
	s := make([]uint16, span)
	for i := range s {
		s[i] = m.stream[(m.off+rank*span+i)%len(m.stream)]
	}
	return toInt32(s[:local]), toInt32(s[1:])
}

func TestLoaderMatchesStreamModel(t *testing.T) {
	dir := t.TempDir()
	// Empty shards anywhere (also first and last) are skipped, as the
	// reference's take loop does.
	files, stream := writeShards(t, dir, "fineweb_train", 0, 5, 0, 17, 3, 0, 11, 0)
	for _, c := range []struct{ global, seq, accum, world int }{
		{4, 2, 1, 1}, {6, 3, 1, 2}, {12, 2, 2, 3}, {8, 1, 2, 4}, {40, 10, 1, 2}, {36, 36, 1, 1}, {64, 4, 2, 2},
	} {
		t.Run(fmt.Sprintf("g%d_s%d_a%d_w%d", c.global, c.seq, c.accum, c.world), func(t *testing.T) {
			local := c.global / (c.world * c.accum)
			span := local + 1
			loaders := make([]*Loader, c.world)
			for r := range loaders {
				var err error
				if loaders[r], err = NewLoader(files, r, c.world); err != nil {
					t.Fatal(err)
				}
				defer loaders[r].Close()
			}
			model := &loaderModel{stream: stream}
			for call := range 25 { // wraps around the 36-token stream several times
				var chunk []int32
				for r, l := range loaders {
					in, tg, err := l.Next(c.global, c.seq, c.accum)
					if err != nil {
						t.Fatal(err)
					}
					if len(in) != local || len(tg) != local {
						t.Fatalf("got %d inputs, %d targets, want %d", len(in), len(tg), local)
					}
					wantIn, wantTg := model.next(local, c.world, r)
					if !slices.Equal(in, wantIn) || !slices.Equal(tg, wantTg) {
						t.Fatalf("call %d rank %d: inputs %v targets %v, want %v %v", call, r, in, tg, wantIn, wantTg)
					}
					// Shift by one: each target is the next input, row by row
					// included, and the last target is the token after the last input.
					for i := 0; i+1 < local; i++ {
						if tg[i] != in[i+1] {
							t.Fatalf("targets[%d] = %d, inputs[%d] = %d", i, tg[i], i+1, in[i+1])
						}
					}
					chunk = append(chunk, in...)
					chunk = append(chunk, tg[local-1])
				}
				// The ranks' spans are disjoint and cover one contiguous chunk.
				for i, v := range chunk {
					if want := int32(stream[(model.off+i)%len(stream)]); v != want {
						t.Fatalf("call %d: chunk[%d] = %d, want %d", call, i, v, want)
					}
				}
				if len(chunk) != span*c.world {
					t.Fatalf("chunk of %d tokens, want %d", len(chunk), span*c.world)
				}
				model.off += span * c.world
			}
		})
	}
}

func TestLoaderResumeEqualsUninterrupted(t *testing.T) {
	files, _ := writeShards(t, t.TempDir(), "fineweb_train", 13, 0, 29, 7)
	const world, global, seq, accum = 2, 16, 4, 2
	for stopAt := range 12 {
		for rank := range world {
			a, err := NewLoader(files, rank, world)
			if err != nil {
				t.Fatal(err)
			}
			for range stopAt {
				if _, _, err := a.Next(global, seq, accum); err != nil {
					t.Fatal(err)
				}
			}
			saved, err := json.Marshal(a.State())
			if err != nil {
				t.Fatal(err)
			}
			var st LoaderState
			if err := json.Unmarshal(saved, &st); err != nil {
				t.Fatal(err)
			}
			// A fresh loader (as after a restart), advanced elsewhere first.
			b, err := NewLoader(files, rank, world)
			if err != nil {
				t.Fatal(err)
			}
			b.Next(global, seq, accum)
			if err := b.Restore(st); err != nil {
				t.Fatalf("restore %s: %v", saved, err)
			}
			for call := range 10 {
				ai, at, err1 := a.Next(global, seq, accum)
				bi, bt, err2 := b.Next(global, seq, accum)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if !slices.Equal(ai, bi) || !slices.Equal(at, bt) {
					t.Fatalf("stop %d rank %d: call %d after resume differs", stopAt, rank, call)
				}
			}
			a.Close()
			b.Close()
		}
	}
}

func TestLoaderNextIntoEqualsNext(t *testing.T) {
	files, _ := writeShards(t, t.TempDir(), "fineweb_train", 7, 0, 12, 5)
	a, _ := NewLoader(files, 1, 3)
	b, _ := NewLoader(files, 1, 3)
	in, tg := make([]int32, 2), make([]int32, 2)
	for call := range 20 {
		wantIn, wantTg, err := a.Next(12, 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.NextInto(in, tg, 12, 2, 2); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in, wantIn) || !slices.Equal(tg, wantTg) {
			t.Fatalf("call %d: NextInto %v %v, Next %v %v", call, in, tg, wantIn, wantTg)
		}
	}
	if err := b.NextInto(make([]int32, 3), tg, 12, 2, 2); err == nil || !strings.Contains(err.Error(), "of 2 tokens, got 3 and 2") {
		t.Errorf("wrong length: %v", err)
	}
}

func TestLoaderStateJSON(t *testing.T) {
	files, _ := writeShards(t, t.TempDir(), "fineweb_train", 10, 10)
	l, err := NewLoader(files, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Next(12, 3, 1) // consumes 13 tokens: shard 1, position 3
	b, _ := json.Marshal(l.State())
	if string(b) != `{"file":1,"pos":3,"shard":"fineweb_train_000001.bin"}` {
		t.Errorf("state JSON %s", b)
	}
	// A state without the shard name (older checkpoints) restores too.
	if err := l.Restore(LoaderState{File: 0, Pos: 9}); err != nil {
		t.Fatal(err)
	}
	in, _, _ := l.Next(3, 3, 1)
	if !slices.Equal(in, []int32{9, 10, 11}) {
		t.Errorf("after restore got %v", in)
	}
}

func TestLoaderErrors(t *testing.T) {
	dir := t.TempDir()
	files, _ := writeShards(t, dir, "fineweb_train", 10, 10)
	empties, _ := writeShards(t, dir, "empty", 0, 0)
	if _, err := NewLoader(nil, 0, 1); err == nil {
		t.Error("no files accepted")
	}
	if _, err := NewLoader(files, 2, 2); err == nil || !strings.Contains(err.Error(), "rank 2") {
		t.Errorf("rank 2 of 2: %v", err)
	}
	if _, err := NewLoader(files, 0, 0); err == nil {
		t.Error("world size 0 accepted")
	}
	if _, err := NewLoader([]string{filepath.Join(dir, "missing.bin")}, 0, 1); err == nil || !strings.Contains(err.Error(), "missing.bin") {
		t.Errorf("missing shard: %v", err)
	}
	l, err := NewLoader(empties, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Next(4, 2, 1); err == nil || !strings.Contains(err.Error(), "all 2 training shards are empty") {
		t.Errorf("all-empty stream: %v", err)
	}
	l, err = NewLoader(files, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		global, seq, accum int
		want               string
	}{
		{0, 2, 1, "global batch of 0"},
		{8, 0, 1, "sequence length 0"},
		{8, 2, 0, "accumulation steps"},
		{9, 1, 1, "does not divide evenly over 2 ranks × 1"},
		{12, 4, 1, "6 tokens per rank"},
		{10, 1, 4, "does not divide evenly over 2 ranks × 4"},
	} {
		if _, _, err := l.Next(c.global, c.seq, c.accum); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Next(%d, %d, %d): %v, want %q", c.global, c.seq, c.accum, err, c.want)
		}
	}
	for _, st := range []LoaderState{{File: 2}, {File: -1}, {File: 0, Pos: 11}, {File: 0, Pos: -1}, {File: 1, Shard: "fineweb_train_000000.bin"}} {
		if err := l.Restore(st); err == nil {
			t.Errorf("Restore(%+v) accepted", st)
		}
	}
	l.Close()
	if _, _, err := l.Next(4, 2, 1); err == nil {
		t.Error("Next after Close succeeded")
	}
	if err := l.Restore(LoaderState{File: 1, Pos: 10}); err != nil {
		t.Fatal(err)
	}
	// Position 10 of shard 1 is its end: the stream wraps to shard 0.
	in, _, err := l.Next(4, 2, 1)
	if err != nil || !slices.Equal(in, []int32{0, 1}) {
		t.Errorf("after restoring at the end: %v, %v", in, err)
	}
}

func TestLoadValidation(t *testing.T) {
	dir := t.TempDir()
	files, stream := writeShards(t, dir, "fineweb_val", 5, 0, 8)
	for _, c := range []struct{ seq, want int }{
		{1, 13}, {2, 13}, {3, 13}, {4, 13}, {5, 11}, {6, 13}, {7, 8}, {11, 12}, {12, 13},
	} {
		got, err := LoadValidation(files, c.seq)
		if err != nil {
			t.Fatalf("seq %d: %v", c.seq, err)
		}
		// ((13-1)/seq)*seq + 1 tokens from the front of the stream.
		if len(got) != c.want || !slices.Equal(got, stream[:c.want]) {
			t.Errorf("seq %d: got %d tokens %v, want the first %d", c.seq, len(got), got, c.want)
		}
		if (len(got)-1)%c.seq != 0 {
			t.Errorf("seq %d: %d tokens is not k*seq+1", c.seq, len(got))
		}
	}
	if _, err := LoadValidation(files, 13); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("seq 13 over 13 tokens: %v", err)
	}
	if _, err := LoadValidation(nil, 4); err == nil {
		t.Error("no files accepted")
	}
	if _, err := LoadValidation(files, 0); err == nil {
		t.Error("seq 0 accepted")
	}
	one, _ := writeShards(t, dir, "one", 1)
	if _, err := LoadValidation(one, 1); err == nil {
		t.Error("a single token accepted")
	}
}
