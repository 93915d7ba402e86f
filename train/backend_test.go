package train

import (
	"testing"

	"github.com/paramgolf/golf/model"
)

func TestForBackendPicksPrecision(t *testing.T) {
	b, _, err := OpenBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := model.Preset("tiny")
	if got := forBackend(b, cfg).ComputeDType; got != "" {
		t.Errorf("pure Go: compute dtype %q, want float32 (\"\")", got)
	}
	cfg.ComputeDType = "bfloat16"
	if got := forBackend(b, cfg).ComputeDType; got != "bfloat16" {
		t.Errorf("an explicit choice was overridden: %q", got)
	}
}
