package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

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
	in, name, closeIn, err := openInput(env, fs.Arg(0))
	if err != nil {
		return err
	}
	defer closeIn()
	out := bufio.NewWriterSize(env.stdout, 256<<10)
	_, err = m.EncodeLines(ctx, out, in, tokenizer.LinesOptions{Name: name, JSONL: *jsonl, Pieces: *pieces})
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	return err
}

// openInput opens the named file, or standard input for "" and "-".
func openInput(env *cliEnv, path string) (r io.Reader, name string, closeFn func(), err error) {
	if path == "" || path == "-" {
		return env.stdin, "standard input", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return f, path, func() { f.Close() }, nil
}
