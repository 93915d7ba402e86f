package quant

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant/synthetic"
)

// recordAllQuantized is the synthetic tiny model under the record's rules
// on every matrix (GPTQ with synthetic Hessians, LQER on the top 3) plus
// AWQ-lite, so the artifact carries every optional part.
func recordAllQuantized(t testing.TB) (*Quantized, model.Weights) {
	t.Helper()
	w, err := synthetic.Weights("tiny", 4)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := HessiansFromTensors(synthetic.Hessians(w, 4))
	if err != nil {
		t.Fatal(err)
	}
	s, err := SchemeByName("record-all")
	if err != nil {
		t.Fatal(err)
	}
	awq := AWQOptions{GroupSize: 16, TopK: 3, Bits: 8}
	s.AWQ = &awq
	q, err := Quantize(context.Background(), w, s, Options{Hessians: hs})
	if err != nil {
		t.Fatal(err)
	}
	return q, w
}

// Every part of a record-style artifact — LQER factors, protected groups,
// stored row orders, per-class streams — decodes to exactly what was packed,
// under every layout and both groupings.
func TestLQERGroupsAndRowOrdersRoundTripExactly(t *testing.T) {
	q, w := recordAllQuantized(t)
	var lqer, protected int
	for i := range q.Tensors {
		if q.Tensors[i].LQER != nil {
			lqer++
		}
		if q.Tensors[i].Protected != nil {
			protected++
		}
	}
	if lqer != 3 || protected == 0 {
		t.Fatalf("%d tensors with LQER (want 3), %d with protected groups", lqer, protected)
	}
	want := q.Dequantize()
	for _, opts := range []PackOptions{
		{Codec: "cm", Layout: LayoutCols, Group: GroupClass, SortRows: true},
		{Codec: "cm", Layout: LayoutRows, Group: GroupClass},
		{Codec: "cm", Layout: LayoutRows, Group: GroupClass, MaxStreamSymbols: 20000},
		{Codec: "zstd-best", Layout: LayoutPacked, Group: GroupClass, SortRows: true},
		{Codec: AutoCodec, Candidates: []string{"fse", "zstd-best"}, Layout: LayoutRows, Group: GroupTensor, SortRows: true, AutoLayout: true},
	} {
		data, rep, err := Pack(context.Background(), tinyMeta(t), q, opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if rep.SideBytes == 0 || (opts.SortRows && rep.OrderBytes == 0) {
			t.Fatalf("%+v: side %d, orders %d bytes", opts, rep.SideBytes, rep.OrderBytes)
		}
		a, err := DecodeArtifact(data)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		for i := range q.Tensors {
			x, y := &q.Tensors[i], &a.Quantized.Tensors[i]
			if !slices.Equal(x.Symbols, y.Symbols) || !slices.Equal(x.Scales, y.Scales) || !slices.Equal(x.Values, y.Values) ||
				x.Init.String() != y.Init.String() || x.Class != y.Class {
				t.Fatalf("%+v: tensor %s differs", opts, x.Name)
			}
			if (x.LQER == nil) != (y.LQER == nil) || x.LQER != nil && (!slices.Equal(x.LQER.QA, y.LQER.QA) ||
				!slices.Equal(x.LQER.QB, y.LQER.QB) || !slices.Equal(x.LQER.SA, y.LQER.SA) || !slices.Equal(x.LQER.SB, y.LQER.SB)) {
				t.Fatalf("%+v: tensor %s: LQER factors differ", opts, x.Name)
			}
			if (x.Protected == nil) != (y.Protected == nil) || x.Protected != nil && (!slices.Equal(x.Protected.Starts, y.Protected.Starts) ||
				!slices.Equal(x.Protected.Symbols, y.Protected.Symbols) || !slices.Equal(x.Protected.Scales, y.Protected.Scales)) {
				t.Fatalf("%+v: tensor %s: protected groups differ", opts, x.Name)
			}
		}
		cfg, got, err := a.Model()
		if err != nil || cfg.Name != "tiny" {
			t.Fatalf("%+v: model %q: %v", opts, cfg.Name, err)
		}
		for i := range want {
			if !slices.Equal(want[i].Data, got[i].Data) || got[i].Class != w[i].Class || got[i].Init.String() != w[i].Init.String() {
				t.Fatalf("%+v: tensor %s dequantizes differently or lost its class/initialiser", opts, want[i].Name)
			}
		}
	}
}

// MaxStreamSymbols splits each class into runs of consecutive whole
// tensors of at most the cap (a larger tensor alone), every int tensor in
// exactly one stream, in the class's order.
func TestMaxStreamSymbolsSplitsClasses(t *testing.T) {
	q, _ := recordAllQuantized(t)
	const limit = 20000
	_, whole, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: "zstd-best", Group: GroupClass})
	if err != nil {
		t.Fatal(err)
	}
	_, split, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: "zstd-best", Group: GroupClass, MaxStreamSymbols: limit})
	if err != nil {
		t.Fatal(err)
	}
	symbolStreams := func(r *PackReport) (out [][]int) {
		for _, s := range r.Streams {
			if s.Kind == StreamSymbols {
				out = append(out, s.Tensors)
			}
		}
		return out
	}
	ws, ss := symbolStreams(whole), symbolStreams(split)
	if len(ss) <= len(ws) {
		t.Fatalf("%d streams with the cap, %d without: nothing was split", len(ss), len(ws))
	}
	// Concatenating each class's split streams gives the class's stream.
	var joined [][]int
	for _, s := range ss {
		n := 0
		for _, ti := range s {
			n += len(q.Tensors[ti].Symbols)
		}
		if n > limit && len(s) > 1 {
			t.Errorf("stream %v holds %d symbols in %d tensors, over the cap %d", s, n, len(s), limit)
		}
		c := q.Tensors[s[0]].Class
		for _, ti := range s {
			if q.Tensors[ti].Class != c {
				t.Errorf("stream %v mixes classes", s)
			}
		}
		if k := len(joined) - 1; k >= 0 && q.Tensors[joined[k][0]].Class == c {
			joined[k] = append(joined[k], s...)
		} else {
			joined = append(joined, slices.Clone(s))
		}
	}
	if !slices.EqualFunc(joined, ws, slices.Equal[[]int]) {
		t.Errorf("split streams %v do not join into the class streams %v", ss, ws)
	}
}

