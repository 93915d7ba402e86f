package quant

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
)

// refArray is one array of testdata/record_reference.bin (written by
// testdata/gen_record_reference.py from the record's own functions).
type refArray struct {
	dtype byte
	shape []int
	data  []byte
}

func (a refArray) f32() []float32 {
	out := make([]float32, len(a.data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.data[4*i:]))
	}
	return out
}

func (a refArray) i8() []int8 {
	out := make([]int8, len(a.data))
	for i, b := range a.data {
		out[i] = int8(b)
	}
	return out
}

// f16 reads fp16 values (stored as u16) as float32.
func (a refArray) f16() []float32 {
	out := make([]float32, len(a.data)/2)
	for i := range out {
		out[i] = Float16(binary.LittleEndian.Uint16(a.data[2*i:])).Float32()
	}
	return out
}

func (a refArray) ints() []int {
	var out []int
	switch a.dtype {
	case 3:
		for i := 0; i < len(a.data); i += 2 {
			out = append(out, int(binary.LittleEndian.Uint16(a.data[i:])))
		}
	case 6:
		for i := 0; i < len(a.data); i += 8 {
			out = append(out, int(int64(binary.LittleEndian.Uint64(a.data[i:]))))
		}
	}
	return out
}

func readRecordReference(t *testing.T) map[string]refArray {
	t.Helper()
	raw, err := os.ReadFile("testdata/record_reference.bin")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	size := map[byte]int{1: 4, 2: 1, 3: 2, 4: 1, 5: 2, 6: 8}
	out := map[string]refArray{}
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint16(b))
		name := string(b[2 : 2+n])
		b = b[2+n:]
		a := refArray{dtype: b[0]}
		rank := int(b[1])
		b = b[2:]
		count := 1
		for range rank {
			d := int(binary.LittleEndian.Uint32(b))
			a.shape = append(a.shape, d)
			count *= d
			b = b[4:]
		}
		nb := count * size[a.dtype]
		a.data, b = b[:nb], b[nb:]
		out[name] = a
	}
	return out
}

// lcgWeights and lcgHessian rebuild the generator's inputs bit for bit
// (weights and hessian in gen_record_reference.py).
func lcgWeights(seed uint64, rows, cols int, heavy bool) []float32 {
	g := &lcg{state: seed}
	col := make([]float64, cols)
	for c := range col {
		col[c] = 0.5 + g.uniform()
	}
	out := make([]float32, 0, rows*cols)
	for range rows {
		u := g.uniform()
		row := 0.01 * (0.25 + 2.0*u*u)
		for c := range cols {
			var v float64
			if heavy {
				a := g.uniform() - 0.5
				v = a / (g.uniform() + 0.05) * 0.1 * row * col[c]
			} else {
				v = (g.uniform() + g.uniform() + g.uniform() + g.uniform() - 2.0) * row * col[c]
			}
			out = append(out, float32(v))
		}
	}
	return out
}

func lcgHessian(seed uint64, n, cols int, dead []int) *Hessian {
	g := &lcg{state: seed}
	gain := make([]int, cols)
	for c := range gain {
		gain[c] = 1 + int(g.uniform()*4)
	}
	x := make([]float32, n*cols)
	for i := range n {
		shared := int(g.uniform()*9) - 4
		for c := range cols {
			x[i*cols+c] = float32((int(g.uniform()*15)-7)*gain[c] + shared)
		}
	}
	for i := range n {
		for _, j := range dead {
			x[i*cols+j] = 0
		}
	}
	h := NewHessian(cols)
	if err := h.Add(x); err != nil {
		panic(err)
	}
	return h
}

