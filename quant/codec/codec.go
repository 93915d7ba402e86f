// Package codec compresses the byte streams of a golf artifact: quantized
// weight symbols (one signed symbol per byte), fp16 scale planes and float
// passthrough tensors.
//
// Every codec implements the same small interface, so the artifact writer can
// try them all (`--codec auto`) and keep the smallest per stream. A codec's
// Name identifies its bit-stream format and is what the artifact stores;
// ByName finds the codec that reads it back.
//
// The codecs:
//
//	store       bytes as they are (the floor of what auto can pick)
//	zlib-9      DEFLATE in a zlib wrapper at level 9: the challenge reference
//	zstd-best   klauspost zstd at its best level, literal entropy coding forced on
//	brotli-11   brotli at quality 11, window up to 16 MiB (the smallest covering the stream)
//	xz          xz's LZMA2 coder as a raw stream (no container: the artifact has a checksum)
//	fse         klauspost finite-state entropy: an order-0 coder, one table per stream
//	huff0       klauspost Huffman, one table per 256 KiB block: order-0, whole bits
//	cm          an adaptive binary context-model coder written for weight symbols:
//	            it conditions each symbol on the magnitudes already seen in its
//	            column and row, so it can go below the order-0 entropy bound
//
// Decompress must be exact and must fail cleanly (an error, never a panic or a
// hang) on corrupt input; every decoder here is fuzzed.
package codec

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
)

// Hint describes the bytes handed to a codec. Codecs that model structure use
// it; the general-purpose ones ignore it. The decoder must be given the same
// hint as the encoder, so the artifact derives it from its tensor table.
type Hint struct {
	// RowLen is the number of symbols in one row of the 2-D layout the bytes
	// come from (columns of a row-major matrix), or 0 when the bytes have no
	// row structure.
	RowLen int
	// Bits is the width of the signed symbols stored one per byte (two's
	// complement, in [-2^(Bits-1), 2^(Bits-1)-1]), 2..8; 0 means the bytes are
	// not symbols (scales, floats, text).
	Bits int
	// Segments, when set, says the stream is several 2-D symbol blocks back
	// to back (e.g. the matrices of one class), each with its own row
	// length and symbol width; their lengths add up to the stream's. Codecs
	// that model structure use them instead of RowLen and Bits.
	Segments []Segment
}

// Segment is one block of a segmented stream: Len bytes of Bits-wide
// symbols in rows of RowLen (Bits 0: plain bytes).
type Segment struct {
	Len, RowLen, Bits int
}

// Validate reports whether the hint is usable.
func (h Hint) Validate() error {
	if h.RowLen < 0 {
		return fmt.Errorf("codec hint: negative row length %d", h.RowLen)
	}
	if h.Bits != 0 && (h.Bits < 2 || h.Bits > 8) {
		return fmt.Errorf("codec hint: symbol width %d bits outside 2..8", h.Bits)
	}
	for i, s := range h.Segments {
		if s.Len < 0 || s.RowLen < 0 || (s.Bits != 0 && (s.Bits < 2 || s.Bits > 8)) {
			return fmt.Errorf("codec hint: segment %d: length %d, row length %d, %d bits", i, s.Len, s.RowLen, s.Bits)
		}
	}
	return nil
}

// segments returns the hint's segments covering n bytes: its Segments, or
// one segment of its RowLen and Bits. It reports whether they add up to n.
func (h Hint) segments(n int) ([]Segment, bool) {
	if len(h.Segments) == 0 {
		return []Segment{{Len: n, RowLen: h.RowLen, Bits: h.Bits}}, true
	}
	total := 0
	for _, s := range h.Segments {
		total += s.Len
	}
	return h.Segments, total == n
}

// Codec compresses and decompresses one byte stream.
type Codec interface {
	// Name identifies the codec's format, e.g. "zstd-best"; it is stored in
	// artifacts, so it never changes for a given format.
	Name() string
	// Compress returns the compressed form of src.
	Compress(src []byte, h Hint) ([]byte, error)
	// Decompress inverts Compress. rawLen is the exact length of the original
	// stream; a stream that decodes to any other length is an error where
	// the format can tell (an RLE block of fse or huff0 stores no length,
	// and cm's end marker can pass after a run of near-certain symbols), so
	// callers take rawLen from a trusted header, as artifacts do.
	Decompress(src []byte, rawLen int, h Hint) ([]byte, error)
}

// ErrCorrupt is wrapped by every decoding error caused by bad input.
var ErrCorrupt = errors.New("corrupt compressed stream")

func corrupt(codec, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", codec, ErrCorrupt, fmt.Sprintf(format, args...))
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Codec{}
)

func register(c Codec) {
	if err := Register(c); err != nil {
		panic(err)
	}
}

// Register adds a codec to the registry ByName, Names and All read, e.g. a
// benchmark's wrapper around an external compressor. An artifact that uses
// it can only be read by a process that registered it too. Names must be
// unique.
func Register(c Codec) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[c.Name()]; dup {
		return fmt.Errorf("codec: %q registered twice", c.Name())
	}
	registry[c.Name()] = c
	return nil
}

// builtin are the codecs of this package, the ones an artifact may use
// anywhere and auto tries.
var builtin = []Codec{Store{}, Zlib{}, Zstd{}, Brotli{}, XZ{}, FSE{}, Huff0{}, CM{}}

func init() {
	for _, c := range builtin {
		register(c)
	}
}

// BuiltinNames lists this package's own codecs (not those added with
// Register), sorted: the ones every golf build reads.
func BuiltinNames() []string {
	var names []string
	for _, c := range builtin {
		names = append(names, c.Name())
	}
	sort.Strings(names)
	return names
}

// ByName returns the codec with the given name.
func ByName(name string) (Codec, error) {
	registryMu.RLock()
	c, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown codec %q (known: %v)", name, Names())
	}
	return c, nil
}

// Names lists every codec name in sorted order.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns every codec, in the order of Names.
func All() []Codec {
	var cs []Codec
	for _, n := range Names() {
		c, _ := ByName(n)
		cs = append(cs, c)
	}
	return cs
}

// Order0Bits returns the order-0 (empirical) entropy of b in bits:
// sum over byte values v of -count(v) * log2(count(v)/len(b)). No coder that
// treats the bytes as independent draws from one fixed distribution can beat
// Order0Bits/8 bytes, apart from the cost of describing the distribution.
func Order0Bits(b []byte) float64 {
	var counts [256]int
	for _, v := range b {
		counts[v]++
	}
	return entropyBits(counts[:], len(b))
}

func entropyBits(counts []int, n int) float64 {
	if n == 0 {
		return 0
	}
	total := float64(n)
	bits := 0.0
	for _, c := range counts {
		if c > 0 {
			bits -= float64(c) * math.Log2(float64(c)/total)
		}
	}
	return bits
}

// Store keeps bytes as they are.
type Store struct{}

// Name returns "store".
func (Store) Name() string { return "store" }

// Compress returns a copy of src.
func (Store) Compress(src []byte, _ Hint) ([]byte, error) { return append([]byte(nil), src...), nil }

// Decompress returns a copy of src, which must be rawLen bytes long.
func (Store) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	if len(src) != rawLen {
		return nil, corrupt("store", "stream has %d bytes, want %d", len(src), rawLen)
	}
	return append([]byte(nil), src...), nil
}
