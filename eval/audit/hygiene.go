package audit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/paramgolf/golf/model"
)

// CheckParameters compares trained weights with the initial weights the
// run started from (model.InitWeights(cfg, seed), as the trainer
// initialises): a trainable parameter still exactly at its initial value
// never trained, and any gain credited to it is something else (the
// record's AsymLogit softcaps, §2.9 of record-stack.md). Frozen parameters
// are reported apart: not training is their design, changing is a fault.
func CheckParameters(cfg model.Config, seed int64, trained model.Weights) []Check {
	tc := Check{Name: "trained parameters"}
	fc := Check{Name: "frozen parameters"}
	init, err := model.InitWeights(cfg, seed)
	if err == nil {
		err = model.CheckWeights(cfg, trained)
	}
	if err != nil {
		tc.Status, tc.Detail = Fail, err.Error()
		return []Check{tc}
	}
	var unchanged, frozen, frozenMoved []string
	trainable := 0
	for _, p := range init {
		t, _ := trained.Get(p.Name)
		same := slices.Equal(t.Data, p.Data)
		if p.Class == model.Frozen {
			if same {
				frozen = append(frozen, p.Name)
			} else {
				frozenMoved = append(frozenMoved, p.Name)
			}
			continue
		}
		trainable++
		if same {
			unchanged = append(unchanged, p.Name)
		}
	}
	if len(unchanged) > 0 {
		tc.Status = Fail
		tc.Detail = fmt.Sprintf("%d of %d trainable parameters never left their initial values (seed %d)", len(unchanged), trainable, seed)
		for _, n := range unchanged[:min(len(unchanged), maxNamed)] {
			tc.Failures = append(tc.Failures, "parameter "+n+" unchanged")
		}
	} else {
		tc.Status = Pass
		tc.Detail = fmt.Sprintf("all %d trainable parameters moved from their initial values (seed %d)", trainable, seed)
	}
	switch {
	case len(frozenMoved) > 0:
		fc.Status = Fail
		fc.Detail = fmt.Sprintf("%d frozen parameters changed: %s", len(frozenMoved), strings.Join(frozenMoved, ", "))
		for _, n := range frozenMoved {
			fc.Failures = append(fc.Failures, "frozen parameter "+n+" changed")
		}
	case len(frozen) > 0:
		fc.Status = Info
		fc.Detail = fmt.Sprintf("%d parameters are frozen by design and never train: %s (any gain credited to them is something else)", len(frozen), strings.Join(frozen, ", "))
	default:
		fc.Status, fc.Detail = Skipped, "the model has no frozen parameters"
	}
	return []Check{tc, fc}
}

// DataRead is one read of training data during a run, in milliseconds
// from the start of timed training (results.json's data_reads).
type DataRead struct {
	What    string  `json:"what"`
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
}

// CheckDataReads flags every read of training data that ended after the
// training budget of maxSeconds (the rules forbid reading training data
// afterwards, as GPTQ calibration did in PRs #593/#609 and the record's
// Hessians by 6.9 s, §10). recorded is false when the run did not record
// its reads: that is reported as "not recorded", never as a pass.
func CheckDataReads(reads []DataRead, recorded bool, maxSeconds float64) Check {
	c := Check{Name: "training data reads"}
	switch {
	case !recorded:
		c.Status, c.Detail = NotRecorded, "the run's results.json has no data_reads: reads of training data after the budget cannot be checked"
		return c
	case maxSeconds <= 0:
		c.Status, c.Detail = Skipped, "the run had no wall-clock training budget (max_seconds 0)"
		return c
	}
	limit := maxSeconds * 1000
	worst := 0.0
	for _, r := range reads {
		if over := r.EndMs - limit; over > 0 {
			worst = max(worst, over)
			c.Failures = append(c.Failures, fmt.Sprintf("%s read training data until %.0f ms, %.0f ms after the %.0f s budget", r.What, r.EndMs, over, maxSeconds))
		}
	}
	if len(c.Failures) > 0 {
		c.Status = Fail
		c.Detail = fmt.Sprintf("%d of %d reads of training data end after the budget (worst by %.0f ms)", len(c.Failures), len(reads), worst)
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("all %d reads of training data end within the %.0f s budget", len(reads), maxSeconds)
	return c
}
