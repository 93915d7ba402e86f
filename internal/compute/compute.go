// Package compute chooses and opens the GoMLX backend that golf runs on.
//
// The rule, in order:
//  1. an explicit spec (the --backend flag), else $GOMLX_BACKEND;
//  2. otherwise, when an NVIDIA GPU and a CUDA PJRT plugin are present, XLA
//     with that plugin given by absolute path (which also keeps go-xla from
//     trying to download plugins);
//  3. otherwise the pure-Go backend.
//
// The pure-Go backend is always opened with "parallelism=-1" unless the spec
// names its own options: gomlx v0.26.0's default bounded worker pool deadlocks
// in transformer training on small machines (tasks fill every worker slot and
// then wait for slots for their sub-tasks), while unbounded parallelism never
// hung and was the fastest safe choice measured.
package compute

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // the pure-Go backend, "go"
	_ "github.com/gomlx/gomlx/backends/xla"      // XLA through PJRT plugins, "xla"
)

// SafeGoConfig is the pure-Go backend configuration golf uses by default.
const SafeGoConfig = "go:parallelism=-1"

// pluginGlobs are the places a CUDA PJRT plugin is looked for: the JAX CUDA
// plugin wheels (where the lent GPU machines have one) and go-xla's standard
// install folders.
var pluginGlobs = []string{
	"/opt/*/.venv/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"/usr/local/lib/python3*/*-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"$HOME/.local/lib/python3*/site-packages/jax_plugins/xla_cuda*/xla_cuda_plugin.so",
	"$HOME/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so", // go-xla's installer (-autoinstall)
	"/usr/local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so",
	"$HOME/.local/lib/go-xla/pjrt_c_api_cuda_plugin.so",
	"/usr/local/lib/go-xla/pjrt_c_api_cuda_plugin.so",
}

// Resolve returns the backend configuration string that Open would use for
// spec, without opening anything.
func Resolve(spec string) string {
	if spec == "" {
		spec = os.Getenv(backends.ConfigEnvVar)
	}
	switch {
	case spec == "" || spec == "auto":
		if p := FindCUDAPlugin(); p != "" {
			return "xla:" + p
		}
		return SafeGoConfig
	case spec == "go" || spec == "cpu":
		return SafeGoConfig
	case spec == "cuda" || spec == "xla:cuda" || spec == "gpu":
		if p := FindCUDAPlugin(); p != "" {
			return "xla:" + p
		}
		return spec
	}
	return spec
}

// Open opens the backend for spec ("" or "auto" for the rule in the package
// comment, "go", "cuda", or any gomlx configuration such as "xla:/path.so").
// It returns the backend and a one-line description of what runs.
func Open(spec string) (b backends.Backend, desc string, err error) {
	config := Resolve(spec)
	if err := checkGPUConfig(config); err != nil {
		return nil, "", err
	}
	if strings.HasPrefix(config, "xla") {
		// Never let go-xla reach for the network; where the plugin came from
		// our own search, also point XLA at libdevice.
		os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
		if !strings.Contains(os.Getenv("XLA_FLAGS"), "xla_gpu_cuda_data_dir") {
			if dir := cudaDataDir(); dir != "" {
				os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_gpu_cuda_data_dir="+dir))
			}
		}
	}
	defer func() {
		// backends.NewWithConfig panics on an unknown backend name.
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("open backend %q: %v", config, r)
		}
	}()
	if IsPureGo(config) {
		// simplego prints "parallelism set to ..." on stdout, which would
		// corrupt a command's JSON output: silence it while constructing.
		if devnull, derr := os.Open(os.DevNull); derr == nil {
			saved := os.Stdout
			os.Stdout = devnull
			defer func() { os.Stdout = saved; devnull.Close() }()
		}
	}
	b, err = backends.NewWithConfig(config)
	if err != nil {
		return nil, "", fmt.Errorf("open backend %q: %w", config, err)
	}
	return b, fmt.Sprintf("%s (%s)", b.Description(), config), nil
}

// ErrNoGPU is wrapped by Open's error when a GPU backend was asked for and
// this machine has no NVIDIA GPU or no CUDA PJRT plugin golf can find.
var ErrNoGPU = errors.New("no GPU backend")

// gpuHelp says how to get a CUDA PJRT plugin (the README says more).
const gpuHelp = "install one (go-xla's installer: go run github.com/gomlx/go-xla/cmd/pjrt_installer@latest -autoinstall, " +
	"or JAX's plugin wheel: pip install \"jax[cuda13]\"; see the README, \"Running on your own GPU\") " +
	"or name it: --backend xla:/path/to/plugin.so (or GOMLX_BACKEND)"

// checkGPUConfig turns a GPU configuration that cannot work into a clear
// error before gomlx is asked (its own message names neither the files
// looked for nor the fix): "cuda" left unresolved means no plugin was
// found, and an "xla:/path" plugin must exist.
func checkGPUConfig(config string) error {
	switch {
	case config == "cuda" || config == "xla:cuda" || config == "gpu":
		if _, err := os.Stat("/dev/nvidia0"); err != nil {
			return fmt.Errorf("open backend %q: %w: this machine has no NVIDIA GPU (no /dev/nvidia0); use --backend go for the CPU", config, ErrNoGPU)
		}
		return fmt.Errorf("open backend %q: %w: no CUDA PJRT plugin found (looked for %s); %s", config, ErrNoGPU, strings.Join(pluginGlobs, ", "), gpuHelp)
	case strings.HasPrefix(config, "xla:") && strings.HasSuffix(config, ".so"):
		path := strings.TrimPrefix(config, "xla:")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("open backend %q: %w: the PJRT plugin %s does not exist; %s", config, ErrNoGPU, path, gpuHelp)
		}
	}
	return nil
}

// IsPureGo reports whether the backend configuration is gomlx's pure-Go one.
func IsPureGo(config string) bool {
	return config == "go" || strings.HasPrefix(config, "go:")
}

// FindCUDAPlugin returns the path of a CUDA PJRT plugin when this machine has
// an NVIDIA GPU and such a plugin, or "".
func FindCUDAPlugin() string {
	if _, err := os.Stat("/dev/nvidia0"); err != nil {
		return ""
	}
	home, _ := os.UserHomeDir()
	for _, g := range pluginGlobs {
		g = strings.ReplaceAll(g, "$HOME", home)
		if matches, _ := filepath.Glob(g); len(matches) > 0 {
			return matches[len(matches)-1]
		}
	}
	return ""
}

func cudaDataDir() string {
	for _, d := range []string{"/usr/local/cuda", "/usr/lib/cuda"} {
		if _, err := os.Stat(filepath.Join(d, "nvvm", "libdevice")); err == nil {
			return d
		}
	}
	return ""
}
