// Package audit checks that an evaluation result is legal under the
// challenge's rules and the community's reading of them (issue #1017 of the
// challenge: strict causality, a normalised distribution, score before
// update, each token scored once), and that its byte count and its training
// run are honest:
//
//   - causality: for sampled positions p, the stream's tokens after p are
//     replaced; every loss at or before p must stay the same (the largest
//     change is reported);
//   - normalisation: at probed positions the distribution a mode scores from
//     must sum to 1 over the whole vocabulary and give the loss it reports;
//   - scored once: every target exactly once, none twice, none missing;
//   - bytes: the byte count of every document equals the UTF-8 length of its
//     decoded text (or of the original text, for a CaseOps sidecar);
//   - training hygiene: trainable parameters that never left their initial
//     values, and reads of training data after the training budget ended.
//
// The stream checks treat an evaluation mode as a black box (eval.Mode), so
// they apply to any evaluator; failing checks name the position, parameter
// or read at fault.
package audit

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/report"
)

// Status is a check's outcome.
type Status string

// Statuses. Only Fail makes a report fail.
const (
	Pass        Status = "pass"
	Fail        Status = "fail"
	Info        Status = "info"         // a finding that is not a failure (frozen parameters)
	NotRecorded Status = "not recorded" // the run did not record what the check needs
	Skipped     Status = "skipped"      // the check does not apply
)