// symbolAgreement compares GPTQ symbols with the record's, which runs in
// float32 while golf's GPTQ runs in float64: the error feedback drifts by
// float32 rounding, so a symbol near a rounding boundary can go the other
// way, and the difference then propagates along its row. It returns the
// fraction of differing symbols and the largest difference.
func symbolAgreement(a, b []int8) (frac float64, maxDiff int) {
	n := 0
	for i := range a {
		if d := int(a[i]) - int(b[i]); d != 0 {
			n++
			maxDiff = max(maxDiff, d, -d)
		}
	}
	return float64(n) / float64(len(a)), maxDiff
}

// GPTQ against the record's gptq_quantize_weight: the per-row fp16 scales
// must be identical (they are a closed form of the row's std); the symbols
// agree except for float32-versus-float64 drift (at most 2 % of them; one
// differing decision changes the error fed to the rest of its row, so a few
// differ by more than one step), and the Hessian-weighted error of golf's
// result must be within 0.5 % of the record's.
func TestGPTQMatchesRecord(t *testing.T) {
	ref := readRecordReference(t)
	for _, name := range []string{"gptq_attn", "gptq_dead", "gptq_mlp"} {
		p := ref[name+"/params"].ints()
		rows, cols, wseed, hseed, n, heavy, qmax := p[0], p[1], uint64(p[2]), uint64(p[3]), p[4], p[5] == 1, p[6]
		dead := ref[name+"/dead"].ints()
		k := float64(ref[name+"/clip"].f32()[0])
		w := lcgWeights(wseed, rows, cols, heavy)
		h := lcgHessian(hseed, n, cols, dead)
		bits := map[int]int{31: 6, 63: 7}[qmax]
		r := Rule{Format: FormatInt, Bits: bits, Clip: Clip{Method: ClipStd, Value: k}, GPTQ: true}
		s := Scheme{Name: "t", Small: fp16Rule(), Control: fp16Rule(), Matrix: r, Embedding: r, Other: r, GPTQ: DefaultGPTQ()}
		q, err := Quantize(context.Background(), model.Weights{{Name: "m", Shape: []int{rows, cols}, Class: model.Attention, Data: w}},
			s, Options{Hessians: map[string]*Hessian{"m": h}})
		if err != nil {
			t.Fatal(err)
		}
		got := q.Tensors[0]
		wantS, wantQ := ref[name+"/s"].f16(), ref[name+"/q"].i8()
		if !slices.Equal(got.Scales, wantS) {
			for i := range wantS {
				if got.Scales[i] != wantS[i] {
					t.Fatalf("%s: row %d scale %v, record %v", name, i, got.Scales[i], wantS[i])
				}
			}
		}
		frac, maxDiff := symbolAgreement(got.Symbols, wantQ)
		deqRef := make([]float32, len(wantQ))
		for i, v := range wantQ {
			deqRef[i] = float32(v) * wantS[i/cols]
		}
		for _, j := range dead {
			for r := range rows {
				if got.Symbols[r*cols+j] != 0 || wantQ[r*cols+j] != 0 {
					t.Fatalf("%s: dead column %d row %d: symbols %d / record %d, want 0", name, j, r, got.Symbols[r*cols+j], wantQ[r*cols+j])
				}
			}
		}
		eGot := WeightedError(w, got.Dequantize().Data, rows, cols, h)
		eRef := WeightedError(w, deqRef, rows, cols, h)
		t.Logf("%s: %d x %d int%d k=%g: %.3f %% of symbols differ (max %d), weighted error golf/record %.5f",
			name, rows, cols, bits, k, 100*frac, maxDiff, eGot/eRef)
		if frac > 0.02 || eGot > 1.005*eRef {
			t.Errorf("%s: %.3f %% symbols differ (max %d), weighted error ratio %.5f", name, 100*frac, maxDiff, eGot/eRef)
		}
	}
}

