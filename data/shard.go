package data

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"

	"github.com/paramgolf/golf/internal/atomicfile"
)

// Shard header constants: the challenge's format (write_datafile in the
// export script, load_data_shard in train_gpt.py).
const (
	// ShardMagic is the first int32 of every shard file.
	ShardMagic = 20240520
	// ShardVersion is the second int32; the only version there is.
	ShardVersion = 1
	// ShardHeaderInts is the number of little-endian int32 words in a header.
	ShardHeaderInts = 256
	// ShardHeaderBytes is the size of the header, 256 × 4 = 1024 bytes.
	ShardHeaderBytes = ShardHeaderInts * 4
	// MaxShardTokens is the largest token count a header can hold
	// (a positive int32): a 4 GiB shard.
	MaxShardTokens = math.MaxInt32
)

// ErrInvalidShard is matched (errors.Is) by every error that reports a file
// which is not a valid shard, as opposed to one that could not be read.
var ErrInvalidShard = errors.New("invalid shard")

// ShardError says what is wrong with a shard file.
type ShardError struct {
	Path  string // the file
	Fault string // what is wrong, e.g. "wrong magic number 7 (want 20240520)"
}

// Error returns "shard PATH: FAULT".
func (e *ShardError) Error() string { return fmt.Sprintf("shard %s: %s", e.Path, e.Fault) }

// Is makes errors.Is(err, ErrInvalidShard) true for a *ShardError.
func (e *ShardError) Is(target error) bool { return target == ErrInvalidShard }

func shardFault(path, format string, args ...any) error {
	return &ShardError{Path: path, Fault: fmt.Sprintf(format, args...)}
}

// ShardFileSize returns the exact size in bytes of a shard of n tokens:
// 1024 + 2n.
func ShardFileSize(n int64) int64 { return ShardHeaderBytes + 2*n }

// parseShardHeader checks a shard header against the file's size and
// returns the token count. header may be shorter than ShardHeaderBytes only
// when the file is (a truncated header). The reserved words 3..255 are not
// checked, as the reference reader does not check them.
func parseShardHeader(path string, header []byte, fileSize int64) (int64, error) {
	if fileSize < ShardHeaderBytes || len(header) < ShardHeaderBytes {
		return 0, shardFault(path, "truncated header: the file has %d bytes, a shard header alone is %d", fileSize, ShardHeaderBytes)
	}
	magic := int32(binary.LittleEndian.Uint32(header[0:]))
	version := int32(binary.LittleEndian.Uint32(header[4:]))
	count := int64(int32(binary.LittleEndian.Uint32(header[8:])))
	if magic != ShardMagic {
		return 0, shardFault(path, "wrong magic number %d (want %d): not a token shard", magic, ShardMagic)
	}
	if version != ShardVersion {
		return 0, shardFault(path, "unsupported version %d (want %d)", version, ShardVersion)
	}
	if count < 0 {
		return 0, shardFault(path, "negative token count %d in the header", count)
	}
	if want := ShardFileSize(count); fileSize != want {
		what := "truncated"
		if fileSize > want {
			what = "trailing bytes"
		}
		return 0, shardFault(path, "token count %d in the header needs a file of %d bytes, the file has %d (%s)", count, want, fileSize, what)
	}
	return count, nil
}

// encodeShardHeader returns the 1024-byte header of a shard of n tokens.
func encodeShardHeader(n int64) []byte {
	h := make([]byte, ShardHeaderBytes)
	binary.LittleEndian.PutUint32(h[0:], ShardMagic)
	binary.LittleEndian.PutUint32(h[4:], ShardVersion)
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	return h
}

// hostLittleEndian is true on little-endian machines, where the shard's
// token bytes are already uint16 values in host order.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// uint16Bytes views tokens as their bytes in host order (no copy).
func uint16Bytes(tokens []uint16) []byte {
	if len(tokens) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&tokens[0])), 2*len(tokens))
}

// fromLittleEndian turns tokens read as raw little-endian bytes into host
// order, in place; a no-op on little-endian hosts.
func fromLittleEndian(tokens []uint16) {
	if hostLittleEndian {
		return
	}
	b := uint16Bytes(tokens)
	for i := range tokens {
		tokens[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
}

// openShardFile opens path, validates its header against its size and
// returns the file positioned at the first token, with the token count.
func openShardFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("data: open shard: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("data: stat shard %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, shardFault(path, "not a regular file (%v)", st.Mode().Type())
	}
	header := make([]byte, ShardHeaderBytes)
	n, err := io.ReadFull(f, header)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, 0, fmt.Errorf("data: read shard header %s: %w", path, err)
	}
	count, err := parseShardHeader(path, header[:n], st.Size())
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, count, nil
}

// readTokens fills dst from f, which stands at the first token of path.
func readTokens(path string, f *os.File, dst []uint16) error {
	if _, err := io.ReadFull(f, uint16Bytes(dst)); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return shardFault(path, "file shrank while being read: short read of %d tokens", len(dst))
		}
		return fmt.Errorf("data: read shard %s: %w", path, err)
	}
	fromLittleEndian(dst)
	return nil
}

