package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/fse"
	"github.com/klauspost/compress/huff0"
)

// Block modes shared by the order-0 coders' framing.
const (
	modeRaw     = 0 // the bytes follow as they are
	modeRLE     = 1 // one byte follows, repeated for the whole block
	modeEntropy = 2 // the entropy coder's own output follows
)

// FSE is klauspost's finite-state entropy coder (tANS) over the whole stream
// with one normalised table: an order-0 coder within a fraction of a percent
// of Order0Bits on weight symbols. Framing: one mode byte (raw, RLE or FSE),
// then the payload.
type FSE struct{}

// Name returns "fse".
func (FSE) Name() string { return "fse" }

// Compress codes src with one FSE table, falling back to RLE or raw bytes
// where FSE declines.
func (FSE) Compress(src []byte, _ Hint) ([]byte, error) {
	if len(src) == 0 {
		return []byte{}, nil
	}
	var s fse.Scratch
	out, err := fse.Compress(src, &s)
	switch {
	case errors.Is(err, fse.ErrUseRLE):
		return []byte{modeRLE, src[0]}, nil
	case errors.Is(err, fse.ErrIncompressible) || (err == nil && len(out) >= len(src)):
		return append([]byte{modeRaw}, src...), nil
	case err != nil:
		return nil, fmt.Errorf("fse: %w", err)
	}
	return append([]byte{modeEntropy}, out...), nil
}

// Decompress decodes an FSE stream of exactly rawLen bytes.
func (FSE) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	if rawLen == 0 {
		if len(src) != 0 {
			return nil, corrupt("fse", "%d bytes for an empty stream", len(src))
		}
		return []byte{}, nil
	}
	out, err := decodeOrder0Block("fse", src, rawLen, func(payload []byte) ([]byte, error) {
		s := fse.Scratch{DecompressLimit: rawLen + 1}
		return fse.Decompress(payload, &s)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeOrder0Block undoes the raw/RLE/entropy framing of one block.
func decodeOrder0Block(name string, src []byte, rawLen int, entropy func([]byte) ([]byte, error)) ([]byte, error) {
	if len(src) == 0 {
		return nil, corrupt(name, "empty block, want %d bytes", rawLen)
	}
	payload := src[1:]
	switch src[0] {
	case modeRaw:
		if len(payload) != rawLen {
			return nil, corrupt(name, "raw block of %d bytes, want %d", len(payload), rawLen)
		}
		return append([]byte(nil), payload...), nil
	case modeRLE:
		if len(payload) != 1 {
			return nil, corrupt(name, "RLE block of %d bytes, want 1", len(payload))
		}
		out := make([]byte, rawLen)
		for i := range out {
			out[i] = payload[0]
		}
		return out, nil
	case modeEntropy:
		out, err := entropy(payload)
		if err != nil {
			return nil, corrupt(name, "%v", err)
		}
		if len(out) != rawLen {
			return nil, corrupt(name, "block decodes to %d bytes, want %d", len(out), rawLen)
		}
		return append([]byte(nil), out...), nil
	default:
		return nil, corrupt(name, "unknown block mode %d", src[0])
	}
}

// huff0Block is the raw size of one huff0 block (the coder's limit is 256 KiB).
const huff0Block = 1 << 17

// Huff0 is klauspost's Huffman coder (4 interleaved streams) with a fresh
// table per 128 KiB block. Whole-bit code lengths cost it more than FSE on
// skewed symbol distributions; it is here as the fast order-0 reference.
// Framing per block: a mode byte, the uvarint length of the payload, the payload.
type Huff0 struct{}

// Name returns "huff0".
func (Huff0) Name() string { return "huff0" }

// Compress codes src in independent blocks.
func (Huff0) Compress(src []byte, _ Hint) ([]byte, error) {
	var out []byte
	for start := 0; start < len(src); start += huff0Block {
		block := src[start:min(start+huff0Block, len(src))]
		var s huff0.Scratch
		s.Reuse = huff0.ReusePolicyNone
		enc, _, err := huff0.Compress4X(block, &s)
		var mode byte
		var payload []byte
		switch {
		case errors.Is(err, huff0.ErrUseRLE):
			mode, payload = modeRLE, block[:1]
		case errors.Is(err, huff0.ErrIncompressible) || (err == nil && len(enc) >= len(block)):
			mode, payload = modeRaw, block
		case err != nil:
			return nil, fmt.Errorf("huff0: block at %d: %w", start, err)
		default:
			mode, payload = modeEntropy, enc
		}
		out = append(out, mode)
		out = binary.AppendUvarint(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	return out, nil
}

// Decompress decodes the blocks of a stream of exactly rawLen bytes.
func (Huff0) Decompress(src []byte, rawLen int, _ Hint) ([]byte, error) {
	out := make([]byte, 0, rawLen)
	for start := 0; start < rawLen; start += huff0Block {
		n := min(huff0Block, rawLen-start)
		if len(src) < 1 {
			return nil, corrupt("huff0", "stream ends before the block at %d", start)
		}
		mode := src[0]
		size, k := binary.Uvarint(src[1:])
		if k <= 0 || size > uint64(len(src)-1-k) {
			return nil, corrupt("huff0", "bad length of the block at %d", start)
		}
		block := src[:1+k+int(size)]
		src = src[1+k+int(size):]
		framed := append([]byte{mode}, block[1+k:]...)
		dec, err := decodeOrder0Block("huff0", framed, n, func(payload []byte) ([]byte, error) {
			s, rest, err := huff0.ReadTable(payload, nil)
			if err != nil {
				return nil, err
			}
			s.MaxDecodedSize = n
			return s.Decompress4X(rest, n)
		})
		if err != nil {
			return nil, fmt.Errorf("block at %d: %w", start, err)
		}
		out = append(out, dec...)
	}
	if len(src) != 0 {
		return nil, corrupt("huff0", "%d bytes after the last block", len(src))
	}
	return out, nil
}
