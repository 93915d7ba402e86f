package compute

import (
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