// LQER's correction reduces the error of the corrected matrices.
func TestLQERReducesTheError(t *testing.T) {
	q, w := recordAllQuantized(t)
	for i := range q.Tensors {
		x := &q.Tensors[i]
		if x.LQER == nil {
			continue
		}
		plain := *x
		plain.LQER = nil
		before, after := sqErr(w[i].Data, plain.Dequantize().Data), sqErr(w[i].Data, x.Dequantize().Data)
		if !(after < before) {
			t.Errorf("%s: LQER error %g, without %g", x.Name, after, before)
		}
	}
}

// The permutation code is exact and as short as log2(n!) allows.
func TestPermutationCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 1, 2, 3, 7, 256, 1000} {
		p := rng.Perm(n)
		b, err := EncodePermutation(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != PermutationBytes(n) {
			t.Fatalf("n=%d: %d bytes, PermutationBytes %d", n, len(b), PermutationBytes(n))
		}
		back, err := DecodePermutation(b, n)
		if err != nil || !slices.Equal(back, p) {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
	// log2(256!) = 1684.0 bits: 211 bytes; 512 rows 3875.9 bits, 485 bytes (the record: 1,024).
	if PermutationBytes(256) != 211 || PermutationBytes(512) != 485 || PermutationBytes(2) != 1 {
		t.Fatalf("PermutationBytes(256, 512, 2) = %d, %d, %d", PermutationBytes(256), PermutationBytes(512), PermutationBytes(2))
	}
	// The identity and the reversal are the smallest and largest codes.
	id, _ := EncodePermutation([]int{0, 1, 2, 3})
	rev, _ := EncodePermutation([]int{3, 2, 1, 0})
	if !bytes.Equal(id, []byte{0}) || !bytes.Equal(rev, []byte{23}) {
		t.Fatalf("codes of identity %v and reversal %v", id, rev)
	}
	if _, err := DecodePermutation([]byte{24}, 4); err == nil {
		t.Error("4! accepted as a permutation code of 4 rows")
	}
	if _, err := DecodePermutation([]byte{0, 0}, 4); err == nil {
		t.Error("a 2-byte code accepted for 4 rows")
	}
	if _, err := EncodePermutation([]int{0, 0, 1}); err == nil {
		t.Error("a repeated entry accepted")
	}
}

// Bad artifacts fail with an ArtifactError that says what is wrong: a
// truncated file, a corrupted stream (checksum fixed up, so the stream's
// own decoder or the value checks must catch it), a row order of the wrong
// length.
func TestBadRecordArtifactsFailClearly(t *testing.T) {
	q, _ := recordAllQuantized(t)
	data, rep, err := Pack(context.Background(), tinyMeta(t), q, PackOptions{Codec: "cm", Layout: LayoutCols, Group: GroupClass, SortRows: true})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what string, b []byte, msg string) {
		t.Helper()
		_, err := DecodeArtifact(b)
		var ae *ArtifactError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want an ArtifactError containing %q", what, err, msg)
		}
	}
	expect("truncated", data[:len(data)-100], "CRC-32C")
	expect("truncated and checksum fixed", withCRC(data[:len(data)-100]), "truncated payload")
	for _, s := range rep.Streams {
		bad := slices.Clone(data)
		bad[s.Offset+s.Size/2] ^= 0x5a
		_, err := DecodeArtifact(withCRC(bad))
		var ae *ArtifactError
		if s.Kind == StreamSymbols || s.Kind == StreamRowOrders {
			// A flipped byte in an arithmetic-coded stream decodes to other
			// symbols or fails its end marker; either must be an error here
			// (wrong symbols break the range or the row-order checks) or, if
			// it decodes, differ from what was packed.
			if err == nil {
				a, _ := DecodeArtifact(withCRC(bad))
				same := true
				for i := range q.Tensors {
					same = same && slices.Equal(q.Tensors[i].Symbols, a.Quantized.Tensors[i].Symbols)
				}
				if same {
					t.Errorf("corrupted %v stream decoded to the packed symbols", s.Kind)
				}
				continue
			}
		}
		if err != nil && !errors.As(err, &ae) {
			t.Errorf("corrupted %v stream: %T %v, want an ArtifactError", s.Kind, err, err)
		}
	}
	// A row order of the wrong length: rewrite the table so one tensor's
	// rows disagree with its stored order (a header claiming one row more).
	var orders *StreamReport
	for i := range rep.Streams {
		if rep.Streams[i].Kind == StreamRowOrders {
			orders = &rep.Streams[i]
		}
	}
	if orders == nil {
		t.Fatal("no row-order stream")
	}
	// The table records the orders stream's raw length; a length one short
	// of what the tensors' rows need is refused before decoding.
	table, payload := splitArtifact(t, data, rep.HeaderBytes)
	needle := binary.AppendUvarint(nil, uint64(orders.Raw))
	if i := bytes.LastIndex(table, needle); i < 0 {
		t.Fatal("row-order length not found in the table")
	} else {
		bad := slices.Clone(table)
		copy(bad[i:], binary.AppendUvarint(nil, uint64(orders.Raw-1)))
		if len(binary.AppendUvarint(nil, uint64(orders.Raw-1))) == len(needle) {
			out := append([]byte(artifactMagic), artifactVersion)
			out = binary.AppendUvarint(out, uint64(len("store")))
			out = append(out, "store"...)
			out = binary.AppendUvarint(out, uint64(len(bad)))
			out = binary.AppendUvarint(out, uint64(len(bad)))
			out = append(append(out, bad...), payload...)
			expect("row-order stream one byte short", withCRC(append(out, 0, 0, 0, 0)), "row orders")
		} else {
			t.Fatal("the shorter length needs another varint width")
		}
	}
	// A permutation code holding n! or more is refused.
	if _, err := DecodePermutation(bytes.Repeat([]byte{0xff}, PermutationBytes(64)), 64); err == nil || !strings.Contains(err.Error(), "n!") {
		t.Errorf("an out-of-range permutation code: %v", err)
	}
}
