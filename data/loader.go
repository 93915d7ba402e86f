package data

import (
	"fmt"
	"path/filepath"
)

// Loader streams training batches with the semantics of the challenge's
// DistributedTokenLoader (train_gpt.py). The training shards, in the order
// given (sorted, as TrainFiles returns them), form one token stream that
// wraps around to the first shard after the last. Each call to Next takes
// the next contiguous chunk of world × (local+1) tokens from that stream,
// where local = globalTokens / (world × accumSteps), and gives rank r the
// span [r(local+1), (r+1)(local+1)) of it: local inputs and the same span
// shifted by one as targets. Every rank of a run reads the same stream in
// step, so their spans are disjoint and together cover each chunk; the last
// token of a rank's span is seen only as a target.
//
// A training step is read with NextStep: the reference's
// ReferenceAccumSteps(world) calls of next_batch, so that every optimizer
// step trains on the reference's tokens however it is split into
// micro-batches. Next is one such call.
//
// One shard is open at a time (memory-mapped, see OpenShard). A Loader is
// not safe for concurrent use.
type Loader struct {
	shardRing
	rank      int
	worldSize int
	pos       int // next unread token of the open shard
}

// LoaderState is a Loader's position in its stream: the index of the open
// shard in the file list and the next token to read in it. It is what a
// checkpoint stores (as JSON) so that a resumed run reads exactly the tokens
// an uninterrupted one would. Shard is the open shard's base name, checked
// on Restore when set.
type LoaderState struct {
	File  int    `json:"file"`
	Pos   int64  `json:"pos"`
	Shard string `json:"shard,omitempty"`
}

// NewLoader returns a loader over files for rank of worldSize ranks. It
// opens the first shard at once, so a missing or invalid file fails here.
func NewLoader(files []string, rank, worldSize int) (*Loader, error) {
	ring, err := newShardRing("loader", files, rank, worldSize)
	if err != nil {
		return nil, err
	}
	l := &Loader{shardRing: ring, rank: rank, worldSize: worldSize}
	if err := l.open(0); err != nil {
		return nil, err
	}
	releaseOnDrop(l, &l.shardRing)
	return l, nil
}

// open makes files[i] the current shard, positioned at its start.
func (l *Loader) open(i int) error {
	s, err := OpenShard(l.files[i])
	if err != nil {
		return fmt.Errorf("data: loader: %w", err)
	}
	l.use(i, s)
	l.pos = 0
	return nil
}

// take visits the next n tokens of the stream in order, in up to as many
// pieces as shards they span; off is each piece's offset within the n.
func (l *Loader) take(n int, visit func(off int, piece []uint16)) error {
	empty := 0 // shards opened in a row that held no tokens
	for off := 0; off < n; {
		avail := l.shard.Len() - l.pos
		if avail <= 0 {
			if empty >= len(l.files) {
				return fmt.Errorf("data: loader: all %d training shards are empty", len(l.files))
			}
			if err := l.open((l.fileIdx + 1) % len(l.files)); err != nil {
				return err
			}
			if l.shard.Len() == 0 {
				empty++
			} else {
				empty = 0
			}
			continue
		}
		k := min(n-off, avail)
		visit(off, l.shard.Tokens()[l.pos:l.pos+k])
		l.pos += k
		off += k
	}
	return nil
}

// BatchShape checks the arguments of Next and returns the tokens each rank
// gets per call (local = globalTokens / (worldSize × accumSteps)) and the
// rows of seqLen tokens they form.
func BatchShape(globalTokens, seqLen, accumSteps, worldSize int) (local, rows int, err error) {
	switch {
	case seqLen < 1:
		return 0, 0, fmt.Errorf("data: sequence length %d, want at least 1", seqLen)
	case accumSteps < 1:
		return 0, 0, fmt.Errorf("data: %d gradient accumulation steps, want at least 1", accumSteps)
	case worldSize < 1:
		return 0, 0, fmt.Errorf("data: world size %d, want at least 1", worldSize)
	case globalTokens < 1:
		return 0, 0, fmt.Errorf("data: global batch of %d tokens, want at least 1", globalTokens)
	case globalTokens%(worldSize*accumSteps) != 0:
		return 0, 0, fmt.Errorf("data: global batch of %d tokens does not divide evenly over %d ranks × %d accumulation steps", globalTokens, worldSize, accumSteps)
	}
	local = globalTokens / (worldSize * accumSteps)
	if local%seqLen != 0 {
		return 0, 0, fmt.Errorf("data: %d tokens per rank and micro-step (global batch %d / (%d ranks × %d accumulation steps)) is not a multiple of the sequence length %d",
			local, globalTokens, worldSize, accumSteps, seqLen)
	}
	return local, local / seqLen, nil
}

