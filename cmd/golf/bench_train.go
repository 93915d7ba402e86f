package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"

	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "bench train",
		summary: "time optimizer steps (compile time, ms/step, tokens/s, model TFLOP/s, fraction of the measured matmul peak) for the presets",
		run:     runBenchTrain,
	})
}

// pytorchH100StepMs is the anchor for the baseline on a GPU: the challenge's
// PyTorch train_gpt.py, unchanged, on one H100 (8 accumulation steps of
// 65,536 tokens), measured on the lent machine (shared notes, measured-here).
const pytorchH100StepMs = 355.0

// benchTrainReport is golf bench train's JSON output: one result per preset
// and attention, and the matmul peak they are compared with.
type benchTrainReport struct {
	Backend string              `json:"backend"`
	Peak    train.MatmulPeak    `json:"matmul_peak"`
	Results []train.BenchResult `json:"results"`
	Profile string              `json:"profile,omitempty"` // --profile's folder
}

func runBenchTrain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench train", "")
	presets := fs.String("preset", "", "comma-separated presets (default: tiny,tiny-record on the CPU, all four on a GPU: "+strings.Join(train.Presets, ", ")+")")
	steps := fs.Int("steps", 5, "timed optimizer steps per preset")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec")
	batchTokens := fs.Int("batch-tokens", 0, "tokens per step (default: the preset's)")
	microTokens := fs.Int("micro-batch-tokens", 0, "tokens per micro-batch and rank (default: automatic)")
	seqLen := fs.Int("seq-len", 0, "sequence length (default: the preset's)")
	attention := fs.String("attention", "", "comma-separated attention implementations to time: materialized, chunked (default: the preset's, materialized)")
	chunk := fs.Int("attention-chunk", 0, "query positions per block of the chunked attention (default 256)")
	muonDType := fs.String("muon-dtype", "auto", "Newton-Schulz dtype: auto (float32 on the pure-Go backend, bfloat16 on accelerators), bfloat16 or float32")
	devices := fs.Int("devices", 1, "data-parallel ranks, one per device (the batch is split among them)")
	profile := fs.String("profile", "", "folder for profiles: XLA's HLO dumps and buffer assignments on XLA (a memory.txt summary), a Go CPU profile per run (cpu-PRESET-ATTENTION.pprof, a per-op breakdown) on the pure-Go backend")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *steps < 1 || *devices < 1 || *chunk < 0 || fs.NArg() > 0 {
		return fmt.Errorf("%w: --steps and --devices must be >= 1, --attention-chunk >= 0, and no arguments are taken", errUsage)
	}
	impls, err := attentionList(*attention)
	if err != nil {
		return err
	}
	var nsDType dtypes.DType
	switch *muonDType {
	case "auto":
	case "bfloat16", "bf16":
		nsDType = dtypes.BFloat16
	case "float32", "f32":
		nsDType = dtypes.Float32
	default:
		return fmt.Errorf("%w: --muon-dtype must be auto, bfloat16 or float32, got %q", errUsage, *muonDType)
	}
	pureGo := compute.IsPureGo(compute.Resolve(*backendSpec))
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
		if !pureGo {
			// XLA reads its flags when the plugin starts: set them before
			// the backend opens.
			dump, err := filepath.Abs(filepath.Join(*profile, "hlo"))
			if err != nil {
				return fmt.Errorf("--profile: %w", err)
			}
			os.Setenv("XLA_FLAGS", strings.TrimSpace(os.Getenv("XLA_FLAGS")+" --xla_dump_to="+dump+" --xla_dump_hlo_as_text"))
		}
	}
	backend, desc, err := compute.Open(*backendSpec)
	if err != nil {
		return err
	}
	names := *presets
	if names == "" {
		names = "tiny,tiny-record"
		if !pureGo {
			names = strings.Join(train.Presets, ",")
		}
	}
	rep := benchTrainReport{Backend: desc, Profile: *profile}
	log := outf.progress(env)
	if log != nil {
		fmt.Fprintln(log, "bench: measuring the matmul peak")
	}
	if rep.Peak, err = train.MeasureMatmulPeak(ctx, backend); err != nil {
		return err
	}
	for _, name := range strings.Split(names, ",") {
		cfg, s, err := train.PresetSettings(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if *seqLen > 0 {
			s.SeqLen = *seqLen
		}
		if *batchTokens > 0 {
			s.BatchTokens = *batchTokens
		}
		s.MicroBatchTokens = *microTokens
		s.Optimizer.NewtonSchulzDType = nsDType
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		for _, impl := range impls {
			c := cfg
			if impl != "" {
				c.AttentionImpl = impl
			}
			if *chunk > 0 {
				c.AttentionChunk = *chunk
			}
			opts := train.BenchOptions{Steps: *steps, Log: log, Devices: *devices}
			var prof *os.File
			if *profile != "" && pureGo {
				path := filepath.Join(*profile, fmt.Sprintf("cpu-%s-%s.pprof", s.Preset, attentionOrDefault(impl)))
				if prof, err = os.Create(path); err != nil {
					return fmt.Errorf("--profile: %w", err)
				}
				opts.CPUProfile = prof
			}
			r, err := train.Bench(ctx, backend, c, s, opts)
			if prof != nil {
				if cerr := prof.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("--profile: %w", cerr)
				}
			}
			if err != nil {
				return err
			}
			r.SetPeak(rep.Peak)
			rep.Results = append(rep.Results, r)
		}
	}
	var memory []string
	if *profile != "" && !pureGo {
		if memory, err = summarizeXLAMemory(filepath.Join(*profile, "hlo"), filepath.Join(*profile, "memory.txt")); err != nil {
			return err
		}
	}
	return outf.emit(env, rep, func(w io.Writer) error { return printBenchTrain(w, rep, pureGo, memory) })
}