// ReadShard reads a whole shard into memory and returns its tokens. It
// fails, with a *ShardError naming the file and the fault, on a truncated
// header, a wrong magic number or version, a negative token count, or a file
// size other than 1024 + 2 × count. The tokens are read straight into the
// returned slice: one copy from the kernel, none in between.
func ReadShard(path string) ([]uint16, error) {
	f, count, err := openShardFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tokens := make([]uint16, count)
	if err := readTokens(path, f, tokens); err != nil {
		return nil, err
	}
	return tokens, nil
}

// ShardTokenCount returns the token count of a shard after validating its
// header against its size, without reading the tokens.
func ShardTokenCount(path string) (int64, error) {
	f, count, err := openShardFile(path)
	if err != nil {
		return 0, err
	}
	f.Close()
	return count, nil
}

// DecodeShard parses a whole shard file held in memory (name is used in
// errors) and returns a copy of its tokens. It applies the same checks as
// ReadShard.
func DecodeShard(name string, b []byte) ([]uint16, error) {
	count, err := parseShardHeader(name, b[:min(len(b), ShardHeaderBytes)], int64(len(b)))
	if err != nil {
		return nil, err
	}
	tokens := make([]uint16, count)
	payload := b[ShardHeaderBytes:]
	for i := range tokens {
		tokens[i] = binary.LittleEndian.Uint16(payload[2*i:])
	}
	return tokens, nil
}

// EncodeShard returns the bytes of a shard file holding tokens.
func EncodeShard(tokens []uint16) ([]byte, error) {
	if int64(len(tokens)) > MaxShardTokens {
		return nil, fmt.Errorf("data: %d tokens do not fit one shard (at most %d)", len(tokens), MaxShardTokens)
	}
	b := make([]byte, ShardFileSize(int64(len(tokens))))
	copy(b, encodeShardHeader(int64(len(tokens))))
	for i, t := range tokens {
		binary.LittleEndian.PutUint16(b[ShardHeaderBytes+2*i:], t)
	}
	return b, nil
}

// WriteShard writes tokens to path as a shard file, atomically: the file
// appears under path complete or not at all.
func WriteShard(path string, tokens []uint16) error {
	w, err := CreateShard(path)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := w.Write(tokens); err != nil {
		return err
	}
	return w.Close()
}

// ShardWriter streams tokens into a new shard file. The tokens go to a
// temporary file next to the destination; Close writes the token count into
// the header and renames the file into place, so a shard under its final
// name is always complete. Abort (safe to defer) discards it. A ShardWriter
// is not safe for concurrent use.
type ShardWriter struct {
	path    string
	file    *atomicfile.File
	buf     *bufio.Writer
	count   int64
	scratch []byte
	err     error // first failure; later calls return it
	closed  bool
}

// CreateShard starts a shard at path (see ShardWriter).
func CreateShard(path string) (*ShardWriter, error) {
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("data: create shard: %w", err)
	}
	w := &ShardWriter{path: path, file: f, buf: bufio.NewWriterSize(f, 1<<20)}
	// A placeholder header; Close writes the real one.
	if _, err := w.buf.Write(make([]byte, ShardHeaderBytes)); err != nil {
		f.Abort()
		return nil, fmt.Errorf("data: write shard %s: %w", path, err)
	}
	return w, nil
}

// Path returns the final name of the shard.
func (w *ShardWriter) Path() string { return w.path }

// Len returns the number of tokens written so far.
func (w *ShardWriter) Len() int64 { return w.count }

// Write appends tokens to the shard.
func (w *ShardWriter) Write(tokens []uint16) error {
	if w.closed {
		return fmt.Errorf("data: write shard %s: already closed", w.path)
	}
	if w.err != nil {
		return w.err
	}
	if w.count+int64(len(tokens)) > MaxShardTokens {
		w.err = fmt.Errorf("data: write shard %s: %d tokens exceed the format's limit of %d", w.path, w.count+int64(len(tokens)), MaxShardTokens)
		return w.err
	}
	var b []byte
	if hostLittleEndian {
		b = uint16Bytes(tokens)
	} else {
		if cap(w.scratch) < 2*len(tokens) {
			w.scratch = make([]byte, 2*len(tokens))
		}
		b = w.scratch[:2*len(tokens)]
		for i, t := range tokens {
			binary.LittleEndian.PutUint16(b[2*i:], t)
		}
	}
	if _, err := w.buf.Write(b); err != nil {
		w.err = fmt.Errorf("data: write shard %s: %w", w.path, err)
		return w.err
	}
	w.count += int64(len(tokens))
	return nil
}

// Close writes the header and publishes the shard under its final name. On
// any failure the temporary file is removed and nothing appears under the
// final name.
func (w *ShardWriter) Close() error {
	if w.closed {
		return fmt.Errorf("data: close shard %s: already closed", w.path)
	}
	w.closed = true
	if w.err != nil {
		w.file.Abort()
		return w.err
	}
	if err := w.buf.Flush(); err != nil {
		w.file.Abort()
		return fmt.Errorf("data: write shard %s: %w", w.path, err)
	}
	if _, err := w.file.WriteAt(encodeShardHeader(w.count), 0); err != nil {
		w.file.Abort()
		return fmt.Errorf("data: write shard header %s: %w", w.path, err)
	}
	if err := w.file.Commit(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

// Abort discards the shard. It does nothing after Close, so it can be
// deferred right after CreateShard.
func (w *ShardWriter) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.file.Abort()
}
