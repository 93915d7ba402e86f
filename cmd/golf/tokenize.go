package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
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
	outf := addOutputFlags(fs)
	fs.Lookup("json").Usage = "write each document as a JSON array (of ids, or of piece strings) instead of a space-separated line"
	fs.Lookup("json-out").Usage = "also write the counts (documents, tokens, bytes) as JSON to this file"
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
	meter := progress.New(outf.progress(env), "tokenize", "bytes", size)
	start := time.Now()
	out := bufio.NewWriterSize(env.stdout, 256<<10)
	var w io.Writer = out
	var jw *jsonLines
	if outf.json {
		jw = &jsonLines{w: out, strings: *pieces}
		w = jw
	}
	stats, err := m.EncodeLines(ctx, w, in, tokenizer.LinesOptions{Name: name, JSONL: *jsonl, Pieces: *pieces, Progress: meter.Add})
	if err == nil && jw != nil {
		err = jw.flush()
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	if err == nil && time.Since(start) >= progressAfter {
		meter.Done()
	}
	if err == nil && outf.jsonOut != "" {
		err = report.SaveJSON(outf.jsonOut, tokenizeCounts{Input: name, Docs: stats.Docs, Tokens: stats.Tokens, Bytes: stats.Bytes})
	}
	return err
}

// tokenizeCounts is golf tokenize's --json-out record.
type tokenizeCounts struct {
	Input  string `json:"input"`
	Docs   int64  `json:"docs"`
	Tokens int64  `json:"tokens"`
	Bytes  int64  `json:"bytes"` // input bytes, newlines included
}

// jsonLines rewrites EncodeLines's output, one space-separated line per
// document, as one JSON array per line: [1,2,3], or ["▁a","b"] for pieces
// (pieces never hold a space: SentencePiece writes it as ▁).
type jsonLines struct {
	w       io.Writer
	strings bool
	partial []byte
}

func (j *jsonLines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			j.partial = append(j.partial, p...)
			break
		}
		line := append(j.partial, p[:i]...)
		j.partial = j.partial[:0]
		if err := j.line(line); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (j *jsonLines) line(line []byte) error {
	fields := strings.Fields(string(line))
	var b []byte
	var err error
	if j.strings {
		b, err = json.Marshal(append([]string{}, fields...))
	} else {
		ids := make([]json.Number, len(fields))
		for i, f := range fields {
			ids[i] = json.Number(f)
		}
		b, err = json.Marshal(ids)
	}
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

func (j *jsonLines) flush() error {
	if len(j.partial) == 0 {
		return nil
	}
	err := j.line(j.partial)
	j.partial = nil
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
