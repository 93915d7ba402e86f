package audit_test

import (
	"context"
	"fmt"
	"math"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/eval/audit"
)

// bigram scores each target from a smoothed count of what followed the
// previous token so far; with peek it counts the target itself before
// scoring it (training on a token before scoring it).
type bigram struct {
	vocab int
	peek  bool
}

func (b bigram) Score(_ context.Context, tokens []uint16, rec eval.Recorder) error {
	counts := make([][]float64, b.vocab)
	for i := range counts {
		counts[i] = make([]float64, b.vocab)
		for j := range counts[i] {
			counts[i][j] = 1
		}
	}
	for p := 1; p < len(tokens); p++ {
		prev := tokens[p-1]
		if b.peek {
			counts[prev][tokens[p]]++ // the target, before it is scored
		}
		row, sum := counts[prev], 0.0
		for _, c := range row {
			sum += c
		}
		rec.Score(p, -math.Log(row[tokens[p]]/sum))
		if rec.Probe(p) {
			logp := make([]float64, b.vocab)
			for a, c := range row {
				logp[a] = math.Log(c / sum)
			}
			rec.Distribution(p, logp)
		}
		if !b.peek {
			counts[prev][tokens[p]]++
		}
	}
	return nil
}

// An adaptive bigram model that updates only after scoring passes every
// stream check; the same model counting each target before scoring it
// fails causality, naming a position.
func ExampleCheckMode() {
	tokens := make([]uint16, 400)
	for i := range tokens {
		tokens[i] = uint16((i*i + 3*i) % 7)
	}
	opts := audit.Options{Vocab: 7, Samples: 3, Probes: 3, Seed: 1}
	for _, m := range []struct {
		name string
		mode eval.Mode
	}{{"bigram", bigram{vocab: 7}}, {"peeking", bigram{vocab: 7, peek: true}}} {
		checks, err := audit.CheckMode(context.Background(), m.name, m.mode, tokens, opts)
		if err != nil {
			panic(err)
		}
		for _, c := range checks {
			fmt.Println(m.name, c.Name, c.Status, len(c.Failures) > 0)
		}
	}
	// Output:
	// bigram scored once pass false
	// bigram normalisation pass false
	// bigram causality pass false
	// peeking scored once pass false
	// peeking normalisation pass false
	// peeking causality fail true
}