// Next returns this rank's next micro-batch: inputs and targets, each
// local = globalTokens/(worldSize × accumSteps) tokens as row-major
// [local/seqLen, seqLen], with targets[i] the token after inputs[i] in the
// stream. globalTokens must divide evenly over worldSize × accumSteps and the
// per-rank share must be a multiple of seqLen. The returned slices are new on
// every call (NextInto reuses the caller's).
//
// After an error the position is unspecified: Restore a saved State to go on.
func (l *Loader) Next(globalTokens, seqLen, accumSteps int) (inputs, targets []int32, err error) {
	local, _, err := BatchShape(globalTokens, seqLen, accumSteps, l.worldSize)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]int32, 2*local)
	inputs, targets = buf[:local:local], buf[local:]
	if err := l.NextInto(inputs, targets, globalTokens, seqLen, accumSteps); err != nil {
		return nil, nil, err
	}
	return inputs, targets, nil
}

// NextInto is Next writing into inputs and targets, which must each hold
// exactly the per-rank share of tokens; it allocates nothing.
func (l *Loader) NextInto(inputs, targets []int32, globalTokens, seqLen, accumSteps int) error {
	if l.shard == nil {
		return fmt.Errorf("data: loader: Next after Close")
	}
	local, _, err := BatchShape(globalTokens, seqLen, accumSteps, l.worldSize)
	if err != nil {
		return err
	}
	if len(inputs) != local || len(targets) != local {
		return fmt.Errorf("data: loader: NextInto needs inputs and targets of %d tokens, got %d and %d", local, len(inputs), len(targets))
	}
	// This rank's span of the chunk is [lo, lo+local+1): span position j is
	// inputs[j] (j < local) and targets[j-1] (j > 0).
	lo := l.rank * (local + 1)
	return l.take((local+1)*l.worldSize, func(off int, piece []uint16) {
		a, b := max(off, lo), min(off+len(piece), lo+local+1)
		if a >= b {
			return
		}
		src := piece[a-off : b-off]
		j := a - lo
		if n := min(len(src), local-j); n > 0 {
			dst := inputs[j : j+n]
			for i, t := range src[:n] {
				dst[i] = int32(t)
			}
		}
		if j == 0 {
			src, j = src[1:], 1
		}
		dst := targets[j-1 : j-1+len(src)]
		for i, t := range src {
			dst[i] = int32(t)
		}
	})
}

// ReferenceSpans is the number of spans a global batch is read as: the
// reference (train_gpt.py) sets grad_accum_steps = 8 / world_size, and
// each of a rank's micro-steps takes one span of its own, so every
// optimizer step reads 8 spans of globalTokens/8 + 1 consecutive stream
// tokens, whatever the number of ranks.
const ReferenceSpans = 8

// ReferenceAccumSteps returns the reference's grad_accum_steps for
// worldSize ranks: ReferenceSpans / worldSize. A world size that does not
// divide 8 is an error, as in train_gpt.py.
func ReferenceAccumSteps(worldSize int) (int, error) {
	if worldSize < 1 || ReferenceSpans%worldSize != 0 {
		return 0, fmt.Errorf("data: world size %d must divide %d (the reference's grad_accum_steps = %d / world size)", worldSize, ReferenceSpans, ReferenceSpans)
	}
	return ReferenceSpans / worldSize, nil
}

