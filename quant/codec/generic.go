package codec

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz/lzma"
)

// readExactly decompresses from r and checks that it yields exactly rawLen
// bytes. It never reads (or allocates) more than rawLen+1 bytes of output, so
// a stream that claims to expand without bound cannot exhaust memory.
func readExactly(name string, r io.Reader, rawLen int) ([]byte, error) {
	if rawLen < 0 {
		return nil, fmt.Errorf("%s: negative raw length %d", name, rawLen)
	}
	out := make([]byte, 0, rawLen)
	buf := bytes.NewBuffer(out)
	n, err := io.Copy(buf, io.LimitReader(r, int64(rawLen)+1))
	if err != nil {
		return nil, corrupt(name, "%v", err)
	}
	if n != int64(rawLen) {
		if n > int64(rawLen) {
			return nil, corrupt(name, "stream decodes to more than %d bytes", rawLen)
		}
		return nil, corrupt(name, "stream decodes to %d bytes, want %d", n, rawLen)
	}
	return buf.Bytes(), nil
}

// Zlib is DEFLATE at level 9 in a zlib wrapper (RFC 1950), what the
// challenge's reference script uses (Python's zlib.compress(level=9)). The
// encoder is Go's standard library, so byte streams differ from CPython's but
// the format and size class are the same.
type Zlib struct{}

// Name returns "zlib-9".
func (Zlib) Name() string { return "zlib-9" }

// Compress deflates src at level 9.
func (Zlib) Compress(src []byte, _ Hint) ([]byte, error) {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("zlib-9: %w", err)
	}
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("zlib-9: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("zlib-9: %w", err)
	}
	return buf.Bytes(), nil
}

// Decompress inflates src, which must expand to exactly rawLen bytes.
func (Zlib) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, corrupt("zlib-9", "%v", err)
	}
	out, err := readExactly("zlib-9", r, rawLen)
	if err != nil {
		return nil, err
	}
	if err := r.Close(); err != nil {
		return nil, corrupt("zlib-9", "%v", err)
	}
	return out, nil
}

// Zstd is klauspost's zstd at its best level. Literal entropy compression is
// forced on: measured here, the encoder otherwise stores high-entropy literal
// runs such as quantized weights raw at its default levels.
type Zstd struct{}

// Name returns "zstd-best".
func (Zstd) Name() string { return "zstd-best" }

// Compress encodes src as one zstd frame without a content checksum.
func (Zstd) Compress(src []byte, _ Hint) ([]byte, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithAllLitEntropyCompression(true),
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<22))
	if err != nil {
		return nil, fmt.Errorf("zstd-best: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(src, nil), nil
}

// Decompress decodes one zstd frame of exactly rawLen bytes.
func (Zstd) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(src),
		zstd.WithDecoderConcurrency(1),
		// Room for the window any zstd frame declares up to level 22's
		// 128 MiB (the zstd tool writing from a pipe declares the full
		// window, whatever the frame's size), and no more.
		zstd.WithDecoderMaxMemory(max(uint64(rawLen)+1<<20, 1<<27+1<<20)),
		zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, corrupt("zstd-best", "%v", err)
	}
	defer dec.Close()
	return readExactly("zstd-best", dec, rawLen)
}

// Brotli is brotli at quality 11 with a 16 MiB window (lgwin 24).
type Brotli struct{}

// Name returns "brotli-11".
func (Brotli) Name() string { return "brotli-11" }

// Compress encodes src at quality 11.
func (Brotli) Compress(src []byte, _ Hint) ([]byte, error) {
	var buf bytes.Buffer
	// The smallest window that covers src (up to the 16 MiB maximum): the
	// stream decodes the same way, the compression is the same, and the
	// encoder does not set up a 16 MiB window for a 3 KB header (1.3 s).
	lgwin := 10
	for lgwin < 24 && 1<<lgwin-16 < len(src) {
		lgwin++
	}
	w := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: 11, LGWin: lgwin})
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("brotli-11: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("brotli-11: %w", err)
	}
	return buf.Bytes(), nil
}

// Decompress decodes a brotli stream of exactly rawLen bytes.
func (Brotli) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	return readExactly("brotli-11", brotli.NewReader(bytes.NewReader(src)), rawLen)
}

// XZ is xz's LZMA2 coder with default properties (lc 3, lp 0, pb 2) and a
// dictionary as large as the stream (at most 64 MiB), written as a raw LZMA2
// stream without the xz container: the container's headers, index and check
// add about 60 bytes and nothing an artifact needs (it has its own checksum).
// A raw stream also carries no dictionary size, so a corrupt one cannot make
// the decoder allocate more than the output it was asked for.
type XZ struct{}

// Name returns "xz".
func (XZ) Name() string { return "xz" }

func lzmaDictCap(n int) int { return min(max(n, lzma.MinDictCap), 64<<20) }

// Compress encodes src as a raw LZMA2 stream.
func (XZ) Compress(src []byte, _ Hint) ([]byte, error) {
	var buf bytes.Buffer
	w, err := lzma.Writer2Config{DictCap: lzmaDictCap(len(src))}.NewWriter2(&buf)
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	return buf.Bytes(), nil
}

// Decompress decodes a raw LZMA2 stream of exactly rawLen bytes.
func (XZ) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	r, err := lzma.Reader2Config{DictCap: lzmaDictCap(rawLen)}.NewReader2(bytes.NewReader(src))
	if err != nil {
		return nil, corrupt("xz", "%v", err)
	}
	return readExactly("xz", r, rawLen)
}
