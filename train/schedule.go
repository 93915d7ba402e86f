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
type Schedule struct {
	Iterations int           // step budget (the reference's ITERATIONS)
	Warmdown   int           // warm-down length in steps (WARMDOWN_ITERS); <= 0 disables it
	MaxTime    time.Duration // wall-clock training budget (MAX_WALLCLOCK_SECONDS); 0 for none
}

// LRScale returns the multiplier of every base learning rate for the
// optimizer step numbered step (0-based), elapsed training time into the run.
func (s Schedule) LRScale(step int, elapsed time.Duration) float64 {
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
