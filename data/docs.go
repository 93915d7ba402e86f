package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/paramgolf/golf/internal/jsonltext"
)

// Format says how an input holds its documents.
type Format int

const (
	// FormatAuto picks by the input's name: JSONL for names ending in
	// .jsonl (optionally followed by .gz or .zst), plain text otherwise.
	FormatAuto Format = iota
	// FormatText is plain UTF-8 text: the whole input is one document, or,
	// with BuildOptions.BlankLineDocs, each run of non-blank lines is one.
	FormatText
	// FormatJSONL is one JSON object per line whose "text" string is the
	// document (FineWeb's docs_selected.jsonl); other fields are ignored and
	// blank lines are skipped.
	FormatJSONL
)

// String returns the format's name: "auto", "text" or "jsonl".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatText:
		return "text"
	case FormatJSONL:
		return "jsonl"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// formatFor resolves FormatAuto for an input name.
func formatFor(f Format, name string) Format {
	if f != FormatAuto {
		return f
	}
	n := strings.ToLower(name)
	n = strings.TrimSuffix(strings.TrimSuffix(n, ".gz"), ".zst")
	if strings.HasSuffix(n, ".jsonl") {
		return FormatJSONL
	}
	return FormatText
}

// Compression names what decompress found at the start of an input.
const (
	compressionNone = ""
	compressionGzip = "gzip"
	compressionZstd = "zstd"
)

// decompress looks at the first bytes of r and, when they are a gzip or
// zstd frame's magic number, returns a reader of the decompressed stream.
// Neither magic can start UTF-8 text (0x8b and 0xb5 are continuation
// bytes), so plain text is never mistaken for compressed data.
func decompress(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(4)
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, compressionGzip, func() { zr.Close() }, nil
	case len(head) == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, compressionZstd, zr.Close, nil
	}
	return br, compressionNone, func() {}, nil
}

// docReader splits one input into documents.
type docReader struct {
	name   string
	br     *bufio.Reader
	format Format // FormatText or FormatJSONL
	blocks bool   // text: documents are separated by blank lines
	line   int64  // lines consumed so far
	done   bool
	buf    []byte
}

func newDocReader(name string, r io.Reader, format Format, blankLineDocs bool) *docReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	return &docReader{name: name, br: br, format: format, blocks: blankLineDocs}
}

// readLine returns the next line including its "\n" (absent on a last line
// without one), or io.EOF when the input is exhausted. The bytes are valid
// until the next call.
func (d *docReader) readLine() ([]byte, error) {
	text, err := d.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.buf = append(d.buf[:0], text...)
		for errors.Is(err, bufio.ErrBufferFull) {
			text, err = d.br.ReadSlice('\n')
			d.buf = append(d.buf, text...)
		}
		text = d.buf
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: line %d: %w", d.name, d.line+1, err)
	}
	if len(text) == 0 {
		return nil, io.EOF
	}
	d.line++
	return text, nil
}

// isBlank reports whether line holds only whitespace.
func isBlank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// trimNewline drops one trailing "\n" or "\r\n".
func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// next returns the next document and the line it starts on (1-based; 0 for
// a whole-file document), or io.EOF after the last one. A JSONL document
// comes back as its undecoded line (see decodeJSONL).
func (d *docReader) next() (string, int64, error) {
	if d.done {
		return "", 0, io.EOF
	}
	switch {
	case d.format == FormatJSONL:
		return d.nextJSONL()
	case d.blocks:
		return d.nextBlock()
	default:
		d.done = true
		all, err := io.ReadAll(d.br)
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", d.name, err)
		}
		return string(all), 0, nil
	}
}

// nextJSONL returns the next non-blank line, still JSON: decoding it is left
// to decodeJSONL, so that Build can decode lines in parallel.
func (d *docReader) nextJSONL() (string, int64, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.done = true
			}
			return "", 0, err
		}
		if isBlank(line) {
			continue
		}
		return string(line), d.line, nil
	}
}

// decodeJSONL returns the document of a JSONL line that nextJSONL returned;
// name and line place it in errors.
func decodeJSONL(name string, line int64, record string) (string, error) {
	text, err := jsonlText([]byte(record))
	if err != nil {
		return "", fmt.Errorf("%s: line %d: %w", name, line, err)
	}
	return text, nil
}

// jsonlText is the JSONL rule golf tokenize --jsonl shares (jsonltext.Text).
func jsonlText(line []byte) (string, error) { return jsonltext.Text(line) }

func (d *docReader) nextBlock() (string, int64, error) {
	var doc []byte
	var start int64
	for {
		line, err := d.readLine()
		if errors.Is(err, io.EOF) {
			d.done = true
			if doc != nil {
				return string(trimNewline(doc)), start, nil
			}
			return "", 0, io.EOF
		}
		if err != nil {
			return "", 0, err
		}
		if isBlank(line) {
			if doc != nil {
				return string(trimNewline(doc)), start, nil
			}
			continue
		}
		if doc == nil {
			start = d.line
		}
		doc = append(doc, line...)
	}
}
