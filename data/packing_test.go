package data

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// packingRows is testdata/packing_rows.json, written by gen_packing_rows.py
// from the record's own DocumentPackingLoader.
type packingRows struct {
	Shards string `json:"shards"`
	Cases  []struct {
		GlobalTokens int       `json:"global_tokens"`
		MaxDocLen    int       `json:"max_doc_len"`
		WorldSize    int       `json:"world_size"`
		Rank         int       `json:"rank"`
		XSHA256      []string  `json:"x_sha256"`
		YSHA256      []string  `json:"y_sha256"`
		Boundaries   [][][]int `json:"boundaries"` // step, span, segment starts + span length
		XHead        []int32   `json:"x_head"`
	} `json:"cases"`
}

// boundaries turns one span's segment ids into the record's cu_seqlens
// (segment starts, then the span's length).
func boundaries(ids []int32) []int {
	var out []int
	for p := range ids {
		if p == 0 || ids[p] != ids[p-1] {
			out = append(out, p)
		}
	}
	return append(out, len(ids))
}

// Every rank's tokens and document segments of every step equal the
// record's loader's, for several world sizes, document caps and spans that
// skip shard tails and wrap around the shards.
func TestPackingLoaderEqualsRecord(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "packing_rows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref packingRows
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.Cases) == 0 {
		t.Fatalf("packing_rows.json: %v", err)
	}
	files, err := TrainFiles(filepath.Join("testdata", ref.Shards))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		l, err := NewPackingLoader(files, c.Rank, c.WorldSize, 1)
		if err != nil {
			t.Fatal(err)
		}
		span := c.GlobalTokens / ReferenceSpans
		for step := range c.XSHA256 {
			// One row per span: golf's row cuts coincide with span starts,
			// so the segments must be exactly the record's.
			in, tg, seg, err := l.NextStep(c.GlobalTokens, span, c.MaxDocLen)
			if err != nil {
				t.Fatal(err)
			}
			where := func() string {
				return "batch " + itoa(c.GlobalTokens) + " cap " + itoa(c.MaxDocLen) + " world " + itoa(c.WorldSize) + " rank " + itoa(c.Rank) + " step " + itoa(step)
			}
			if step == 0 && !slices.Equal(in[:len(c.XHead)], c.XHead) {
				t.Fatalf("%s: first tokens %v, record %v", where(), in[:len(c.XHead)], c.XHead)
			}
			if rowsDigest(in) != c.XSHA256[step] || rowsDigest(tg) != c.YSHA256[step] {
				t.Fatalf("%s: tokens differ from the record's loader", where())
			}
			for k, want := range c.Boundaries[step] {
				if got := boundaries(seg[k*span : (k+1)*span]); !slices.Equal(got, want) {
					t.Fatalf("%s span %d: segments %v, record %v", where(), k, got, want)
				}
			}
		}
		// State and Restore continue the same stream.
		st := l.State()
		a, _, sa, err := l.NextStep(c.GlobalTokens, span, c.MaxDocLen)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Restore(st); err != nil {
			t.Fatal(err)
		}
		b, _, sb, _ := l.NextStep(c.GlobalTokens, span, c.MaxDocLen)
		if !slices.Equal(a, b) || !slices.Equal(sa, sb) {
			t.Fatal("Restore did not return to the same position")
		}
		l.Close()
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestSegmentIDsCutsRows(t *testing.T) {
	ids := make([]int32, 12)
	next := SegmentIDs(ids, []int{0, 5}, 3, 8, 10)
	// documents at 0 and 5; cap 3 cuts at 3 and 8; the row ends at 8.
	if want := []int32{10, 10, 10, 11, 11, 12, 12, 12, 13, 13, 13, 14}; !slices.Equal(ids, want) || next != 15 {
		t.Errorf("ids %v next %d, want %v 15", ids, next, want)
	}
}

func TestPackingLoaderErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fineweb_train_000000.bin")
	if err := WriteShard(p, []uint16{5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPackingLoader([]string{p}, 0, 1, 1); err == nil {
		t.Error("a shard without BOS accepted")
	}
	if err := WriteShard(p, []uint16{1, 6, 7, 8, 1, 9}); err != nil {
		t.Fatal(err)
	}
	l, err := NewPackingLoader([]string{p}, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := l.NextStep(64, 8, 0); err == nil {
		t.Error("a span longer than every shard did not fail")
	}
	if err := l.Restore(PackingState{File: 0, Cursor: 2, Shard: "other.bin"}); err == nil {
		t.Error("restore into another shard accepted")
	}
}
