package train

import (
	"fmt"
	"time"
)

// Schedule is the challenge baseline's learning-rate schedule: the learning
// rate stays at its base value, then falls linearly to zero over the last
// Warmdown steps.
//
// Without a wall-clock cap (MaxTime == 0) the warm-down covers steps
// [Iterations-Warmdown, Iterations):
//
//	scale(step) = (Iterations - step) / Warmdown   when Iterations-Warmdown <= step < Iterations
//	scale(step) = 1                                 otherwise
//
// Under a wall-clock cap the number of steps left is unknown, so it is
// estimated from the mean step time so far, exactly as the reference's lr_mul:
//
//	stepTime  = elapsed / max(step, 1)
//	warmdown  = Warmdown * stepTime          (the warm-down as a duration)
//	remaining = max(MaxTime - elapsed, 0)
//	scale     = remaining / warmdown  when remaining <= warmdown, else 1
//
// so the rate reaches zero when the clock runs out. The step-based warm-down
// is not applied under a cap (the reference does the same).
//
// With WarmdownFrac > 0 (the record's lr_mul, record-stack.md §3.3) the
// warm-down is a fraction of the run instead, with a floor:
//
//	frac  = elapsed / MaxTime   (under a cap; else step / Iterations)
//	scale = max((1 - frac) / WarmdownFrac, MinLR)   when frac >= 1 - WarmdownFrac
//	scale = 1                                        otherwise
//
// MinLR also floors the step-count warm-downs above.
type Schedule struct {
	Iterations int           // step budget (the reference's ITERATIONS)
	Warmdown   int           // warm-down length in steps (WARMDOWN_ITERS); <= 0 disables it
	MaxTime    time.Duration // wall-clock training budget (MAX_WALLCLOCK_SECONDS); 0 for none
	// WarmdownFrac, when > 0, is the warm-down's share of the run
	// (WARMDOWN_FRAC, record 0.85) and replaces Warmdown.
	WarmdownFrac float64
	// MinLR is the floor of the warm-down's multiplier (MIN_LR, record 0.1).
	MinLR float64
}

// Frac is how far into the run optimizer step step is: elapsed/MaxTime
// under a wall-clock cap, else step/Iterations (the record's training_frac).
func (s Schedule) Frac(step int, elapsed time.Duration) float64 {
	if s.MaxTime > 0 {
		return float64(elapsed) / float64(s.MaxTime)
	}
	return float64(step) / float64(max(s.Iterations, 1))
}

// LRScale returns the multiplier of every base learning rate for the
// optimizer step numbered step (0-based), elapsed training time into the run.
func (s Schedule) LRScale(step int, elapsed time.Duration) float64 {
	if s.WarmdownFrac > 0 {
		frac := s.Frac(step, elapsed)
		if frac >= 1-s.WarmdownFrac {
			return max((1-frac)/s.WarmdownFrac, s.MinLR)
		}
		return 1
	}
	return max(s.warmdownScale(step, elapsed), s.MinLR)
}

// warmdownScale is the baseline's step-count warm-down.
func (s Schedule) warmdownScale(step int, elapsed time.Duration) float64 {
	if s.Warmdown <= 0 {
		return 1
	}
	if s.MaxTime <= 0 {
		start := max(s.Iterations-s.Warmdown, 0)
		if step >= start && step < s.Iterations {
			return max(float64(s.Iterations-step)/float64(max(s.Warmdown, 1)), 0)
		}
		return 1
	}
	elapsedMs := float64(elapsed) / float64(time.Millisecond)
	stepMs := elapsedMs / float64(max(step, 1))
	warmdownMs := float64(s.Warmdown) * stepMs
	remainingMs := max(float64(s.MaxTime)/float64(time.Millisecond)-elapsedMs, 0)
	if remainingMs <= warmdownMs {
		return remainingMs / max(warmdownMs, 1e-9)
	}
	return 1
}

// Validate reports a schedule that cannot run.
func (s Schedule) Validate() error {
	if s.Iterations <= 0 {
		return fmt.Errorf("schedule: iterations must be positive, got %d", s.Iterations)
	}
	if s.MaxTime < 0 {
		return fmt.Errorf("schedule: negative wall-clock budget %v", s.MaxTime)
	}
	if s.WarmdownFrac < 0 || s.WarmdownFrac > 1 || s.MinLR < 0 || s.MinLR > 1 {
		return fmt.Errorf("schedule: warmdown fraction %g and min lr %g must be in [0, 1]", s.WarmdownFrac, s.MinLR)
	}
	return nil
}

// MomentumWarmup is Muon's momentum schedule: linear from Start to Final over
// the first Steps optimizer steps, then Final:
//
//	frac     = min(step / Steps, 1)       (1 when Steps <= 0)
//	momentum = (1 - frac) * Start + frac * Final
type MomentumWarmup struct {
	Start, Final float64
	Steps        int
}

// At returns the momentum for optimizer step step (0-based).
func (m MomentumWarmup) At(step int) float64 {
	frac := 1.0
	if m.Steps > 0 {
		frac = min(float64(step)/float64(m.Steps), 1)
	}
	return (1-frac)*m.Start + frac*m.Final
}
