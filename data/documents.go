package data

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
)

// ReadOptions says how ReadDocuments splits its inputs into documents.
type ReadOptions struct {
	// Format of the inputs (FormatAuto: by each input's name), as in
	// BuildOptions.
	Format Format
	// BlankLineDocs splits plain-text inputs at blank lines, as in
	// BuildOptions.
	BlankLineDocs bool
	// Lines makes every line a document of its own: each line of a
	// plain-text input, split at "\n" only ("\r" stays), as spm_train reads
	// its input files (std::getline); each line of each JSONL document's
	// text. Empty lines are documents too (empty ones).
	Lines bool
}

// ReadDocuments streams the documents of inputs, in order, as Build reads
// them (plain text, JSONL with a "text" field, either gzip- or
// zstd-compressed), or their lines with opt.Lines. An input that cannot be
// read or parsed yields an error naming it (and the line), which ends the
// sequence.
func ReadDocuments(inputs []Input, opt ReadOptions) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		bopt := BuildOptions{Format: opt.Format, BlankLineDocs: opt.BlankLineDocs && !opt.Lines}
		for _, in := range inputs {
			if in.Name == "" && in.R == nil {
				yield("", errors.New("data: an input has neither a name nor a reader"))
				return
			}
			_, dr, _, closeFn, err := openInput(in, bopt)
			if err != nil {
				yield("", fmt.Errorf("data: %w", err))
				return
			}
			ok := readInput(dr, in, opt, yield)
			closeFn()
			if !ok {
				return
			}
		}
	}
}

// readInput yields one input's documents; false means stop.
func readInput(dr *docReader, in Input, opt ReadOptions, yield func(string, error) bool) bool {
	jsonl := dr.format == FormatJSONL
	if opt.Lines && !jsonl {
		for {
			line, err := dr.readLine()
			if errors.Is(err, io.EOF) {
				return true
			}
			if err != nil {
				return yield("", fmt.Errorf("data: %w", err))
			}
			if n := len(line); n > 0 && line[n-1] == '\n' {
				line = line[:n-1]
			}
			if !yield(string(line), nil) {
				return false
			}
		}
	}
	for {
		text, line, err := dr.next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err == nil && jsonl {
			text, err = decodeJSONL(in.Name, line, text)
		}
		if err != nil {
			return yield("", fmt.Errorf("data: %w", err))
		}
		if !opt.Lines {
			if !yield(text, nil) {
				return false
			}
			continue
		}
		for start := 0; ; {
			i := strings.IndexByte(text[start:], '\n')
			if i < 0 {
				if !yield(text[start:], nil) {
					return false
				}
				break
			}
			if !yield(text[start:start+i], nil) {
				return false
			}
			start += i + 1
		}
	}
}
