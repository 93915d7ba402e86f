package eval

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/model"
)

// referenceLosses runs model.TokenLosses on one row of inputs (with
// optional segment ids) and returns the per-position losses.
func referenceLosses(t *testing.T, cfg model.Config, w model.Weights, inputs, targets []uint16, segs []int32) []float64 {
	t.Helper()
	ctx := mlctx.New()
	if err := model.LoadWeights(ctx, cfg, w); err != nil {
		t.Fatal(err)
	}
	toI32 := func(x []uint16) []int32 {
		out := make([]int32, len(x))
		for i, v := range x {
			out[i] = int32(v)
		}
		return out
	}
	n := len(inputs)
	args := []any{tensors.FromFlatDataAndDimensions(toI32(inputs), 1, n), tensors.FromFlatDataAndDimensions(toI32(targets), 1, n)}
	var fn any = func(ctx *mlctx.Context, x, y *graph.Node) *graph.Node {
		return model.TokenLosses(ctx, cfg, x, y, model.Options{})
	}
	if segs != nil {
		args = append(args, tensors.FromFlatDataAndDimensions(segs, 1, n))
		fn = func(ctx *mlctx.Context, x, y, s *graph.Node) *graph.Node {
			return model.TokenLosses(ctx, cfg, x, y, model.Options{Segments: s})
		}
	}
	exec, err := mlctx.NewExecAny(backend(t), ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tensors.CopyFlatData[float32](out[0])
	if err != nil {
		t.Fatal(err)
	}
	return float64s(v)
}

// The plain pass scores non-overlapping windows exactly as model.TokenLosses
// does window by window (same values, bit for bit), sums in float64, and a
// second call on other weights reuses the compiled graph.
func TestEvaluatePlainMatchesModel(t *testing.T) {
	cfg := microConfig()
	tokens := stream(4*16+1, cfg.VocabSize, 5, 30, 1)
	w := randomWeights(t, cfg, 2)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	opts := Options{SeqLen: 16, BatchTokens: 32}
	res, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	var nb int64
	for s := 0; s+16 < len(tokens); s += 16 {
		ref := referenceLosses(t, cfg, w, tokens[s:s+16], tokens[s+1:s+17], nil)
		for i, l := range ref {
			pos := s + i + 1
			if res.Nats()[pos] != l {
				t.Fatalf("position %d: loss %v, model.TokenLosses %v", pos, res.Nats()[pos], l)
			}
			sum += l
			nb += int64(unitBytes{}.TokenBytes(int(tokens[pos-1]), int(tokens[pos])))
		}
	}
	wantLoss, wantBPB := BitsPerByte(sum, int64(len(tokens)-1), nb)
	if res.ValLoss != wantLoss || res.ValBPB != wantBPB || res.Bytes != nb || res.Tokens != int64(len(tokens)-1) || res.Windows != 4 {
		t.Fatalf("result %+v, want loss %v bpb %v bytes %d", res, wantLoss, wantBPB, nb)
	}
	// Other weights through the same evaluator: the same graphs, new values.
	w2 := randomWeights(t, cfg, 3)
	if err := e.SetWeights(w2); err != nil {
		t.Fatal(err)
	}
	res2, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.execs) != 1 {
		t.Errorf("%d scoring graphs after two evaluations of one kind, want 1", len(e.execs))
	}
	ref := referenceLosses(t, cfg, w2, tokens[:16], tokens[1:17], nil)
	if res2.Nats()[1] != ref[0] || res2.ValLoss == res.ValLoss {
		t.Errorf("after SetWeights: loss at 1 %v (model %v), val_loss %v (before %v)", res2.Nats()[1], ref[0], res2.ValLoss, res.ValLoss)
	}
}

// Sliding windows: a target in a later window is scored with the window
// that ends stride targets after the previous one.
func TestEvaluateSliding(t *testing.T) {
	cfg := microConfig()
	tokens := stream(3*16+1, cfg.VocabSize, 5, 30, 4)
	w := randomWeights(t, cfg, 5)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, Stride: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Window 2 starts at 8 and scores targets 17..24 ... check target 22:
	// planWindows puts it in the window starting at 8 (scoring 21..24).
	ref := referenceLosses(t, cfg, w, tokens[8:24], tokens[9:25], nil)
	if got := res.Nats()[22]; got != ref[13] {
		t.Fatalf("target 22: %v, want %v (window 8..23)", got, ref[13])
	}
	if res.Windows != 1+(48-16)/4 {
		t.Errorf("windows %d, want %d", res.Windows, 1+(48-16)/4)
	}
}

// Document isolation: a target's loss is its document's alone, so it
// equals the loss of the document evaluated on its own (up to RoPE's
// absolute-angle rounding), and differs from the cross-document pass.
func TestEvaluateDocIsolated(t *testing.T) {
	cfg := microConfig()
	// Two documents in the first window: BOS at 0 and at 6.
	tokens := []uint16{1, 5, 9, 13, 7, 22, 1, 30, 11, 4, 17, 8, 40, 3, 19, 25, 6}
	w := randomWeights(t, cfg, 6)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	iso, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, DocIsolated: true})
	if err != nil {
		t.Fatal(err)
	}
	cross, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	alone := referenceLosses(t, cfg, w, tokens[6:16], tokens[7:17], nil)
	for i, l := range alone {
		pos := 7 + i
		if math.Abs(iso.Nats()[pos]-l) > 2e-5 {
			t.Errorf("position %d: isolated %v, document alone %v", pos, iso.Nats()[pos], l)
		}
	}
	if math.Abs(cross.Nats()[10]-alone[3]) < 1e-4 {
		t.Errorf("cross-document loss %v equals the isolated one %v: the first document is not seen", cross.Nats()[10], alone[3])
	}
	for p := 1; p <= 6; p++ { // the first document's targets (BOS at 6 is its last) see no other document
		if iso.Nats()[p] != cross.Nats()[p] {
			t.Errorf("position %d: isolated %v, cross %v; the first document has nothing before it", p, iso.Nats()[p], cross.Nats()[p])
		}
	}
}

// The token-losses file has one line per target in stream order, and its
// columns reproduce val_loss and val_bpb exactly.
func TestTokenLossesReproduceTotals(t *testing.T) {
	cfg := microConfig()
	tokens := stream(2*16+1, cfg.VocabSize, 3, 12, 7)
	e := newEval(t, cfg, 8)
	res, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, Stride: 8, DocIsolated: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.WriteTokenLosses(&buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Scan()
	if sc.Text() != TokenLossesHeader {
		t.Fatalf("header %q", sc.Text())
	}
	var sum float64
	var nb, n int64
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		pos, _ := strconv.Atoi(f[0])
		tok, _ := strconv.Atoi(f[1])
		nats, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := strconv.Atoi(f[3])
		n++
		if pos != int(n) || tok != int(tokens[pos]) {
			t.Fatalf("line %d: pos %d target %d, want pos %d target %d", n, pos, tok, n, tokens[n])
		}
		sum += nats
		nb += int64(b)
	}
	loss, bpb := BitsPerByte(sum, n, nb)
	if n != res.Tokens || nb != res.Bytes || loss != res.ValLoss || bpb != res.ValBPB {
		t.Fatalf("file totals: %d targets, %d bytes, loss %v, bpb %v; result %d, %d, %v, %v", n, nb, loss, bpb, res.Tokens, res.Bytes, res.ValLoss, res.ValBPB)
	}
}
