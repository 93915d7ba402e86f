package eval_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/eval/audit"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/tokenizer"
)

// The audit against real evaluation modes (which pass) and deliberately
// broken ones (which fail the check named), on a micro model with the
// record's techniques.

func auditConfig() model.Config {
	return model.Config{
		Name: "audit-micro", VocabSize: 48, NumLayers: 4, ModelDim: 16, NumHeads: 2, NumKVHeads: 1,
		MLPHidden: 32, SeqLen: 16, RopeBase: 10000, LogitSoftcap: 30, EmbedInitStd: 0.5, QKGainInit: 1.5,
		NumLoops: 1, LoopStart: 1, LoopEnd: 1, ParallelStartLayer: 3, AsymLogit: true, SmearGate: true, GateWindow: 4,
	}
}

func auditEvaluator(t *testing.T) *eval.Evaluator {
	t.Helper()
	b, _, err := compute.Open("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg := auditConfig()
	w, err := model.InitWeights(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range w {
		if w[i].Class == model.Frozen {
			continue
		}
		for j := range w[i].Data {
			w[i].Data[j] = float32(rng.NormFloat64() * 0.4)
		}
	}
	e, err := eval.New(b, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// auditStream is documents of repeated phrases (the tilt fires) of
// varied lengths, starting with BOS.
func auditStream(n int) []uint16 {
	rng := rand.New(rand.NewPCG(9, 9))
	phrases := [][]uint16{{5, 9, 13, 21, 8}, {30, 11, 4, 17}, {40, 3, 19, 25, 6, 2}}
	out := []uint16{1}
	for len(out) < n {
		if rng.IntN(6) == 0 {
			out = append(out, 1)
		}
		for _, t := range phrases[rng.IntN(len(phrases))] {
			if rng.IntN(10) == 0 {
				t = uint16(2 + rng.IntN(46))
			}
			out = append(out, t)
		}
	}
	return out[:n]
}

func tttSettings() *eval.TTT {
	t := eval.RecordTTT()
	t.Rank, t.Alpha, t.Chunk, t.BatchDocs = 2, 4, 4, 3
	t.LR = 0.01
	t.PrefixDocs, t.Phases, t.GlobalChunkTokens, t.GlobalLR = 3, 1, 16, 0.01
	return &t
}

func tilt() *eval.Tilt { return &eval.Tilt{Order: 3, Threshold: 0.5, Boost: 2.625} }

func auditOptions(t *testing.T, tokens []uint16, tl *eval.Tilt) audit.Options {
	o := audit.Options{Vocab: 48, Spacing: 16, Samples: 3, Probes: 4, Seed: 5}
	if tl != nil {
		h, err := tl.Hints(tokens)
		if err != nil {
			t.Fatal(err)
		}
		for p, g := range h.Gate {
			if g {
				o.Prefer = append(o.Prefer, p)
			}
		}
	}
	return o
}

func statusOf(t *testing.T, cs []audit.Check, name string) audit.Check {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, cs)
	return audit.Check{}
}

func TestAuditPassesRealModes(t *testing.T) {
	e := auditEvaluator(t)
	tokens := auditStream(160)
	for _, m := range []struct {
		name string
		opts eval.Options
	}{
		{"plain", eval.Options{SeqLen: 16}},
		{"sliding", eval.Options{SeqLen: 16, Stride: 4}},
		{"doc-isolated", eval.Options{SeqLen: 16, Stride: 8, DocIsolated: true}},
		{"tilt", eval.Options{SeqLen: 16, Tilt: tilt()}},
		{"ttt", eval.Options{SeqLen: 16, TTT: tttSettings()}},
		{"ttt+tilt", eval.Options{SeqLen: 16, TTT: tttSettings(), Tilt: tilt()}},
	} {
		t.Run(m.name, func(t *testing.T) {
			mode, err := e.Mode(tokens, m.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := audit.CheckMode(context.Background(), m.name, mode, tokens, auditOptions(t, tokens, m.opts.Tilt))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Status != audit.Pass {
					t.Errorf("%s: %s %s: %s %v", m.name, c.Name, c.Status, c.Detail, c.Failures)
				}
			}
			if m.opts.Tilt != nil {
				if v := statusOf(t, cs, "normalisation").Value; v == nil || *v > 1e-4 {
					t.Errorf("normalisation deviation %v", v)
				}
			}
		})
	}
}

// A test-time trainer that trains on each chunk before scoring it fails
// causality: a loss depends on the tokens after it in its chunk.
func TestAuditCatchesTrainingBeforeScoring(t *testing.T) {
	e := auditEvaluator(t)
	tokens := auditStream(160)
	opts := eval.Options{SeqLen: 16, TTT: tttSettings()}
	mode, err := e.BrokenTrainBeforeScore(tokens, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := audit.CheckMode(context.Background(), "ttt-broken", mode, tokens, auditOptions(t, tokens, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := statusOf(t, cs, "causality")
	if c.Status != audit.Fail || len(c.Failures) == 0 || !strings.Contains(c.Failures[0], "position") {
		t.Fatalf("causality %s: %s %v", c.Status, c.Detail, c.Failures)
	}
	if statusOf(t, cs, "scored once").Status != audit.Pass {
		t.Errorf("scored once failed too: %+v", cs)
	}
	t.Logf("%s", c.Detail)
}

// The record's length-sorted order is reported as not stream-causal, and
// the perturbation check sees it.
func TestAuditRecordOrder(t *testing.T) {
	e := auditEvaluator(t)
	tokens := auditStream(160)
	set := tttSettings()
	set.Order = eval.RecordOrder
	if c := audit.CheckOrder("ttt-record", set); c.Status != audit.Fail {
		t.Errorf("record order: %s", c.Status)
	}
	if c := audit.CheckOrder("ttt", tttSettings()); c.Status != audit.Pass {
		t.Errorf("stream order: %s", c.Status)
	}
	mode, err := e.Mode(tokens, eval.Options{SeqLen: 16, TTT: set}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := audit.CheckMode(context.Background(), "ttt-record", mode, tokens, auditOptions(t, tokens, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c := statusOf(t, cs, "causality"); c.Status != audit.Fail {
		t.Errorf("record order passes the perturbation check: %s", c.Detail)
	} else {
		t.Logf("%s", c.Detail)
	}
}

// unnormalisedTilt is a tilt without its normaliser: NLL − β·1[y=h], the
// distribution p(a)·e^{β·1[a=h]}, which sums to 1 + q(e^β − 1).
type unnormalisedTilt struct {
	inner eval.Mode
	hints *eval.Hints
}

type tiltRecorder struct {
	eval.Recorder
	tokens []uint16
	hints  *eval.Hints
}

func (r tiltRecorder) Score(pos int, nats float64) {
	if r.hints.Gate[pos] && r.tokens[pos] == r.hints.Tok[pos] {
		nats -= r.hints.Boost
	}
	r.Recorder.Score(pos, nats)
}

func (r tiltRecorder) Distribution(pos int, logp []float64) {
	if r.hints.Gate[pos] {
		logp[r.hints.Tok[pos]] += r.hints.Boost
	}
	r.Recorder.Distribution(pos, logp)
}

func (m unnormalisedTilt) Score(ctx context.Context, tokens []uint16, rec eval.Recorder) error {
	h, err := tilt().Hints(tokens)
	if err != nil {
		return err
	}
	return m.inner.Score(ctx, tokens, tiltRecorder{rec, tokens, h})
}

func TestAuditCatchesUnnormalisedTilt(t *testing.T) {
	e := auditEvaluator(t)
	tokens := auditStream(160)
	inner, err := e.Mode(tokens, eval.Options{SeqLen: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := audit.CheckMode(context.Background(), "tilt-unnormalised", unnormalisedTilt{inner: inner}, tokens, auditOptions(t, tokens, tilt()))
	if err != nil {
		t.Fatal(err)
	}
	c := statusOf(t, cs, "normalisation")
	if c.Status != audit.Fail || !strings.Contains(c.Failures[0], "sum to") {
		t.Fatalf("normalisation %s: %s %v", c.Status, c.Detail, c.Failures)
	}
	t.Logf("%s: %v", c.Detail, c.Failures[0])
}

// twiceScored re-reports the end of the stream after scoring it, as the
// early sliding-window evaluations did.
type twiceScored struct{ inner eval.Mode }

type copyRecorder struct {
	eval.Recorder
	last map[int]float64
}

func (r copyRecorder) Score(pos int, nats float64) { r.last[pos] = nats; r.Recorder.Score(pos, nats) }

func (m twiceScored) Score(ctx context.Context, tokens []uint16, rec eval.Recorder) error {
	cr := copyRecorder{rec, map[int]float64{}}
	if err := m.inner.Score(ctx, tokens, cr); err != nil {
		return err
	}
	for p := len(tokens) - 3; p < len(tokens); p++ {
		rec.Score(p, cr.last[p])
	}
	return nil
}

func TestAuditCatchesDoubleScoring(t *testing.T) {
	e := auditEvaluator(t)
	tokens := auditStream(160)
	inner, err := e.Mode(tokens, eval.Options{SeqLen: 16, Stride: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := audit.CheckMode(context.Background(), "sliding-twice", twiceScored{inner}, tokens, auditOptions(t, tokens, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := statusOf(t, cs, "scored once")
	if c.Status != audit.Fail || !strings.Contains(c.Failures[0], "position 157 scored 2 times") {
		t.Fatalf("scored once %s: %s %v", c.Status, c.Detail, c.Failures)
	}
}

// offByOne counts every byte-fallback piece as 2 bytes instead of 1, the
// kind of mistake that inflated a record's byte count (a tokenizer's byte
// pieces counted as 3).
type offByOne struct{ tok *tokenizer.Model }

func (o offByOne) TokenBytes(prev, tok int) int {
	n := o.tok.ByteTable().TokenBytes(prev, tok)
	if o.tok.IsByte(tok) {
		n++
	}
	return n
}

func TestAuditBytes(t *testing.T) {
	tok := tokenizer.Default()
	docs := []string{"Fellow citizens of the Senate and House of Representatives.", "It is a year of peace; the ﬁscal year ends in June, x² ≠ 1.", "  Thank you  "}
	ids, err := tok.EncodeAll(context.Background(), docs)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []uint16
	for _, d := range ids {
		tokens = append(tokens, uint16(tok.BOS()))
		for _, id := range d {
			tokens = append(tokens, uint16(id))
		}
	}
	tokens = append(tokens, uint16(tok.BOS()))
	ref := audit.DecodedText(tok)
	if c := audit.CheckBytes(tokens, eval.TableBytes(tok.ByteTable()), ref, tok.BOS()); c.Status != audit.Pass {
		t.Fatalf("the real byte table: %s %s %v", c.Status, c.Detail, c.Failures)
	}
	c := audit.CheckBytes(tokens, eval.TableBytes(offByOne{tok}), ref, tok.BOS())
	firstByte := 0
	for p, id := range tokens {
		if firstByte == 0 && tok.IsByte(int(id)) {
			firstByte = p
		}
	}
	if c.Status != audit.Fail || !strings.Contains(c.Failures[0], "document 1") || !strings.Contains(c.Failures[0], fmt.Sprintf("at position %d ", firstByte)) {
		t.Fatalf("off-by-one table (first byte piece at %d): %s %s %v", firstByte, c.Status, c.Detail, c.Failures)
	}
	t.Logf("%s: %s", c.Detail, c.Failures[0])
	// A sidecar against the original documents' lengths.
	counts := make([]uint16, len(tokens))
	table, _ := eval.TableBytes(tok.ByteTable()).StreamBytes(tokens)
	for i, v := range table {
		counts[i] = uint16(v)
	}
	var lengths []int
	for _, d := range ids {
		lengths = append(lengths, len(tok.Decode(d)))
	}
	if c := audit.CheckBytes(tokens, eval.SidecarBytes(counts), audit.OriginalText(lengths), tok.BOS()); c.Status != audit.Pass {
		t.Fatalf("sidecar: %s %s %v", c.Status, c.Detail, c.Failures)
	}
	lengths[1]++
	if c := audit.CheckBytes(tokens, eval.SidecarBytes(counts), audit.OriginalText(lengths), tok.BOS()); c.Status != audit.Fail || !strings.Contains(c.Failures[0], "document 1") {
		t.Fatalf("sidecar against a longer original: %s %s %v", c.Status, c.Detail, c.Failures)
	}
}

func TestAuditHygiene(t *testing.T) {
	cfg := auditConfig()
	init, err := model.InitWeights(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	trained := make(model.Weights, len(init))
	for i, p := range init {
		trained[i] = p
		trained[i].Data = append([]float32(nil), p.Data...)
		if p.Class != model.Frozen && p.Name != "block_2/mlp/fc" {
			trained[i].Data[0] += 0.5
		}
	}
	cs := audit.CheckParameters(cfg, 7, trained)
	if cs[0].Status != audit.Fail || len(cs[0].Failures) != 1 || !strings.Contains(cs[0].Failures[0], "block_2/mlp/fc") {
		t.Fatalf("trained parameters: %+v", cs[0])
	}
	if cs[1].Status != audit.Info || !strings.Contains(cs[1].Detail, "softcap_pos") {
		t.Fatalf("frozen parameters: %+v", cs[1])
	}
	reads := []audit.DataRead{{What: "train loader", StartMs: 0, EndMs: 599400}, {What: "gptq calibration", StartMs: 599500, EndMs: 606400}}
	if c := audit.CheckDataReads(reads, true, 600); c.Status != audit.Fail || !strings.Contains(c.Failures[0], "gptq calibration") {
		t.Fatalf("late calibration: %+v", c)
	}
	if c := audit.CheckDataReads(reads[:1], true, 600); c.Status != audit.Pass {
		t.Fatalf("reads within the budget: %+v", c)
	}
	if c := audit.CheckDataReads(nil, false, 600); c.Status != audit.NotRecorded {
		t.Fatalf("no record: %+v", c)
	}
}

// CaseOps data: the byte sidecar counts the original text, so it passes
// against the CaseOps-decoded text, while the byte table of the transformed
// tokens (PR #2138's mistake: dividing by the transformed bytes) fails.
func TestAuditCaseOpsBytes(t *testing.T) {
	tok := tokenizer.Default()
	docs := []string{"The President of the UNITED STATES spoke in McAllen.", "NASA's budget; iPhone sales rose."}
	var tokens, counts []uint16
	for _, d := range docs {
		ids, n, err := tok.CaseOpsEncode(d)
		if err != nil {
			t.Fatal(err)
		}
		tokens, counts = append(tokens, uint16(tok.BOS())), append(counts, 0)
		for i, id := range ids {
			tokens, counts = append(tokens, uint16(id)), append(counts, uint16(n[i]))
		}
	}
	tokens, counts = append(tokens, uint16(tok.BOS())), append(counts, 0)
	ref := audit.CaseOpsText(tok)
	if c := audit.CheckBytes(tokens, eval.SidecarBytes(counts), ref, tok.BOS()); c.Status != audit.Pass {
		t.Fatalf("sidecar: %s %s %v", c.Status, c.Detail, c.Failures)
	}
	if c := audit.CheckBytes(tokens, eval.TableBytes(tok.ByteTable()), ref, tok.BOS()); c.Status != audit.Fail {
		t.Fatalf("the transformed tokens' byte table against the original text: %s %s", c.Status, c.Detail)
	} else {
		t.Logf("%s", c.Detail)
	}
}
