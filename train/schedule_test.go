package train

import (
	"math"
	"testing"
	"time"
)

func TestLRScaleSteps(t *testing.T) {
	s := Schedule{Iterations: 100, Warmdown: 20}
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 1}, {79, 1}, {80, 1}, {81, 19.0 / 20}, {90, 0.5}, {99, 0.05}, {100, 1}} {
		// At step 80 the reference gives (100-80)/20 = 1: the decline starts after it.
		if got := s.LRScale(tc.step, time.Hour); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("step %d: scale %v, want %v", tc.step, got, tc.want)
		}
	}
	// A warm-down longer than the run starts at step 0.
	long := Schedule{Iterations: 10, Warmdown: 40}
	if got := long.LRScale(0, 0); got != 0.25 {
		t.Errorf("long warm-down at step 0: %v, want 0.25", got)
	}
	if got := (Schedule{Iterations: 10}).LRScale(9, 0); got != 1 {
		t.Errorf("no warm-down: %v, want 1", got)
	}
}

func TestLRScaleWallClock(t *testing.T) {
	s := Schedule{Iterations: 20000, Warmdown: 1200, MaxTime: 600 * time.Second}
	// 100 steps in 50 s: 500 ms/step, warm-down = 600 s, so the whole 550 s
	// left is inside it: scale = 550/600.
	if got, want := s.LRScale(100, 50*time.Second), 550.0/600; math.Abs(got-want) > 1e-12 {
		t.Errorf("scale %v, want %v", got, want)
	}
	// 1000 steps in 100 s: 100 ms/step, warm-down 120 s, 500 s left: full rate.
	if got := s.LRScale(1000, 100*time.Second); got != 1 {
		t.Errorf("scale %v, want 1", got)
	}
	// 5000 steps in 540 s: 108 ms/step, warm-down 129.6 s, 60 s left.
	if got, want := s.LRScale(5000, 540*time.Second), 60/129.6; math.Abs(got-want) > 1e-12 {
		t.Errorf("scale %v, want %v", got, want)
	}
	// Past the budget the rate is zero; at step 0 with no time spent it is 1.
	if got := s.LRScale(5000, 700*time.Second); got != 0 {
		t.Errorf("over budget: %v, want 0", got)
	}
	if got := s.LRScale(0, 0); got != 1 {
		t.Errorf("start: %v, want 1", got)
	}
}

func TestMomentumWarmup(t *testing.T) {
	m := DefaultOptimizer().Momentum()
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0.85}, {100, 0.87}, {250, 0.90}, {500, 0.95}, {10000, 0.95}} {
		if got := m.At(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("step %d: momentum %v, want %v", tc.step, got, tc.want)
		}
	}
	if got := (MomentumWarmup{Start: 0.5, Final: 0.9}).At(0); got != 0.9 {
		t.Errorf("no warm-up: %v, want 0.9", got)
	}
}
