package train

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
)

// TestRankSpans: with N ranks every rank reads its own spans of each step —
// rank r the spans r, r+N, r+2N, ... of the 8 the reference reads per step
// — so the ranks' rows are disjoint, together are exactly one device's
// rows of the same step, and every rank's loader stays at the same stream
// position (one loader state serves a resume on any number of devices).
func TestRankSpans(t *testing.T) {
	dir := t.TempDir()
	stream := toyStream(20000, 1000, 3)
	file := filepath.Join(dir, "fineweb_train_000000.bin")
	if err := data.WriteShard(file, stream); err != nil {
		t.Fatal(err)
	}
	const seq, spanRows = 16, 2
	s := Settings{BatchTokens: 8 * spanRows * seq, SeqLen: seq}
	steps := func(devices int) (perStep [][][]Batch, st string) {
		r := &runner{s: s, devices: devices, seqLen: seq}
		rank, err := r.rankSettings()
		if err != nil {
			t.Fatal(err)
		}
		if rank.BatchTokens != s.BatchTokens/devices {
			t.Fatalf("%d devices: a rank's share is %d tokens, want %d", devices, rank.BatchTokens, s.BatchTokens/devices)
		}
		r.micro, r.accum = rank.MicroBatch(spanRows * seq) // one span per micro-batch
		if err := r.openLoaders([]string{file}); err != nil {
			t.Fatal(err)
		}
		defer r.closeLoaders()
		for range 3 {
			ranks, err := r.nextStep()
			if err != nil {
				t.Fatal(err)
			}
			perStep = append(perStep, ranks)
		}
		st = loaderState(t, r.loader)
		for i, l := range r.rankLoaders {
			if got := loaderState(t, l); got != st {
				t.Errorf("%d devices: rank %d's loader is at %s, rank 0's at %s", devices, i+1, got, st)
			}
		}
		return perStep, st
	}
	one, oneState := steps(1)
	for _, n := range []int{2, 4, 8} {
		got, st := steps(n)
		if st != oneState {
			t.Errorf("%d devices end at %+v, one device at %+v", n, st, oneState)
		}
		for step := range got {
			spans := one[step][0] // one device: 8 micro-batches, one span each
			if len(got[step]) != n {
				t.Fatalf("%d devices: %d ranks of batches", n, len(got[step]))
			}
			var union [][]int32
			for r, micro := range got[step] {
				if len(micro) != 8/n {
					t.Fatalf("%d devices: rank %d has %d micro-batches, want %d", n, r, len(micro), 8/n)
				}
				for k, b := range micro {
					want := spans[k*n+r]
					if !slices.Equal(b.Inputs, want.Inputs) || !slices.Equal(b.Targets, want.Targets) {
						t.Errorf("%d devices, step %d: rank %d's span %d is not one device's span %d", n, step, r, k, k*n+r)
					}
					union = append(union, b.Inputs)
				}
			}
			if len(union) != 8 {
				t.Errorf("%d devices: the ranks read %d spans, want 8", n, len(union))
			}
		}
	}
	bad := &runner{s: s, devices: 3}
	if _, err := bad.rankSettings(); err == nil {
		t.Error("3 ranks were accepted: 8 spans do not divide among them")
	}
	bad = &runner{s: Settings{BatchTokens: s.BatchTokens, SeqLen: seq, MicroBatchTokens: 3 * seq}, devices: 2}
	if _, err := bad.rankSettings(); err == nil {
		t.Error("a micro-batch that does not divide a rank's share was accepted")
	}
}

func TestRunDevices(t *testing.T) {
	b := goBackend(t)
	if n, err := runDevices(b, 0); err != nil || n != 1 {
		t.Errorf("default on the CPU: %d, %v; want 1", n, err)
	}
	if n, err := runDevices(b, 1); err != nil || n != 1 {
		t.Errorf("--devices 1: %d, %v", n, err)
	}
	if _, err := runDevices(b, 2); err == nil {
		t.Error("2 devices on a 1-device backend were accepted")
	}
}

// loaderState is a step source's position, as the checkpoint stores it.
func loaderState(t *testing.T, l stepSource) string {
	t.Helper()
	b, err := l.state()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With document packing every rank reads the record's packing loader for
// its rank (data.PackingLoader, checked against the record's own loader in
// package data), cut into its micro-batches with their segment ids, and the
// ranks' loaders stay in lockstep.
func TestRankPackingSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fineweb_train_000000.bin")
	if err := data.WriteShard(file, toyStream(40000, 1000, 5)); err != nil {
		t.Fatal(err)
	}
	const seq, spanRows, maxDoc = 16, 2, 12
	tok := tokenizer.Default()
	s := Settings{BatchTokens: 8 * spanRows * seq, SeqLen: seq, DocumentPacking: true, MaxDocLen: maxDoc}
	for _, n := range []int{1, 2, 4} {
		r := &runner{s: s, devices: n, seqLen: seq, tok: tok}
		rank, err := r.rankSettings()
		if err != nil {
			t.Fatal(err)
		}
		r.micro, r.accum = rank.MicroBatch(spanRows * seq)
		if err := r.openLoaders([]string{file}); err != nil {
			t.Fatal(err)
		}
		want := make([]*data.PackingLoader, n)
		for i := range want {
			if want[i], err = data.NewPackingLoader([]string{file}, i, n, uint16(tok.BOS())); err != nil {
				t.Fatal(err)
			}
		}
		for step := range 3 {
			ranks, err := r.nextStep()
			if err != nil {
				t.Fatal(err)
			}
			if len(ranks) != n {
				t.Fatalf("%d devices: %d ranks of batches", n, len(ranks))
			}
			for i, micro := range ranks {
				in, tg, seg, err := want[i].NextStep(s.BatchTokens, seq, maxDoc)
				if err != nil {
					t.Fatal(err)
				}
				var gotIn, gotTg, gotSeg []int32
				for _, b := range micro {
					if b.Segments == nil {
						t.Fatalf("%d devices, step %d, rank %d: a micro-batch without segment ids", n, step, i)
					}
					gotIn, gotTg, gotSeg = append(gotIn, b.Inputs...), append(gotTg, b.Targets...), append(gotSeg, b.Segments...)
				}
				if len(micro) != r.accum || !slices.Equal(gotIn, in) || !slices.Equal(gotTg, tg) || !slices.Equal(gotSeg, seg) {
					t.Errorf("%d devices, step %d: rank %d's micro-batches are not its packing loader's step", n, step, i)
				}
			}
		}
		st := loaderState(t, r.loader)
		for i, l := range r.rankLoaders {
			if got := loaderState(t, l); got != st {
				t.Errorf("%d devices: rank %d's loader is at %s, rank 0's at %s", n, i+1, got, st)
			}
		}
		r.closeLoaders()
		for _, l := range want {
			l.Close()
		}
	}
}
