package train

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
)

// OpenBackend opens the compute backend that Run, NewTrainer and Evaluate
// run on, chosen as golf's commands choose it: spec "" (or "auto") takes a
// GPU through XLA's CUDA plugin when the machine has both, else the pure-Go
// backend with options that avoid its default executor's deadlock; "go",
// "cuda" and any gomlx configuration ("xla:/path/plugin.so") choose
// explicitly. It also returns a one-line description of what runs. Call
// Finalize on the backend when done with it.
func OpenBackend(spec string) (backends.Backend, string, error) {
	return compute.Open(spec)
}

// isPureGo reports whether b is gomlx's pure-Go backend, whose memory and
// speed call for smaller micro-batches.
func isPureGo(b backends.Backend) bool {
	_, ok := b.(*simplego.Backend)
	return ok
}

// forBackend returns cfg with its matmul precision settled for backend when
// the config leaves it open (ComputeDType ""): bfloat16 on accelerators, as
// the reference's autocast does, float32 on the pure-Go backend, where
// bfloat16 matmuls are about 3x slower. Master weights stay float32 either
// way, and the stored config keeps "" so a checkpoint evaluates at each
// machine's best precision.
func forBackend(backend backends.Backend, cfg model.Config) model.Config {
	if cfg.ComputeDType == "" && !isPureGo(backend) {
		cfg.ComputeDType = "bfloat16"
	}
	return cfg
}
