package tokenizer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// BenchOptions configures Bench.
type BenchOptions struct {
	// Input is a text file with one document per line (the format of
	// `golf tokenize` and spm_encode).
	Input string
	// ModelFile is the .model file the reference encodes with; it must hold
	// the same model as the one benchmarked. Empty means the embedded
	// default model, written to a temporary file for the reference.
	ModelFile string
	// SPMEncode is the reference command; empty means "spm_encode" looked up
	// on PATH, and the reference side is skipped when there is none.
	SPMEncode string
	// Runs is how many times each side runs; the fastest run counts
	// (default 1).
	Runs int
	// Workers is the number of encoding goroutines (default GOMAXPROCS).
	Workers int
}

// BenchRun is the outcome of one encoder on the benchmark input.
type BenchRun struct {
	Encoder string  `json:"encoder"`
	Workers int     `json:"workers"`
	Seconds float64 `json:"seconds"` // fastest run, wall clock
	MBps    float64 `json:"mb_per_s"`
	Tokens  int64   `json:"tokens,omitempty"`
	SHA256  string  `json:"output_sha256"`
}

// BenchResult compares this package's encoder with the reference
// spm_encode on the same file. Ratio is reference seconds / our seconds
// (higher is better for us); Identical reports whether both wrote the same
// bytes.
type BenchResult struct {
	Model      string     `json:"model"`
	Input      string     `json:"input"`
	InputBytes int64      `json:"input_bytes"`
	Docs       int64      `json:"docs"`
	Runs       []BenchRun `json:"runs"`
	// Reference is nil when spm_encode was not found.
	Reference *BenchRun `json:"reference,omitempty"`
	Ratio     float64   `json:"ratio,omitempty"`
	Identical bool      `json:"identical"`
}

// Bench measures the encoding throughput of m on opt.Input, with all
// workers and with one, and that of the reference spm_encode
// (`spm_encode --model M --output_format=id < Input`), checking that the
// outputs are identical. Throughput is input megabytes (10^6 bytes) per
// second of wall-clock time, including reading the file and writing the ids.
// Each of our runs starts with an empty word cache (Bench empties m's), so
// the figures include learning the input's vocabulary of words.
func (m *Model) Bench(ctx context.Context, opt BenchOptions) (*BenchResult, error) {
	runs := max(opt.Runs, 1)
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	st, err := os.Stat(opt.Input)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: bench: %w", err)
	}
	res := &BenchResult{Model: m.name, Input: opt.Input, InputBytes: st.Size()}

	counts := []int{workers}
	if workers > 1 {
		counts = append(counts, 1)
	}
	for _, w := range counts {
		run := BenchRun{Encoder: "golf", Workers: w, Seconds: -1}
		for range runs {
			f, err := os.Open(opt.Input)
			if err != nil {
				return nil, fmt.Errorf("tokenizer: bench: %w", err)
			}
			h := sha256.New()
			m.cache.reset()
			start := time.Now()
			ls, err := m.EncodeLines(ctx, h, f, LinesOptions{Name: opt.Input, Workers: w})
			sec := time.Since(start).Seconds()
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("tokenizer: bench: %w", err)
			}
			if run.Seconds < 0 || sec < run.Seconds {
				run.Seconds = sec
			}
			run.Tokens, run.SHA256, res.Docs = ls.Tokens, fmt.Sprintf("%x", h.Sum(nil)), ls.Docs
		}
		run.MBps = float64(res.InputBytes) / 1e6 / run.Seconds
		res.Runs = append(res.Runs, run)
	}

	ref, err := m.benchReference(ctx, opt, runs)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: bench: %w", err)
	}
	if ref != nil {
		res.Reference = ref
		res.Ratio = ref.Seconds / res.Runs[0].Seconds
		res.Identical = ref.SHA256 == res.Runs[0].SHA256
	}
	return res, nil
}

// benchReference times spm_encode; it returns nil when the command is absent.
func (m *Model) benchReference(ctx context.Context, opt BenchOptions, runs int) (*BenchRun, error) {
	cmdName := opt.SPMEncode
	if cmdName == "" {
		cmdName = "spm_encode"
	}
	path, err := exec.LookPath(cmdName)
	if err != nil {
		if opt.SPMEncode == "" {
			return nil, nil // not installed: the reference side is optional
		}
		return nil, err
	}
	modelFile := opt.ModelFile
	if modelFile == "" {
		dir, err := os.MkdirTemp("", "golf-bench-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		modelFile = filepath.Join(dir, DefaultModelName)
		if err := os.WriteFile(modelFile, defaultModelData, 0o644); err != nil {
			return nil, err
		}
	}
	run := &BenchRun{Encoder: "spm_encode", Workers: 1, Seconds: -1}
	for range runs {
		f, err := os.Open(opt.Input)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, path, "--model", modelFile, "--output_format=id")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, h, &stderr
		start := time.Now()
		err = cmd.Run()
		sec := time.Since(start).Seconds()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %s", path, err, lastLine(stderr.Bytes()))
		}
		if run.Seconds < 0 || sec < run.Seconds {
			run.Seconds = sec
		}
		run.SHA256 = fmt.Sprintf("%x", h.Sum(nil))
	}
	st, err := os.Stat(opt.Input)
	if err != nil {
		return nil, err
	}
	run.MBps = float64(st.Size()) / 1e6 / run.Seconds
	return run, nil
}

// lastLine returns the last non-empty line of b, for error messages.
func lastLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}
