package eval

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"io"
	"math"
	"os"
	"testing"
)

// lcg is testdata/gen_ngram_reference.py's generator.
type lcg struct{ state uint64 }

func (g *lcg) next() uint64 {
	g.state = g.state*6364136223846793005 + 1442695040888963407
	return g.state >> 11
}
func (g *lcg) uniform() float64 { return float64(g.next()) * (1.0 / (1 << 53)) }
func (g *lcg) below(n int) int  { return int(g.next() % uint64(n)) }

// phraseStream is make_stream of the generator script.
func phraseStream(n int, seed uint64, vocab, phrases, plen int, mutate, bos float64) []uint16 {
	g := &lcg{seed}
	table := make([][]uint16, phrases)
	for i := range table {
		for range plen {
			table[i] = append(table[i], uint16(2+g.below(vocab-2)))
		}
	}
	out := []uint16{1}
	for len(out) < n {
		if g.uniform() < bos {
			out = append(out, 1)
		}
		for _, t := range table[g.below(phrases)] {
			if g.uniform() < mutate {
				t = uint16(2 + g.below(vocab-2))
			}
			out = append(out, t)
		}
	}
	return out[:n]
}

// The hints match the record's own code (online_ngram_state.c run by
// online_ngram_tilt.py, testdata/gen_ngram_reference.py) at every target of
// four streams: order 16 with the record's threshold and boost, and small
// orders and vocabularies where contexts repeat with ties.
func TestHintsMatchRecordCode(t *testing.T) {
	raw, err := os.ReadFile("testdata/ngram_reference.bin")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(data)
	read := func(v any) {
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
	}
	var cases uint32
	read(&cases)
	for range cases {
		var nl uint8
		read(&nl)
		name := make([]byte, nl)
		read(name)
		var hdr struct {
			N               uint32
			Seed            uint64
			Vocab, P, PLen  uint32
			Mutate, BOS     float64
			Order           uint32
			Threshold, Beta float64
		}
		read(&hdr)
		m := int(hdr.N) - 1
		topTok, topProb := make([]uint16, m), make([]float32, m)
		gate, hint, boost := make([]uint8, m), make([]uint16, m), make([]float32, m)
		read(topTok)
		read(topProb)
		read(gate)
		read(hint)
		read(boost)
		t.Run(string(name), func(t *testing.T) {
			tokens := phraseStream(int(hdr.N), hdr.Seed, int(hdr.Vocab), int(hdr.P), int(hdr.PLen), hdr.Mutate, hdr.BOS)
			h, err := Tilt{Order: int(hdr.Order), Threshold: hdr.Threshold, Boost: hdr.Beta}.Hints(tokens)
			if err != nil {
				t.Fatal(err)
			}
			gated := 0
			for i := range m {
				pos := i + 1
				if h.Tok[pos] != topTok[i] || h.Prob[pos] != topProb[i] {
					t.Fatalf("target %d: top token %d share %v, record %d %v", pos, h.Tok[pos], h.Prob[pos], topTok[i], topProb[i])
				}
				if h.Gate[pos] != (gate[i] == 1) {
					t.Fatalf("target %d: gate %v, record %v (share %v, threshold %v)", pos, h.Gate[pos], gate[i] == 1, topProb[i], hdr.Threshold)
				}
				if h.Gate[pos] {
					gated++
					if h.Tok[pos] != hint[i] || float32(h.Boost) != boost[i] {
						t.Fatalf("target %d: hint %d boost %v, record %d %v", pos, h.Tok[pos], h.Boost, hint[i], boost[i])
					}
				} else if boost[i] != 0 || hint[i] != 0 {
					t.Fatalf("target %d: record hints %d (boost %v) where the gate is shut", pos, hint[i], boost[i])
				}
			}
			if gated != h.Gated || gated == 0 || gated == m {
				t.Fatalf("%d gated (counted %d) of %d: the case does not exercise the gate", gated, h.Gated, m)
			}
		})
	}
}

