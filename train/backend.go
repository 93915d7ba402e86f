package train

import (
	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/internal/compute"
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
func isPureGo(b backends.Backend) bool { return b.Name() == "go" }
