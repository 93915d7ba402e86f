package eval

import (
	"context"
	"math"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

func TestPlanWindowsByHand(t *testing.T) {
	for _, tc := range []struct {
		total, seq, stride int
		want               []window
	}{
		{8, 4, 0, []window{{0, 0}, {4, 0}}},                  // plain: non-overlapping
		{8, 4, 4, []window{{0, 0}, {4, 0}}},                  // stride = seq is plain
		{10, 4, 2, []window{{0, 0}, {2, 2}, {4, 2}, {6, 2}}}, // 4 + 3*2 targets
		{10, 4, 3, []window{{0, 0}, {3, 1}, {6, 1}}},         // 4 + 3 + 3
		{11, 4, 4, []window{{0, 0}, {4, 0}, {7, 1}}},         // the tail: 3 new targets, full window
		{5, 4, 1, []window{{0, 0}, {1, 3}}},                  // one extra target
		{4, 4, 1, []window{{0, 0}}},                          // exactly one window
		{12, 4, 3, []window{{0, 0}, {3, 1}, {6, 1}, {8, 2}}}, // last one scores only 2
		{9, 3, 1, []window{{0, 0}, {1, 2}, {2, 2}, {3, 2}, {4, 2}, {5, 2}, {6, 2}}},
	} {
		got, err := planWindows(tc.total, tc.seq, tc.stride)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("total %d seq %d stride %d: windows %v, want %v", tc.total, tc.seq, tc.stride, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("total %d seq %d stride %d: windows %v, want %v", tc.total, tc.seq, tc.stride, got, tc.want)
			}
		}
	}
	for _, bad := range [][3]int{{3, 4, 4}, {10, 0, 0}, {10, 4, 5}, {10, 4, -1}} {
		if _, err := planWindows(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("planWindows%v succeeded", bad)
		}
	}
}

// Every target is scored exactly once, with at least seq-stride tokens of
// context after the first window, and no window runs past the stream or only
// re-scores its end.
func TestPlanWindowsCoverage(t *testing.T) {
	for total := 1; total <= 70; total++ {
		for seq := 1; seq <= 9; seq++ {
			for stride := 1; stride <= seq; stride++ {
				ws, err := planWindows(total, seq, stride)
				if total < seq {
					if err == nil {
						t.Fatalf("total %d < seq %d accepted", total, seq)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				count := make([]int, total)
				for i, w := range ws {
					if w.start < 0 || w.start+seq > total || w.from < 0 || w.from >= seq {
						t.Fatalf("total %d seq %d stride %d: bad window %+v", total, seq, stride, w)
					}
					if i > 0 && (w.start+seq-stride >= total || w.from < seq-stride) {
						t.Fatalf("total %d seq %d stride %d: window %+v scores with too little context or past the end", total, seq, stride, w)
					}
					for p := w.start + w.from; p < w.start+seq; p++ {
						count[p]++
					}
				}
				for p, c := range count {
					if c != 1 {
						t.Fatalf("total %d seq %d stride %d: target %d scored %d times", total, seq, stride, p, c)
					}
				}
			}
		}
	}
}

func TestBitsPerByteByHand(t *testing.T) {
	// 4 tokens, total 4*ln2 nats = 4 bits over 2 bytes: 2 bits per byte;
	// val_loss = ln 2.
	loss, bpb := BitsPerByte(4*math.Ln2, 4, 2)
	if math.Abs(loss-math.Ln2) > 1e-15 || math.Abs(bpb-2) > 1e-15 {
		t.Fatalf("loss %v bpb %v, want ln2 and 2", loss, bpb)
	}
	// The baseline's published numbers: val_loss 2.07269931 at 1.22436570 bpb
	// means 2.07269931/ln2/1.22436570 = 2.4423 bytes per token.
	loss, bpb = BitsPerByte(2.07269931*1000, 1000, 2442)
	if math.Abs(bpb-2.07269931/math.Ln2*1000/2442) > 1e-12 || loss != 2.07269931 {
		t.Fatalf("bpb %v", bpb)
	}
}

// byteRule is a hand-made byte table: 1 + tok%3 bytes, minus one after
// token 0 (a stand-in for the "no space after a boundary" rule).
type byteRule struct{}

func (byteRule) TokenBytes(prev, tok int) int {
	n := 1 + tok%3
	if prev == 0 {
		n--
	}
	return n
}

// A fake model whose per-token loss is a known function lets the host sums
// be checked exactly: loss = target/8 + position/64 (position in window).
func fakeLoss(_ *mlctx.Context, inputs, targets *Node) *Node {
	g := inputs.Graph()
	pos := ConvertDType(Iota(g, targets.Shape(), 1), dtypes.Float32)
	return Add(MulScalar(ConvertDType(targets, dtypes.Float32), 1.0/8), MulScalar(pos, 1.0/64))
}

func TestEvaluatorSumsExactly(t *testing.T) {
	tokens := stream(1+4*10+3, 16, 2, 9, 21) // 43 targets: not a multiple of seq
	const seq = 10
	for _, stride := range []int{10, 4, 1} {
		for _, rows := range []int{1, 3, 64} {
			ev := NewFromLoss(backend(t), mlctx.New(), 16, fakeLoss)
			res, err := ev.Evaluate(context.Background(), tokens, TableBytes(byteRule{}), Options{SeqLen: seq, Stride: stride, BatchTokens: rows * seq})
			ev.Close()
			if err != nil {
				t.Fatal(err)
			}
			ws, _ := planWindows(len(tokens)-1, seq, stride)
			var lossSum float64
			var nBytes int64
			for _, w := range ws {
				for i := w.from; i < seq; i++ {
					p := w.start + i // target index; token p+1 given token p
					lossSum += float64(tokens[p+1])/8 + float64(i)/64
					nBytes += int64(byteRule{}.TokenBytes(int(tokens[p]), int(tokens[p+1])))
				}
			}
			wantLoss := lossSum / 43
			if res.Tokens != 43 || res.Bytes != nBytes || res.Windows != len(ws) {
				t.Fatalf("stride %d rows %d: %d tokens %d bytes %d windows, want 43, %d, %d", stride, rows, res.Tokens, res.Bytes, res.Windows, nBytes, len(ws))
			}
			if math.Abs(res.ValLoss-wantLoss) > 1e-9 || math.Abs(res.ValBPB-lossSum/math.Ln2/float64(nBytes)) > 1e-9 {
				t.Fatalf("stride %d rows %d: loss %v bpb %v, want %v %v", stride, rows, res.ValLoss, res.ValBPB, wantLoss, lossSum/math.Ln2/float64(nBytes))
			}
		}
	}
}

// An evaluator of a loss function refuses what needs the model.
func TestLossEvaluatorRefusesModelModes(t *testing.T) {
	ev := NewFromLoss(backend(t), mlctx.New(), 16, fakeLoss)
	defer ev.Close()
	tokens := stream(41, 16, 2, 9, 3)
	for _, o := range []Options{{SeqLen: 10, DocIsolated: true}, {SeqLen: 10, Tilt: &Tilt{Order: 2, Threshold: 0.5, Boost: 1}}} {
		if _, err := ev.Evaluate(context.Background(), tokens, TableBytes(byteRule{}), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := ev.Weights(); err == nil {
		t.Error("Weights of a loss evaluator")
	}
}