// LQER's asymmetric packing of given factors is exact: same codes, same
// fp16 scales as the record's _lqer_pack_asym.
func TestLQERPackMatchesRecord(t *testing.T) {
	ref := readRecordReference(t)
	for _, g := range []int{32, 64} {
		c := fmt.Sprintf("lqer_g%d", g)
		a, b := ref[c+"/a"], ref[c+"/b"]
		rows, rank, cols := a.shape[0], a.shape[1], b.shape[1]
		f, err := PackLQERAsym(a.f32(), b.f32(), rows, rank, cols, g)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.QA, ref[c+"/qa"].i8()) || !slices.Equal(f.SA, ref[c+"/sa"].f16()) {
			t.Errorf("%s: A codes or scale differ (scale %v, record %v)", c, f.SA, ref[c+"/sa"].f16())
		}
		if !slices.Equal(f.QB, ref[c+"/qb"].i8()) || !slices.Equal(f.SB, ref[c+"/sb"].f16()) {
			t.Errorf("%s: B codes or scales differ", c)
		}
		if err := f.validate(rows, cols); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
}

// The whole mixed quantizer against gptq_mixed_quantize on a small state
// dict under the record scheme: the same tensors are passed through as fp16
// (bit for bit), quantized at the same widths with the same scales, and
// the same three get LQER; the corrections' factors come from an SVD (the
// record's in float32, golf's in float64, signs free), so they are compared
// by effect: each correction must remove as much of the error as the
// record's, within 3 %.
func TestRecordSchemeMatchesRecord(t *testing.T) {
	ref := readRecordReference(t)
	// The record's names, golf's classes.
	names := []string{"blocks.0.attn.c_q.weight", "blocks.0.attn.proj.weight", "blocks.0.mlp.fc.weight",
		"blocks.0.mlp.proj.weight", "tok_emb.weight", "blocks.0.attn_scale", "blocks.0.resid_mix"}
	classes := []model.Class{model.Attention, model.Attention, model.MLP, model.MLP, model.Embedding, model.Control, model.Control}
	var w model.Weights
	hs := map[string]*Hessian{}
	for i, n := range names {
		sp := ref["mixed/spec/"+n].ints()
		rows, cols := sp[0], sp[1]
		shape := []int{rows, cols}
		if n == "blocks.0.attn_scale" {
			shape = []int{cols}
		}
		w = append(w, model.Tensor{Name: n, Shape: shape, Class: classes[i], Data: lcgWeights(uint64(sp[2]), rows, cols, sp[5] == 1)})
		if rows*cols > 65536 {
			hs[n] = lcgHessian(uint64(sp[3]), sp[4], cols, nil)
		}
	}
	s, err := SchemeByName("record")
	if err != nil {
		t.Fatal(err)
	}
	q, err := Quantize(context.Background(), w, s, Options{Hessians: hs})
	if err != nil {
		t.Fatal(err)
	}
	wantLQER := strings.Split(string(ref["mixed/lqer_names"].data), "\n")
	for i, n := range names {
		x := &q.Tensors[i]
		if out, ok := ref["mixed/out/"+n]; ok { // passthrough
			if x.Format != FormatFP16 || !slices.Equal(x.Values, out.f16()) {
				t.Errorf("%s: format %v, want the record's fp16 passthrough bit for bit", n, x.Format)
			}
			continue
		}
		wantQ, wantS := ref["mixed/out/"+n+".q"].i8(), ref["mixed/out/"+n+".scale"].f16()
		wantBits := 6
		if classes[i] == model.Embedding {
			wantBits = 7
		}
		if x.Format != FormatInt || x.Bits != wantBits || !slices.Equal(x.Scales, wantS) {
			t.Errorf("%s: int%d, scales equal %v; the record: int%d", n, x.Bits, slices.Equal(x.Scales, wantS), wantBits)
			continue
		}
		frac, maxDiff := symbolAgreement(x.Symbols, wantQ)
		rows, cols := x.Shape[0], x.Shape[1]
		recDeq := make([]float32, rows*cols)
		for j, v := range wantQ {
			recDeq[j] = float32(v) * wantS[j/cols]
		}
		plain := *x
		plain.LQER = nil
		ratio := WeightedError(w[i].Data, plain.Dequantize().Data, rows, cols, hs[n]) / WeightedError(w[i].Data, recDeq, rows, cols, hs[n])
		t.Logf("%s: %.3f %% of symbols differ (max %d), weighted error golf/record %.5f", n, 100*frac, maxDiff, ratio)
		if frac > 0.02 || ratio > 1.005 {
			t.Errorf("%s: %.3f %% of symbols differ (max %d), weighted error ratio %.5f", n, 100*frac, maxDiff, ratio)
		}
		if (x.LQER != nil) != slices.Contains(wantLQER, n) {
			t.Errorf("%s: LQER %v, the record corrects %v", n, x.LQER != nil, wantLQER)
			continue
		}
		if x.LQER == nil {
			continue
		}
		// Compare the error left after each correction.
		qa, sa := ref["mixed/out/"+n+".lqA_a"].i8(), ref["mixed/out/"+n+".lqAs_a"].f16()
		qb, sb := ref["mixed/out/"+n+".lqB_a"].i8(), ref["mixed/out/"+n+".lqBs_a"].f16()
		recF := &LQERFactors{Rank: 4, ABits: 2, BBits: 4, AGroup: len(qa), BGroup: len(qb) / len(sb), QA: qa, SA: sa, QB: qb, SB: sb}
		if err := recF.validate(rows, cols); err != nil {
			t.Fatalf("%s: the record's factors: %v", n, err)
		}
		if x.LQER.AGroup != recF.AGroup || x.LQER.BGroup != recF.BGroup || x.LQER.ABits != 2 || x.LQER.BBits != 4 {
			t.Errorf("%s: LQER form %+v, the record's groups %d/%d", n, x.LQER, recF.AGroup, recF.BGroup)
		}
		before := sqErr(w[i].Data, recDeq)
		recF.apply(recDeq, rows, cols)
		after := sqErr(w[i].Data, recDeq)
		gotDeq := x.Dequantize().Data
		gotBefore, gotAfter := sqErr(w[i].Data, plain.Dequantize().Data), sqErr(w[i].Data, gotDeq)
		t.Logf("%s: squared error without/with LQER: record %.4g/%.4g (%.2f %% removed), golf %.4g/%.4g (%.2f %% removed)",
			n, before, after, 100*(1-after/before), gotBefore, gotAfter, 100*(1-gotAfter/gotBefore))
		if removed, recRemoved := 1-gotAfter/gotBefore, 1-after/before; removed < 0.97*recRemoved {
			t.Errorf("%s: LQER removes %.3f of the error, the record %.3f", n, removed, recRemoved)
		}
	}
}

func sqErr(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

// The greedy row order and the byte shuffle are integer algorithms: exact.
func TestRowOrderAndShuffleMatchRecord(t *testing.T) {
	ref := readRecordReference(t)
	for _, c := range []string{"sort_ties", "sort_one", "sort_two", "sort_int6", "sort_full"} {
		m := ref[c+"/m"]
		got := SimilarityOrder(m.i8(), m.shape[0], m.shape[1])
		if want := ref[c+"/perm"].ints(); !slices.Equal(got, want) {
			t.Errorf("%s: order %v, record %v", c, got, want)
		}
	}
	for _, c := range []string{"shuffle_odd", "shuffle_s4", "shuffle_short"} {
		in, out := ref[c+"/in"].data, ref[c+"/out"].data
		stride := ref[c+"/stride"].ints()[0]
		got := ByteShuffle(in, stride)
		want := out
		if bytes.HasPrefix(out, []byte("BSHF")) {
			want = out[5:] // the record's prefix: "BSHF" + stride
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: shuffled bytes differ from the record's", c)
		}
		if back := ByteUnshuffle(got, stride); !bytes.Equal(back, in) {
			t.Errorf("%s: unshuffle does not invert", c)
		}
	}
}
