package data

import (
	"path/filepath"

	"github.com/paramgolf/golf/tokenizer"
)

// Vocabulary is what InspectShard needs from a tokenizer; *tokenizer.Model
// is one.
type Vocabulary interface {
	VocabSize() int
	BOS() int
	ByteTable() *tokenizer.ByteTable
}

// ShardStats summarises a shard, or several as a total.
type ShardStats struct {
	File   string `json:"file"`
	Tokens int64  `json:"tokens"`
	Docs   int64  `json:"docs"`   // BOS tokens: the documents that start in the shard
	MaxID  int    `json:"max_id"` // the largest id; -1 for an empty shard
	// Bytes is the byte count of every target token (each token after the
	// first of the file, with its predecessor) by the val_bpb rule:
	// ByteTable.CountTargets over the shard's tokens.
	Bytes int64 `json:"bytes"`
	// ByteSource says where Bytes come from: "table" (the tokenizer's byte
	// table) or "sidecar" (the shard's byte sidecar, InspectShardBytes).
	ByteSource string `json:"byte_source,omitempty"`
}

// InspectShard reads the shard at path (memory-mapped) and counts its
// tokens, documents (BOS ids), largest id and target bytes under v. An id
// outside v's vocabulary is an error naming the shard and the first bad
// token's index.
func InspectShard(path string, v Vocabulary) (ShardStats, error) {
	s, err := OpenShard(path)
	if err != nil {
		return ShardStats{}, err
	}
	defer s.Close()
	st := ShardStats{File: path, Tokens: int64(s.Len()), MaxID: -1, ByteSource: "table"}
	vocab, bos, bt := v.VocabSize(), v.BOS(), v.ByteTable()
	prev := -1
	for i, t16 := range s.Tokens() {
		t := int(t16)
		if t >= vocab {
			return ShardStats{}, shardFault(path, "token id %d at index %d (byte offset %d) is outside the tokenizer's vocabulary of %d ids",
				t, i, ShardHeaderBytes+2*i, vocab)
		}
		if t == bos {
			st.Docs++
		}
		st.MaxID = max(st.MaxID, t)
		if prev >= 0 {
			st.Bytes += int64(bt.TokenBytes(prev, t))
		}
		prev = t
	}
	return st, nil
}

// Add accumulates o into the total st (File is left as it is).
func (st *ShardStats) Add(o ShardStats) {
	st.Tokens += o.Tokens
	st.Docs += o.Docs
	st.MaxID = max(st.MaxID, o.MaxID)
	st.Bytes += o.Bytes
}

// InspectShardBytes is InspectShard with the byte count taken from a byte
// sidecar: the sum of its values for every token after the first of the
// shard. The sidecar must hold one value per token and 0 at every BOS.
func InspectShardBytes(path, sidecar string, v Vocabulary) (ShardStats, error) {
	st, err := InspectShard(path, v)
	if err != nil {
		return st, err
	}
	side, err := OpenShard(sidecar)
	if err != nil {
		return st, err
	}
	defer side.Close()
	tok, err := OpenShard(path)
	if err != nil {
		return st, err
	}
	defer tok.Close()
	if side.Len() != tok.Len() {
		return st, shardFault(sidecar, "byte sidecar holds %d values for the %d tokens of %s", side.Len(), tok.Len(), filepath.Base(path))
	}
	bos := v.BOS()
	vals := side.Tokens()
	st.Bytes = 0
	for i, t := range tok.Tokens() {
		if int(t) == bos && vals[i] != 0 {
			return st, shardFault(sidecar, "value %d at index %d, where %s holds BOS (the sidecar gives BOS 0 bytes)", vals[i], i, filepath.Base(path))
		}
		if i > 0 {
			st.Bytes += int64(vals[i])
		}
	}
	st.ByteSource = "sidecar"
	return st, nil
}