// attentionList parses --attention: "" keeps each preset's own.
func attentionList(s string) ([]string, error) {
	if s == "" {
		return []string{""}, nil
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a != "materialized" && a != "chunked" {
			return nil, fmt.Errorf("%w: --attention %q: want materialized or chunked", errUsage, a)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

func attentionOrDefault(impl string) string {
	if impl == "" {
		return "preset"
	}
	return impl
}

// printBenchTrain prints golf bench train's table.
func printBenchTrain(w io.Writer, rep benchTrainReport, pureGo bool, memory []string) error {
	t := report.NewTable("golf bench train: "+rep.Backend, "preset", "attention", "params", "batch", "devices x micro x accum",
		"compile s", "ms/step", "min", "max", "tokens/s", "model TFLOP/s", "of peak")
	for _, r := range rep.Results {
		t.Add(r.Preset, r.Attention, r.Params, r.BatchTokens, fmt.Sprintf("%d x %d x %d", r.Devices, r.MicroTokens, r.AccumSteps),
			fmt.Sprintf("%.1f", r.CompileMs/1000), fmt.Sprintf("%.1f", r.StepMs), fmt.Sprintf("%.1f", r.StepMsMin),
			fmt.Sprintf("%.1f", r.StepMsMax), fmt.Sprintf("%.0f", r.TokensPerS), fmt.Sprintf("%.3g", r.ModelTFLOPs),
			fmt.Sprintf("%.1f%%", 100*r.PeakFraction))
	}
	if err := t.Print(w); err != nil {
		return err
	}
	p := rep.Peak
	fmt.Fprintf(w, "matmul peak, same run: %.4g TFLOP/s (a chain of %d %s %d^3 products, best of %d)\n", p.TFLOPs, p.Chain, p.DType, p.Size, p.Runs)
	fmt.Fprintln(w, "model TFLOP/s: weight matmuls once per virtual layer plus attention at the sequence length, x3 for training (PaLM's count)")
	for _, r := range rep.Results {
		if r.Preset == "baseline" && r.BatchTokens == 524288 && !pureGo {
			fmt.Fprintf(w, "baseline (%s attention) vs PyTorch train_gpt.py on one H100 (%.0f ms/step, measured separately): %.2fx its step time\n",
				r.Attention, pytorchH100StepMs, r.StepMs/pytorchH100StepMs)
		}
	}
	if rep.Profile != "" {
		if pureGo {
			fmt.Fprintf(w, "CPU profiles in %s: go tool pprof -top <golf binary> %s\n", rep.Profile, filepath.Join(rep.Profile, "cpu-*.pprof"))
		} else {
			fmt.Fprintf(w, "XLA dumps in %s; peak memory per compiled program (buffer assignment):\n", filepath.Join(rep.Profile, "hlo"))
			for _, m := range memory {
				fmt.Fprintln(w, "  "+m)
			}
		}
	}
	return nil
}

// totalBytesUsed matches the total of an XLA buffer-assignment dump.
var totalBytesUsed = regexp.MustCompile(`Total bytes used: (\d+)`)

// summarizeXLAMemory reads the buffer assignments XLA dumped into dir (one
// per compiled program) and writes to out, and returns, one line per
// program, largest first: "module: N bytes (G GiB)".
func summarizeXLAMemory(dir, out string) ([]string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*buffer-assignment.txt"))
	type prog struct {
		name  string
		bytes int64
	}
	var progs []prog
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--profile: %w", err)
		}
		if m := totalBytesUsed.FindSubmatch(data); m != nil {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			progs = append(progs, prog{strings.TrimSuffix(filepath.Base(f), ".txt"), n})
		}
	}
	slices.SortFunc(progs, func(a, b prog) int { return int(b.bytes - a.bytes) })
	lines := []string{}
	for _, p := range progs {
		lines = append(lines, fmt.Sprintf("%s: %d bytes (%.2f GiB)", p.name, p.bytes, float64(p.bytes)/(1<<30)))
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("no buffer assignment with a total found among %d dumps in %s", len(files), dir))
	}
	err := atomicfile.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"))
	return lines, err
}
