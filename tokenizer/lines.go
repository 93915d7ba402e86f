package tokenizer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/paramgolf/golf/internal/jsonltext"
)

// LinesOptions configures EncodeLines.
type LinesOptions struct {
	// Name identifies the input in errors, e.g. its file name.
	Name string
	// JSONL reads each line as a JSON object and encodes its "text" field
	// (the format of FineWeb's docs_selected.jsonl). Blank lines are skipped.
	JSONL bool
	// Pieces writes the pieces (as spm_encode --output_format=piece) instead
	// of the ids.
	Pieces bool
	// Workers is the number of encoding goroutines; 0 means GOMAXPROCS.
	Workers int
	// Progress, when set, is called after each batch is written with the
	// number of input bytes it held (for a progress meter).
	Progress func(inputBytes int64)
}

// LinesStats counts what EncodeLines did.
type LinesStats struct {
	Docs   int64 // documents (output lines)
	Bytes  int64 // input bytes read, newlines included
	Tokens int64 // ids written
}

// batchBytes is the input size of one unit of parallel work: large enough
// to amortize the hand-offs, small enough to keep every core busy on a
// modest file and to bound memory to a few batches per worker.
const batchBytes = 256 << 10

// lineBatch is a run of consecutive input lines and, once encoded, their
// output.
type lineBatch struct {
	firstLine int64 // 1-based number of the first line
	lines     []string
	inBytes   int64
	out       []byte
	docs      int64
	tokens    int64
	err       error
	done      chan struct{}
}

// EncodeLines reads documents from r, one per line, and writes one line per
// document to w: its ids in decimal separated by single spaces (or its
// pieces), in input order. This is the format of the reference's
// `spm_encode --output_format=id`, which it matches byte for byte on the
// same input: a line is the text up to "\n" (a "\r" before it belongs to the
// text and is normalized like any whitespace), and a last line without "\n"
// is a document too.
//
// The input is streamed: batches of lines are encoded in parallel and
// written in order, so memory stays bounded however large r is. A line that
// is not valid JSON (with JSONL) stops the work with an error naming
// opt.Name and the line number; what was written before stays written.
func (m *Model) EncodeLines(ctx context.Context, w io.Writer, r io.Reader, opt LinesOptions) (LinesStats, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	work := make(chan *lineBatch, workers)
	order := make(chan *lineBatch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				m.encodeBatch(ctx, b, opt)
				close(b.done)
			}
		})
	}

	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- readBatches(ctx, r, func(b *lineBatch) bool {
			select {
			case order <- b:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- b:
				return true
			case <-ctx.Done():
				close(b.done) // never encoded; the writer is leaving
				return false
			}
		})
	}()

	var st LinesStats
	var err error
	for b := range order {
		if err != nil {
			continue // drain, so the reader can finish
		}
		<-b.done
		if b.err == nil && ctx.Err() != nil {
			b.err = ctx.Err()
		}
		if _, werr := w.Write(b.out); werr != nil && b.err == nil {
			b.err = fmt.Errorf("writing output: %w", werr)
		}
		st.Docs += b.docs
		st.Tokens += b.tokens
		st.Bytes += b.inBytes
		if b.err != nil {
			err = b.err
			cancel()
			continue
		}
		if opt.Progress != nil {
			opt.Progress(b.inBytes)
		}
	}
	wg.Wait()
	if rerr := <-readErr; err == nil && rerr != nil {
		err = rerr
	}
	if err == nil {
		err = ctx.Err() // the caller's context may have ended the reading
	}
	if err != nil {
		name := opt.Name
		if name == "" {
			name = "input"
		}
		return st, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	return st, nil
}

// readBatches splits r into batches of whole lines and hands each to emit
// until emit returns false or the input ends.
func readBatches(ctx context.Context, r io.Reader, emit func(*lineBatch) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	line := int64(1)
	newBatch := func() *lineBatch { return &lineBatch{firstLine: line, done: make(chan struct{})} }
	b := newBatch()
	var buf []byte
	for {
		if ctx.Err() != nil {
			return nil
		}
		text, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			buf = append(buf[:0], text...)
			text, err = br.ReadSlice('\n')
			buf = append(buf, text...)
			text = buf
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading line %d: %w", line, err)
		}
		if len(text) > 0 {
			b.inBytes += int64(len(text))
			// string() copies: ReadSlice's bytes are reused.
			b.lines = append(b.lines, string(bytes.TrimSuffix(text, []byte{'\n'})))
			line++
		}
		atEnd := err != nil
		if b.inBytes >= batchBytes || (atEnd && len(b.lines) > 0) {
			if !emit(b) {
				return nil
			}
			b = newBatch()
		}
		if atEnd {
			return nil
		}
	}
}

// encodeBatch encodes the lines of b into b.out.
func (m *Model) encodeBatch(ctx context.Context, b *lineBatch, opt LinesOptions) {
	st := m.scratchSet.Get().(*encodeState)
	defer m.scratchSet.Put(st)
	out := make([]byte, 0, b.inBytes)
	defer func() { b.out = out }() // on an error too: the lines before it are done
	for i, text := range b.lines {
		if ctx.Err() != nil {
			b.err = ctx.Err()
			return
		}
		if opt.JSONL {
			if strings.TrimSpace(text) == "" {
				continue
			}
			// The rule golf data build applies: the key exactly "text".
			doc, err := jsonltext.Text([]byte(text))
			if err != nil {
				b.err = fmt.Errorf("line %d: %w", b.firstLine+int64(i), err)
				return
			}
			text = doc
		}
		if opt.Pieces {
			pieces := m.EncodePieces(text)
			out = append(out, strings.Join(pieces, " ")...)
			b.tokens += int64(len(pieces))
		} else {
			st.record = false
			ids := m.encode(st, text)
			for j, id := range ids {
				if j > 0 {
					out = append(out, ' ')
				}
				out = strconv.AppendInt(out, int64(id), 10)
			}
			b.tokens += int64(len(ids))
		}
		out = append(out, '\n')
		b.docs++
	}
}
