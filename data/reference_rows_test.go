package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// referenceRows is testdata/loader_rows.json, written by gen_loader_rows.py
// from the challenge's own DistributedTokenLoader.
type referenceRows struct {
	ReferenceSHA256 string `json:"reference_sha256"`
	Shards          string `json:"shards"`
	Cases           []struct {
		GlobalTokens   int      `json:"global_tokens"`
		SeqLen         int      `json:"seq_len"`
		WorldSize      int      `json:"world_size"`
		Rank           int      `json:"rank"`
		GradAccumSteps int      `json:"grad_accum_steps"`
		XSHA256        []string `json:"x_sha256"`
		YSHA256        []string `json:"y_sha256"`
		XHead          []int32  `json:"x_head"`
		YHead          []int32  `json:"y_head"`
	} `json:"cases"`
}

// rowsDigest is gen_loader_rows.py's digest: the first 16 hex digits of the
// SHA-256 of the int32 little-endian tokens.
func rowsDigest(v []int32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:16]
}

// Every rank's rows of every step, for world sizes 1, 2, 4 and 8, equal
// what the reference's loader gives (the stream wraps around within the
// tiny preset's case).
func TestNextStepEqualsReferenceLoader(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "loader_rows.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref referenceRows
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no cases in loader_rows.json")
	}
	files, err := TrainFiles(filepath.Join("testdata", ref.Shards))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ref.Cases {
		if accum, err := ReferenceAccumSteps(c.WorldSize); err != nil || accum != c.GradAccumSteps {
			t.Fatalf("ReferenceAccumSteps(%d) = %d, %v; the reference has %d", c.WorldSize, accum, err, c.GradAccumSteps)
		}
		l, err := NewLoader(files, c.Rank, c.WorldSize)
		if err != nil {
			t.Fatal(err)
		}
		for step := range c.XSHA256 {
			in, tg, err := l.NextStep(c.GlobalTokens, c.SeqLen)
			if err != nil {
				t.Fatal(err)
			}
			if step == 0 && (!slices.Equal(in[:len(c.XHead)], c.XHead) || !slices.Equal(tg[:len(c.YHead)], c.YHead)) {
				t.Fatalf("batch %d/%d, world %d rank %d, step 0: first tokens %v -> %v, reference %v -> %v",
					c.GlobalTokens, c.SeqLen, c.WorldSize, c.Rank, in[:len(c.XHead)], tg[:len(c.YHead)], c.XHead, c.YHead)
			}
			if rowsDigest(in) != c.XSHA256[step] || rowsDigest(tg) != c.YSHA256[step] {
				t.Fatalf("batch %d/%d, world %d rank %d, step %d: rows differ from the reference loader's",
					c.GlobalTokens, c.SeqLen, c.WorldSize, c.Rank, step)
			}
		}
		l.Close()
	}
}

// SpanOffsets says where NextStep's spans start: rank r's k-th span is the
// step's span k*world + r, each globalTokens/8 + 1 tokens long.
func TestSpanOffsets(t *testing.T) {
	got, err := SpanOffsets(2048, 256, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 257, 514, 771, 1028, 1285, 1542, 1799}; !slices.Equal(got, want) {
		t.Fatalf("world 1: %v, want %v", got, want)
	}
	if got, _ := SpanOffsets(2048, 256, 2, 1); !slices.Equal(got, []int64{257, 771, 1285, 1799}) {
		t.Fatalf("world 2 rank 1: %v", got)
	}
	if got, _ := SpanOffsets(2048, 256, 8, 3); !slices.Equal(got, []int64{771}) {
		t.Fatalf("world 8 rank 3: %v", got)
	}
	// NextStep reads exactly those spans from a stream of positions.
	files, stream := writeShards(t, t.TempDir(), "fineweb_train", 3000)
	for _, world := range []int{1, 2, 4, 8} {
		for rank := range world {
			offs, err := SpanOffsets(64, 4, world, rank)
			if err != nil {
				t.Fatal(err)
			}
			l, err := NewLoader(files, rank, world)
			if err != nil {
				t.Fatal(err)
			}
			for step := range 3 {
				in, tg, err := l.NextStep(64, 4)
				if err != nil {
					t.Fatal(err)
				}
				var wantIn, wantTg []int32
				for _, o := range offs {
					start := int(o) + step*(64+8)
					wantIn = append(wantIn, toInt32(stream[start:start+8])...)
					wantTg = append(wantTg, toInt32(stream[start+1:start+9])...)
				}
				if !slices.Equal(in, wantIn) || !slices.Equal(tg, wantTg) {
					t.Fatalf("world %d rank %d step %d: %v -> %v, want %v -> %v", world, rank, step, in, tg, wantIn, wantTg)
				}
			}
			l.Close()
		}
	}
}

// Layouts the reference cannot read are errors naming the fault.
func TestStepShapeErrors(t *testing.T) {
	for _, c := range []struct{ global, seq, world int }{
		{2048, 256, 3},  // 3 does not divide 8
		{1024, 256, 1},  // 128-token spans are not whole rows of 256
		{2050, 256, 1},  // not a multiple of 8 spans
		{2048, 0, 1},    // no sequence length
		{0, 256, 1},     // no batch
		{2048, 256, 16}, // more ranks than spans
	} {
		if _, _, err := StepShape(c.global, c.seq, c.world); err == nil {
			t.Errorf("StepShape(%d, %d, %d): no error", c.global, c.seq, c.world)
		}
	}
	span, rows, err := StepShape(524288, 1024, 8)
	if err != nil || span != 65536 || rows != 64 {
		t.Fatalf("baseline on 8 ranks: span %d rows %d (%v), want 65536 and 64", span, rows, err)
	}
}