// StepShape checks the layout of one global step and returns the tokens of
// each span (globalTokens / ReferenceSpans) and the rows of seqLen tokens
// that rank gets per step: ReferenceAccumSteps(worldSize) spans' worth.
// globalTokens must be a multiple of ReferenceSpans × seqLen, as the
// reference's reshape of every span into rows needs.
func StepShape(globalTokens, seqLen, worldSize int) (spanTokens, rankRows int, err error) {
	accum, err := ReferenceAccumSteps(worldSize)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case seqLen < 1:
		return 0, 0, fmt.Errorf("data: sequence length %d, want at least 1", seqLen)
	case globalTokens < 1 || globalTokens%(ReferenceSpans*seqLen) != 0:
		return 0, 0, fmt.Errorf("data: global batch of %d tokens is not a positive multiple of %d spans × sequence length %d (the reference reads every step as %d spans of whole rows)",
			globalTokens, ReferenceSpans, seqLen, ReferenceSpans)
	}
	spanTokens = globalTokens / ReferenceSpans
	return spanTokens, accum * spanTokens / seqLen, nil
}

// SpanOffsets returns where rank's spans of one global step start in the
// stream, counted from the step's first token: the step is 8 consecutive
// spans of span = globalTokens/8 + 1 tokens, read as ReferenceAccumSteps
// micro-steps of worldSize spans each, rank r taking the r-th span of each
// micro-step, so its k-th span is span number k×worldSize + r:
//
//	offset(k) = (k×worldSize + rank) × (globalTokens/8 + 1)
//
// For one rank and the tiny preset (2,048 tokens) that is 0, 257, 514, ...
// It describes what NextStep reads; it opens nothing.
func SpanOffsets(globalTokens, seqLen, worldSize, rank int) ([]int64, error) {
	span, _, err := StepShape(globalTokens, seqLen, worldSize)
	if err != nil {
		return nil, err
	}
	if rank < 0 || rank >= worldSize {
		return nil, fmt.Errorf("data: rank %d outside [0, %d)", rank, worldSize)
	}
	accum := ReferenceSpans / worldSize
	offs := make([]int64, accum)
	for k := range offs {
		offs[k] = int64(k*worldSize+rank) * int64(span+1)
	}
	return offs, nil
}

// NextStep returns this rank's rows of the next optimizer step, exactly as
// the reference reads them: ReferenceAccumSteps(world) calls of
// next_batch(globalTokens, seqLen, grad_accum_steps), their rows
// concatenated in order (see SpanOffsets for where each span starts).
// inputs and targets are row-major [rankRows, seqLen] (StepShape); a
// trainer cuts its micro-batches from these rows, so how a step is split
// for memory never changes which tokens it sees.
func (l *Loader) NextStep(globalTokens, seqLen int) (inputs, targets []int32, err error) {
	_, rows, err := StepShape(globalTokens, seqLen, l.worldSize)
	if err != nil {
		return nil, nil, err
	}
	n := rows * seqLen
	buf := make([]int32, 2*n)
	inputs, targets = buf[:n:n], buf[n:]
	if err := l.NextStepInto(inputs, targets, globalTokens, seqLen); err != nil {
		return nil, nil, err
	}
	return inputs, targets, nil
}

// NextStepInto is NextStep writing into inputs and targets, which must each
// hold exactly the rank's rows × seqLen tokens.
func (l *Loader) NextStepInto(inputs, targets []int32, globalTokens, seqLen int) error {
	span, rows, err := StepShape(globalTokens, seqLen, l.worldSize)
	if err != nil {
		return err
	}
	if n := rows * seqLen; len(inputs) != n || len(targets) != n {
		return fmt.Errorf("data: loader: NextStepInto needs inputs and targets of %d tokens, got %d and %d", n, len(inputs), len(targets))
	}
	accum := ReferenceSpans / l.worldSize
	for k := range accum {
		lo, hi := k*span, (k+1)*span
		if err := l.NextInto(inputs[lo:hi], targets[lo:hi], globalTokens, seqLen, accum); err != nil {
			return err
		}
	}
	return nil
}

// State returns the loader's position, for Restore.
func (l *Loader) State() LoaderState {
	return LoaderState{File: l.fileIdx, Pos: int64(l.pos), Shard: filepath.Base(l.files[l.fileIdx])}
}

// Restore moves the loader to a position State returned (possibly by
// another Loader over the same files), so that the following calls to Next
// return what they would have returned there.
func (l *Loader) Restore(st LoaderState) error {
	pos, err := l.restore("loader", st.File, st.Shard, false, "position", st.Pos, l.open)
	if err != nil {
		return err
	}
	l.pos = pos
	return nil
}

// Close releases the open shard. The loader cannot be used afterwards,
// except to Restore it.
func (l *Loader) Close() error { return l.close() }
