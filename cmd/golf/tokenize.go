package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/tokenizer"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "encode text (one document per line, or JSONL) to token ids, as spm_encode does",
		run:     runTokenize,
	})
}

func runTokenize(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "tokenize", "[FILE|-]")
	modelPath := fs.String("model", "", "SentencePiece BPE .model file (default: the embedded sp1024)")
	jsonl := fs.Bool("jsonl", false, `input is JSONL: encode each record's "text" field`)
	pieces := fs.Bool("pieces", false, "write pieces instead of ids")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: at most one input file, got %v", errUsage, fs.Args())
	}
	m, err := loadTokenizer(*modelPath)
	if err != nil {
		return err
	}
	in, name, size, closeIn, err := openInput(env, fs.Arg(0))
	if err != nil {
		return err
	}
	defer closeIn()
	// Progress goes to stderr, and only for work that lasts: a short run
	// prints nothing but its ids, as spm_encode.
	meter := progress.New(env.stderr, "tokenize", "bytes", size)
	start := time.Now()
	out := bufio.NewWriterSize(env.stdout, 256<<10)
	_, err = m.EncodeLines(ctx, out, in, tokenizer.LinesOptions{Name: name, JSONL: *jsonl, Pieces: *pieces, Progress: meter.Add})
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	if err == nil && time.Since(start) >= progressAfter {
		meter.Done()
	}
	return err
}

// progressAfter is how long tokenizing must have taken for its final
// progress line to be worth printing (the meter's own interval).
const progressAfter = 2 * time.Second

// openInput opens the named file, or standard input for "" and "-". size
// is the file's size when known (for progress), else 0.
func openInput(env *cliEnv, path string) (r io.Reader, name string, size int64, closeFn func(), err error) {
	if path == "" || path == "-" {
		return env.stdin, "standard input", 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", 0, nil, err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, path, size, func() { f.Close() }, nil
}
