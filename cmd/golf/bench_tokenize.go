package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/tokenizer"
)

func init() {
	register(&command{
		name:    "bench tokenize",
		summary: "encoding throughput against spm_encode on the same file, with an output check",
		run:     runBenchTokenize,
	})
}

func runBenchTokenize(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "bench tokenize", "[FILE]")
	modelPath := fs.String("model", "", "SentencePiece BPE .model file (default: the embedded sp1024)")
	runs := fs.Int("runs", 1, "runs of each encoder; the fastest counts")
	workers := fs.Int("workers", 0, "encoding goroutines (default: GOMAXPROCS)")
	spm := fs.String("spm-encode", "", "reference command (default: spm_encode on PATH; skipped when absent)")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: at most one input file, got %v", errUsage, fs.Args())
	}
	if *runs < 1 {
		return fmt.Errorf("%w: --runs must be at least 1", errUsage)
	}
	m, err := loadTokenizer(*modelPath)
	if err != nil {
		return err
	}
	input := fs.Arg(0)
	if input == "" {
		// The embedded corpus, one document per line (its documents hold no
		// newlines), in a temporary file both encoders read.
		dir, err := os.MkdirTemp("", "golf-bench-tokenize-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if input, err = writeCorpusLines(filepath.Join(dir, corpus.Name+".txt")); err != nil {
			return err
		}
	}
	res, err := m.Bench(ctx, tokenizer.BenchOptions{Input: input, ModelFile: *modelPath, SPMEncode: *spm, Runs: *runs, Workers: *workers})
	if err != nil {
		return err
	}
	if fs.Arg(0) == "" {
		res.Input = "embedded corpus " + corpus.Name
	}
	if err := outf.emit(env, res, func(w io.Writer) error { return printBenchTokenize(w, res) }); err != nil {
		return err
	}
	if res.Reference != nil && !res.Identical {
		return fmt.Errorf("output differs from spm_encode on %s", res.Input)
	}
	return nil
}

// printBenchTokenize prints golf bench tokenize's table.
func printBenchTokenize(w io.Writer, res *tokenizer.BenchResult) error {
	t := report.NewTable(fmt.Sprintf("tokenize %s: %s, %.2f MB, %d documents", res.Model, res.Input, float64(res.InputBytes)/1e6, res.Docs),
		"encoder", "workers", "seconds", "MB/s", "x spm_encode", "identical")
	all := res.Runs
	if res.Reference != nil {
		all = append(all, *res.Reference)
	}
	for _, r := range all {
		ratio, same := "n/a", "n/a"
		if res.Reference != nil {
			ratio = fmt.Sprintf("%.2f", res.Reference.Seconds/r.Seconds)
			same = yesNo(r.SHA256 == res.Reference.SHA256)
		}
		t.Add(r.Encoder, r.Workers, r.Seconds, r.MBps, ratio, same)
	}
	if err := t.Print(w); err != nil {
		return err
	}
	if res.Reference == nil {
		fmt.Fprintln(w, "spm_encode not found: reference skipped")
	}
	return nil
}

// writeCorpusLines writes the embedded corpus to path, one document per
// line, and returns path.
func writeCorpusLines(path string) (string, error) {
	docs, err := corpus.Documents()
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, d := range docs {
		if strings.ContainsRune(d.Text, '\n') {
			return "", fmt.Errorf("corpus document %q holds a newline; it cannot be one line", d.ID)
		}
		sb.WriteString(d.Text)
		sb.WriteByte('\n')
	}
	return path, os.WriteFile(path, []byte(sb.String()), 0o644)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