// Check is one line of a report.
type Check struct {
	Name   string `json:"check"`
	Mode   string `json:"mode,omitempty"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Value is the check's measured figure, when it has one: the largest
	// loss change (causality), the worst deviation from 1 (normalisation).
	Value *float64 `json:"value,omitempty"`
	// Failures names each position, parameter, document or read at fault
	// (at most a few dozen).
	Failures []string `json:"failures,omitempty"`
}

// Report is a whole audit.
type Report struct {
	Source  string  `json:"source,omitempty"`
	Backend string  `json:"backend,omitempty"`
	Checks  []Check `json:"checks"`
	Passed  bool    `json:"passed"`
}

// Add appends checks and updates Passed.
func (r *Report) Add(cs ...Check) {
	r.Checks = append(r.Checks, cs...)
	r.Passed = true
	for _, c := range r.Checks {
		if c.Status == Fail {
			r.Passed = false
		}
	}
}

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) error {
	title := "golf audit"
	if r.Source != "" {
		title += ": " + r.Source
	}
	if r.Backend != "" {
		title += " on " + r.Backend
	}
	t := report.NewTable(title, "check", "mode", "status", "detail")
	t.Left = map[int]bool{1: true, 2: true, 3: true}
	for _, c := range r.Checks {
		d := c.Detail
		if len(c.Failures) > 0 {
			d += " — " + c.Failures[0]
			if len(c.Failures) > 1 {
				d += fmt.Sprintf(" (+%d more)", len(c.Failures)-1)
			}
		}
		t.Add(c.Name, c.Mode, string(c.Status), d)
	}
	if err := t.Print(w); err != nil {
		return err
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "audit: %s\n", verdict)
	return err
}

// maxNamed caps the failures listed per check.
const maxNamed = 20

// Options configures the stream checks of a mode.
type Options struct {
	// Samples is the number of positions p of the causality check (default 4).
	Samples int
	// Probes is the number of positions whose whole distribution is checked
	// (default 4); they are at least Spacing apart.
	Probes int
	// Spacing is the least distance between probes: the evaluation's
	// context length, so that no window or chunk holds two (default 1).
	Spacing int
	// Prefer lists positions the probes favour (half of them), such as the
	// tilt's gated targets, where a normaliser can be missing.
	Prefer []int
	// Vocab is the vocabulary size: perturbed tokens and distributions.
	Vocab int
	// BOS is the document-start id the perturbed tokens use (0 means 1).
	BOS int
	// Tolerance is the largest loss change, in nats, the causality check
	// accepts (default 1e-6: the same computation on the same tokens).
	Tolerance float64
	// NormTolerance bounds |Σp − 1| and |−log p(y) − loss| (default 1e-4,
	// float32 arithmetic over a vocabulary).
	NormTolerance float64
	// Seed draws the sample positions and the perturbed tokens.
	Seed uint64
}

func (o Options) withDefaults() Options {
	if o.Samples <= 0 {
		o.Samples = 4
	}
	if o.Probes <= 0 {
		o.Probes = 4
	}
	if o.Spacing <= 0 {
		o.Spacing = 1
	}
	if o.BOS <= 0 {
		o.BOS = 1
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 1e-6
	}
	if o.NormTolerance <= 0 {
		o.NormTolerance = 1e-4
	}
	return o
}

// events is the Recorder of the stream checks: every score as reported,
// and the distributions at the probed positions.
type events struct {
	first  []float64 // first score of each position (NaN: none)
	count  []int
	bad    []int // positions reported outside the stream
	probes map[int]bool
	dists  map[int][]float64
}

func newEvents(n int, probes []int) *events {
	e := &events{first: make([]float64, n), count: make([]int, n), probes: map[int]bool{}, dists: map[int][]float64{}}
	for i := range e.first {
		e.first[i] = math.NaN()
	}
	for _, p := range probes {
		e.probes[p] = true
	}
	return e
}

func (e *events) Score(pos int, nats float64) {
	if pos < 1 || pos >= len(e.first) {
		e.bad = append(e.bad, pos)
		return
	}
	if e.count[pos] == 0 {
		e.first[pos] = nats
	}
	e.count[pos]++
}

func (e *events) Probe(pos int) bool { return e.probes[pos] }

func (e *events) Distribution(pos int, logp []float64) {
	e.dists[pos] = append([]float64(nil), logp...)
}

// CheckMode runs a mode on tokens and on perturbations of it and returns
// the scored-once, normalisation and causality checks, labelled name.
func CheckMode(ctx context.Context, name string, mode eval.Mode, tokens []uint16, opts Options) ([]Check, error) {
	opts = opts.withDefaults()
	if opts.Vocab < 2 {
		return nil, fmt.Errorf("audit: vocabulary size %d", opts.Vocab)
	}
	n := len(tokens)
	if n < 3 {
		return nil, fmt.Errorf("audit: a stream of %d tokens is too short", n)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	samples := pickSamples(n, opts, rng)
	probes := pickProbes(n, opts, samples, rng)
	base := newEvents(n, append(append([]int(nil), samples...), probes...))
	if err := mode.Score(ctx, tokens, base); err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, err)
	}
	checks := []Check{checkOnce(name, base), checkNorm(name, tokens, base, append(append([]int(nil), samples...), probes...), opts)}
	c, err := checkCausality(ctx, name, mode, tokens, base, samples, opts, rng)
	if err != nil {
		return nil, err
	}
	return append(checks, c), nil
}

// pickSamples spreads opts.Samples positions over the stream, at least
// Spacing apart, away from its first and last tokens.
func pickSamples(n int, opts Options, rng *rand.Rand) []int {
	var out []int
	for i := range opts.Samples {
		lo := 2 + (n-3)*i/opts.Samples
		hi := 2 + (n-3)*(i+1)/opts.Samples
		p := lo + rng.IntN(max(hi-lo, 1))
		if p < n-1 && (len(out) == 0 || p-out[len(out)-1] >= opts.Spacing) {
			out = append(out, p)
		}
	}
	return out
}

// pickProbes chooses up to opts.Probes positions at least Spacing apart
// from each other and from taken: half from Prefer, the rest at random.
func pickProbes(n int, opts Options, taken []int, rng *rand.Rand) []int {
	var out []int
	far := func(p int) bool {
		for _, q := range append(append([]int(nil), taken...), out...) {
			if abs(p-q) < opts.Spacing {
				return false
			}
		}
		return p >= 1 && p < n
	}
	pref := append([]int(nil), opts.Prefer...)
	rng.Shuffle(len(pref), func(i, j int) { pref[i], pref[j] = pref[j], pref[i] })
	for _, p := range pref {
		if len(out) >= (opts.Probes+1)/2 {
			break
		}
		if far(p) {
			out = append(out, p)
		}
	}
	for tries := 0; len(out) < opts.Probes && tries < 100*opts.Probes; tries++ {
		if p := 1 + rng.IntN(n-1); far(p) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func checkOnce(name string, ev *events) Check {
	c := Check{Name: "scored once", Mode: name}
	var missing, twice int
	for p := 1; p < len(ev.count); p++ {
		switch {
		case ev.count[p] == 0:
			missing++
			if len(c.Failures) < maxNamed {
				c.Failures = append(c.Failures, fmt.Sprintf("position %d never scored", p))
			}
		case ev.count[p] > 1:
			twice++
			if len(c.Failures) < maxNamed {
				c.Failures = append(c.Failures, fmt.Sprintf("position %d scored %d times", p, ev.count[p]))
			}
		}
	}
	for _, p := range ev.bad {
		if len(c.Failures) < maxNamed {
			c.Failures = append(c.Failures, fmt.Sprintf("position %d is not a target of the stream", p))
		}
	}
	if missing+twice+len(ev.bad) == 0 {
		c.Status = Pass
		c.Detail = fmt.Sprintf("each of %d targets scored exactly once", len(ev.count)-1)
		return c
	}
	c.Status = Fail
	c.Detail = fmt.Sprintf("%d targets scored more than once, %d never, %d reports outside the stream", twice, missing, len(ev.bad))
	return c
}

// checkNorm checks, at each probe, that the reported distribution sums to
// 1 and that the score is −log of its probability of the target.
func checkNorm(name string, tokens []uint16, ev *events, probes []int, opts Options) Check {
	c := Check{Name: "normalisation", Mode: name}
	worst := 0.0
	checked := 0
	failing := map[int]bool{}
	fail := func(p int, format string, a ...any) {
		failing[p] = true
		if len(c.Failures) < maxNamed {
			c.Failures = append(c.Failures, fmt.Sprintf(format, a...))
		}
	}
	for _, p := range probes {
		logp, ok := ev.dists[p]
		if !ok {
			fail(p, "position %d: the mode reported no distribution", p)
			continue
		}
		if len(logp) != opts.Vocab {
			fail(p, "position %d: distribution over %d tokens, the vocabulary has %d", p, len(logp), opts.Vocab)
			continue
		}
		checked++
		sum := 0.0
		for _, l := range logp {
			sum += math.Exp(l)
		}
		dev := math.Abs(sum - 1)
		worst = max(worst, dev)
		if dev > opts.NormTolerance || math.IsNaN(sum) {
			fail(p, "position %d: probabilities sum to %.6g", p, sum)
		}
		if y := int(tokens[p]); !math.IsNaN(ev.first[p]) {
			gap := math.Abs(-logp[y] - ev.first[p])
			worst = max(worst, gap)
			if gap > opts.NormTolerance {
				fail(p, "position %d: scored %.6g nats, its distribution gives the target %.6g", p, ev.first[p], -logp[y])
			}
		}
	}
	c.Value = &worst
	if len(c.Failures) > 0 {
		c.Status = Fail
		c.Detail = fmt.Sprintf("%d of %d probed distributions fail (worst deviation %.3g)", len(failing), len(probes), worst)
		return c
	}
	if checked == 0 {
		c.Status = Skipped
		c.Detail = "no position to probe"
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("%d probed distributions sum to 1 and give the scored loss (worst deviation %.3g)", checked, worst)
	return c
}

// checkCausality, for each sampled position p, replaces the target at p
// with another token and every token after it with random ones (documents
// of random lengths: BOS at the stream's rate), then requires
//
//   - every loss before p to be what it was (the same computation on the
//     same prefix: within Tolerance), and
//   - the loss at p to be −log of the probability the unperturbed run's
//     distribution at p gave the new target (within NormTolerance): the
//     distribution a target is scored from must not depend on the target.
//
// The first catches adaptation on tokens not yet scored, the second a
// model that trains on a target before scoring it.
func checkCausality(ctx context.Context, name string, mode eval.Mode, tokens []uint16, base *events, samples []int, opts Options, rng *rand.Rand) (Check, error) {
	c := Check{Name: "causality", Mode: name}
	n := len(tokens)
	bosRate := 0.0
	for _, t := range tokens {
		if int(t) == opts.BOS {
			bosRate++
		}
	}
	bosRate = max(bosRate/float64(n), 1/256.0)
	worst, worstAt, worstP := 0.0, 0, 0
	worstGap, gapAt := 0.0, 0
	for _, p := range samples {
		pert := append([]uint16(nil), tokens...)
		pert[p] = uint16((int(tokens[p]) + 1 + rng.IntN(opts.Vocab-1)) % opts.Vocab)
		for i := p + 1; i < n; i++ {
			if rng.Float64() < bosRate {
				pert[i] = uint16(opts.BOS)
			} else {
				pert[i] = uint16(rng.IntN(opts.Vocab))
			}
		}
		ev := newEvents(n, nil)
		if err := mode.Score(ctx, pert, ev); err != nil {
			return c, fmt.Errorf("audit %s: perturbed from %d: %w", name, p, err)
		}
		named := 0
		for q := 1; q < p; q++ {
			a, b := base.first[q], ev.first[q]
			if math.IsNaN(a) && math.IsNaN(b) {
				continue
			}
			d := math.Abs(a - b)
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			if d > worst {
				worst, worstAt, worstP = d, q, p
			}
			if d > opts.Tolerance && named < 3 && len(c.Failures) < maxNamed {
				c.Failures = append(c.Failures, fmt.Sprintf("position %d: loss %.6g -> %.6g after changing the tokens from %d on", q, a, b, p))
				named++
			}
		}
		if logp, ok := base.dists[p]; ok && len(logp) == opts.Vocab {
			want, got := -logp[pert[p]], ev.first[p]
			gap := math.Abs(got - want)
			if math.IsNaN(gap) {
				gap = math.Inf(1)
			}
			if gap > worstGap {
				worstGap, gapAt = gap, p
			}
			if gap > opts.NormTolerance && len(c.Failures) < maxNamed {
				c.Failures = append(c.Failures, fmt.Sprintf("position %d: target %d scored %.6g nats, the distribution at %d before it was known gives %.6g",
					p, pert[p], got, p, want))
			}
		}
	}
	c.Value = &worst
	switch {
	case worst > opts.Tolerance:
		c.Status = Fail
		c.Detail = fmt.Sprintf("losses depend on later tokens: largest change %.3g nats at position %d (tokens from %d on changed)", worst, worstAt, worstP)
	case worstGap > opts.NormTolerance:
		c.Status = Fail
		c.Detail = fmt.Sprintf("a target's distribution depends on the target: %.3g nats off at position %d", worstGap, gapAt)
	case len(samples) == 0:
		c.Status, c.Detail = Skipped, "the stream is too short to sample"
	default:
		c.Status = Pass
		c.Detail = fmt.Sprintf("%d sampled positions: changing a target and what follows moves no earlier loss (largest change %.3g nats) and the target's own loss follows the distribution before it (within %.3g)",
			len(samples), worst, worstGap)
	}
	return c, nil
}

// CheckOrder reports test-time training's document order: the record's
// length-sorted order makes a document's score depend on the lengths of
// documents after it in the stream, which breaks the strict reading of the
// rules (the probability of a token depends only on the artifact and the
// tokens before it).
func CheckOrder(name string, set *eval.TTT) Check {
	c := Check{Name: "stream order", Mode: name}
	switch {
	case set == nil:
		c.Status, c.Detail = Skipped, "no test-time training"
	case set.Order == eval.RecordOrder:
		c.Status = Fail
		c.Detail = "not stream-causal: documents are scored in length order (longest first) and the global phase trains on the longest documents, so a score depends on documents after it in the stream"
	default:
		c.Status = Pass
		c.Detail = "documents scored in stream order; the global phase trains only on the scored stream prefix"
	}
	return c
}
