package train

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// TestNewtonSchulzDTypeByBackend: every preset leaves the Newton-Schulz
// dtype to the backend, which settles it when a trainer is made: float32
// on the pure-Go backend (bfloat16 is 1.6x slower there), bfloat16, the
// reference's, on accelerators; an explicit choice is kept.
func TestNewtonSchulzDTypeByBackend(t *testing.T) {
	for _, p := range Presets {
		_, s, err := PresetSettings(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.Optimizer.NewtonSchulzDType != dtypes.InvalidDType {
			t.Errorf("preset %s fixes the Newton-Schulz dtype to %s instead of leaving it to the backend", p, s.Optimizer.NewtonSchulzDType)
		}
		if got := s.Optimizer.ResolveNewtonSchulz(true).NewtonSchulzDType; got != dtypes.Float32 {
			t.Errorf("%s on the pure-Go backend: %s", p, got)
		}
		if got := s.Optimizer.ResolveNewtonSchulz(false).NewtonSchulzDType; got != dtypes.BFloat16 {
			t.Errorf("%s on an accelerator: %s", p, got)
		}
	}
	explicit := DefaultOptimizer()
	explicit.NewtonSchulzDType = dtypes.BFloat16
	if got := explicit.ResolveNewtonSchulz(true).NewtonSchulzDType; got != dtypes.BFloat16 {
		t.Errorf("an explicit bfloat16 became %s", got)
	}
	tr := newToyTrainer(t, DefaultOptimizer(), 1, 1)
	if got := tr.Optimizer().NewtonSchulzDType; got != dtypes.Float32 {
		t.Errorf("a trainer on the pure-Go backend runs Newton-Schulz in %s", got)
	}
}
