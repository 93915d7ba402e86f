package eval

import "fmt"

// ByteSource gives the byte count of every target of a validation stream,
// the denominator of val_bpb. The byte rule of a SentencePiece tokenizer
// (TableBytes over *tokenizer.ByteTable) and a CaseOps byte sidecar
// (SidecarBytes) both satisfy it.
type ByteSource interface {
	// StreamBytes returns len(tokens) counts: entry p is the number of
	// original UTF-8 bytes the target at stream position p stands for
	// (entry 0, the first token, is never a target and is 0).
	StreamBytes(tokens []uint16) ([]int32, error)
}

// TokenByter is the challenge's per-token byte rule: the bytes that tok
// stands for after prev (*tokenizer.ByteTable implements it).
type TokenByter interface {
	TokenBytes(prev, tok int) int
}

// TableBytes returns the ByteSource of a per-token byte rule:
// bytes(p) = TokenBytes(tokens[p-1], tokens[p]).
func TableBytes(t TokenByter) ByteSource { return tableBytes{t} }

type tableBytes struct{ t TokenByter }

func (b tableBytes) StreamBytes(tokens []uint16) ([]int32, error) {
	if b.t == nil {
		return nil, fmt.Errorf("eval: no byte table")
	}
	out := make([]int32, len(tokens))
	for p := 1; p < len(tokens); p++ {
		out[p] = int32(b.t.TokenBytes(int(tokens[p-1]), int(tokens[p])))
	}
	return out, nil
}

// SidecarBytes returns the ByteSource of per-position byte counts stored
// beside the validation tokens (CaseOps' fineweb_val_bytes_*.bin: counts[p]
// is the original bytes of token p, 0 for operator tokens and BOS). The
// stream scored must be a prefix of the one the counts were written for.
func SidecarBytes(counts []uint16) ByteSource { return sidecarBytes(counts) }

type sidecarBytes []uint16

func (s sidecarBytes) StreamBytes(tokens []uint16) ([]int32, error) {
	if len(tokens) > len(s) {
		return nil, fmt.Errorf("eval: byte sidecar has %d counts, the stream has %d tokens", len(s), len(tokens))
	}
	out := make([]int32, len(tokens))
	for p := 1; p < len(tokens); p++ {
		out[p] = int32(s[p])
	}
	return out, nil
}