// A hand-worked stream, order 2 (context = the previous target): the ring
// is seeded with the first target, the lookup precedes the update, ties
// keep the older top token.
func TestHintsByHand(t *testing.T) {
	// Targets (tokens[1:]): a b a c a b a c a
	const a, b, c = 5, 6, 7
	tokens := []uint16{1, a, b, a, c, a, b, a, c, a}
	h, err := Tilt{Order: 2, Threshold: 0.5, Boost: 1}.Hints(tokens)
	if err != nil {
		t.Fatal(err)
	}
	// i=0 (target a): ring [a] (seed) full, context a unseen; then a->a.
	// i=1 (b): ctx a: top a 1/1; then a->b (tie 1:1, keeps a), total 2.
	// i=2 (a): ctx b unseen; b->a.
	// i=3 (c): ctx a: top a 1/2; a->c, total 3, top a.
	// i=4 (a): ctx c unseen; c->a.
	// i=5 (b): ctx a: a 1/3; a->b count 2 > 1: top b, total 4.
	// i=6 (a): ctx b: a 1/1; b->a 2.
	// i=7 (c): ctx a: b 2/4; a->c count 2 (tie, keeps b), total 5.
	// i=8 (a): ctx c: a 1/1.
	want := []struct {
		tok  uint16
		prob float32
	}{{0, 0}, {a, 1}, {0, 0}, {a, 0.5}, {0, 0}, {a, float32(1) / 3}, {a, 1}, {b, 0.5}, {a, 1}}
	for i, w := range want {
		pos := i + 1
		if h.Tok[pos] != w.tok || h.Prob[pos] != w.prob {
			t.Errorf("target %d: hint %d share %v, want %d %v", pos, h.Tok[pos], h.Prob[pos], w.tok, w.prob)
		}
		if h.Gate[pos] != (w.prob >= 0.5) {
			t.Errorf("target %d: gate %v at share %v", pos, h.Gate[pos], w.prob)
		}
	}
}

// The tilt's closed form against the distribution it claims: tilting
// log p towards the hint and renormalising gives -log p'(y) = tiltNats, and
// p' sums to 1.
func TestTiltFormulaByHand(t *testing.T) {
	p := []float64{0.5, 0.3, 0.2}
	const beta = 2.625
	for hint := range p {
		for y := range p {
			// By hand: p'(a) = p(a) e^{β[a=h]} / Z, Z = Σ p(a) e^{β[a=h]}.
			z := 0.0
			for a := range p {
				w := p[a]
				if a == hint {
					w *= math.Exp(beta)
				}
				z += w
			}
			want := p[y]
			if y == hint {
				want *= math.Exp(beta)
			}
			want = -math.Log(want / z)
			got := tiltNats(-math.Log(p[y]), -math.Log(p[hint]), y == hint, beta)
			if math.Abs(got-want) > 1e-12 {
				t.Errorf("hint %d target %d: tilted loss %v, by hand %v", hint, y, got, want)
			}
		}
		logp := []float64{math.Log(p[0]), math.Log(p[1]), math.Log(p[2])}
		tiltDistribution(logp, hint, -math.Log(p[hint]), beta)
		sum := 0.0
		for _, l := range logp {
			sum += math.Exp(l)
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("hint %d: tilted distribution sums to %v", hint, sum)
		}
	}
}

func TestTableBitsAsRecord(t *testing.T) {
	// suggest_table_bits(total, 0.55): ceil(log2(total/0.55)) in [12, 28].
	for _, c := range [][2]int{{0, 16}, {1, 12}, {2253, 12}, {2254, 13}, {47851520, 27}, {1 << 30, 28}} {
		if got := tableBits(c[0]); got != c[1] {
			t.Errorf("tableBits(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

// With the tilt, a gated target's loss is the closed form applied to the
// untilted losses of the target and of the hint at that position; other
// targets keep their loss.
func TestEvaluateTilted(t *testing.T) {
	cfg := microConfig()
	tokens := phraseStream(3*16+1, 21, cfg.VocabSize, 3, 6, 0.05, 0.03)
	w := randomWeights(t, cfg, 9)
	e, err := New(backend(t), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tilt := Tilt{Order: 3, Threshold: 0.5, Boost: 2.625}
	hints, err := tilt.Hints(tokens)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	tilted, err := e.Evaluate(context.Background(), tokens, TableBytes(unitBytes{}), Options{SeqLen: 16, Tilt: &tilt})
	if err != nil {
		t.Fatal(err)
	}
	if hints.Gated < 5 {
		t.Fatalf("only %d gated targets", hints.Gated)
	}
	for s := 0; s+16 < len(tokens); s += 16 {
		hintRow := make([]uint16, 16)
		for i := range hintRow {
			hintRow[i] = hints.Tok[s+i+1]
		}
		hintNats := referenceLosses(t, cfg, w, tokens[s:s+16], hintRow, nil)
		for i := range 16 {
			pos := s + i + 1
			want := plain.Nats()[pos]
			if hints.Gate[pos] {
				want = tiltNats(want, hintNats[i], tokens[pos] == hints.Tok[pos], tilt.Boost)
			}
			if math.Abs(tilted.Nats()[pos]-want) > 1e-12 {
				t.Fatalf("position %d (gated %v): tilted loss %v, want %v", pos, hints.Gate[pos], tilted.Nats()[pos], want)
			}
		}
	}
}
