package compute

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
)

func TestResolveNeverPicksTheDeadlockingDefault(t *testing.T) {
	t.Setenv(backends.ConfigEnvVar, "")
	for spec, want := range map[string]string{"go": SafeGoConfig, "cpu": SafeGoConfig, "go:ops_sequential": "go:ops_sequential"} {
		if got := Resolve(spec); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", spec, got, want)
		}
	}
	if FindCUDAPlugin() == "" {
		if got := Resolve(""); got != SafeGoConfig {
			t.Errorf("no GPU here: Resolve(\"\") = %q, want %q", got, SafeGoConfig)
		}
	}
	t.Setenv(backends.ConfigEnvVar, "go")
	if got := Resolve(""); got != SafeGoConfig {
		t.Errorf("GOMLX_BACKEND=go resolved to %q", got)
	}
}

func TestOpenPureGoAndBadName(t *testing.T) {
	b, desc, err := Open("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if desc == "" || !IsPureGo(Resolve("go")) {
		t.Errorf("backend %q, description %q", b.Name(), desc)
	}
	if _, _, err := Open("nosuchbackend"); err == nil {
		t.Error("an unknown backend must be an error, not a panic")
	}
}

// Asking for a GPU where golf finds none is a clear error that says what
// was looked for and how to fix it, not GoMLX's raw message.
func TestOpenGPUWithoutOneIsAClearError(t *testing.T) {
	t.Setenv(backends.ConfigEnvVar, "")
	if FindCUDAPlugin() != "" {
		t.Skip("this machine has a GPU and a CUDA plugin")
	}
	for _, spec := range []string{"cuda", "gpu", "xla:/nonexistent/pjrt_c_api_cuda_plugin.so"} {
		_, _, err := Open(spec)
		if !errors.Is(err, ErrNoGPU) || !strings.Contains(err.Error(), "--backend") {
			t.Errorf("Open(%q): %v, want ErrNoGPU with what to do", spec, err)
		}
	}
}
