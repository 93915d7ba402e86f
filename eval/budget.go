package eval

import (
	"fmt"
	"time"
)

// RecordValTargets is the number of validation targets PR #2135 scores
// (sp8192 CaseOps, truncated to whole 2560-token windows), the default size
// a Budget scales to.
const RecordValTargets = 47_851_520

// EvalLimitSeconds is the challenge's evaluation budget: 10 minutes on
// 8xH100, on top of the 10 training minutes.
const EvalLimitSeconds = 600

// BudgetDevices is the number of devices the challenge's budget is for.
const BudgetDevices = 8

// Budget estimates what an evaluation would take on the challenge's
// hardware from what it took here. The scaling assumption: every phase
// costs time linear in the number of targets; the model phases (scoring,
// adaptation, global SGD) split perfectly over BudgetDevices devices of
// the kind this one ran on, while the n-gram hints, a serial pass every
// rank makes over the whole stream, do not split:
//
//	estimate = (hints + model/devices) · fullTargets/targets
//
// On a CPU the figure says how far a run is from fitting; measured on an
// H100 it is the budget check itself.
type Budget struct {
	Targets      int64   `json:"targets"`      // targets this run scored
	FullTargets  int64   `json:"full_targets"` // targets the estimate is for
	Devices      int     `json:"devices"`
	Seconds      float64 `json:"estimate_s"`
	LimitSeconds float64 `json:"limit_s"`
	Fits         bool    `json:"fits"`
	Assumption   string  `json:"assumption"`
}

func estimateBudget(r *Result, fullTargets int64) Budget {
	if fullTargets <= 0 {
		fullTargets = RecordValTargets
	}
	var serial, parallel time.Duration
	for _, p := range r.Phases {
		if p.Name == "ngram hints" {
			serial += p.Duration
		} else {
			parallel += p.Duration
		}
	}
	if accounted := serial + parallel; r.Duration > accounted {
		parallel += r.Duration - accounted // set-up, byte counting: charge the devices
	}
	scale := float64(fullTargets) / float64(max(r.Tokens, 1))
	s := (serial.Seconds() + parallel.Seconds()/BudgetDevices) * scale
	return Budget{
		Targets: r.Tokens, FullTargets: fullTargets, Devices: BudgetDevices,
		Seconds: s, LimitSeconds: EvalLimitSeconds, Fits: s <= EvalLimitSeconds,
		Assumption: fmt.Sprintf("time linear in targets (x%.4g to %d); model phases split over %d devices like this one, n-gram hints serial",
			scale, fullTargets, BudgetDevices),
	}
}
