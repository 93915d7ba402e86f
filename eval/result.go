package eval

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Recorder receives what an evaluation mode scores, in the order it scores
// it. Evaluate records into a strict tally; the audit records into one that
// also counts double and missing scores and asks for whole distributions.
type Recorder interface {
	// Score records the loss, in nats, of the target at stream position pos
	// (1 .. len(tokens)-1).
	Score(pos int, nats float64)
	// Probe reports whether the recorder wants the whole distribution the
	// target at pos is scored from (see Distribution).
	Probe(pos int) bool
	// Distribution receives, for a probed position, the natural log of the
	// probability the mode gives every token of the vocabulary at pos, the
	// distribution its Score for pos is -logp[target] of.
	Distribution(pos int, logp []float64)
}

// Mode is an evaluation mode: it scores the targets of a validation
// stream, reporting each to rec. A legal mode scores every target exactly
// once, from a normalised distribution that depends only on the tokens
// before the target (the audit checks all three).
type Mode interface {
	Score(ctx context.Context, tokens []uint16, rec Recorder) error
}

// tally is the Recorder of Evaluate: one loss per target, the first
// double score an error.
type tally struct {
	nats  []float64 // by stream position; NaN where not scored
	err   error
	first time.Time
}

func newTally(n int) *tally {
	t := &tally{nats: make([]float64, n)}
	for i := range t.nats {
		t.nats[i] = math.NaN()
	}
	return t
}

func (t *tally) Score(pos int, nats float64) {
	if t.err != nil {
		return
	}
	switch {
	case pos < 1 || pos >= len(t.nats):
		t.err = fmt.Errorf("eval: scored position %d is outside the stream's targets 1..%d", pos, len(t.nats)-1)
	case !math.IsNaN(t.nats[pos]):
		t.err = fmt.Errorf("eval: target at position %d scored twice", pos)
	case math.IsNaN(nats) || math.IsInf(nats, 0):
		t.err = fmt.Errorf("eval: non-finite loss %v at validation position %d", nats, pos)
	default:
		t.nats[pos] = nats
	}
}

func (t *tally) Probe(int) bool              { return false }
func (t *tally) Distribution(int, []float64) {}

// check reports the first target never scored.
func (t *tally) check() error {
	if t.err != nil {
		return t.err
	}
	for p := 1; p < len(t.nats); p++ {
		if math.IsNaN(t.nats[p]) {
			return fmt.Errorf("eval: target at position %d was never scored", p)
		}
	}
	return nil
}

// Phase is the wall-clock time of one part of an evaluation.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
}

// Result is the outcome of one evaluation.
type Result struct {
	ValLoss float64 `json:"val_loss"` // mean loss per target, nats
	ValBPB  float64 `json:"val_bpb"`  // bits per byte, BitsPerByte
	Tokens  int64   `json:"tokens"`   // scored targets
	Bytes   int64   `json:"bytes"`    // their bytes (the ByteSource)
	// Windows is the number of model rows run (windows, or TTT chunk rows).
	Windows  int           `json:"windows"`
	Duration time.Duration `json:"duration_ns"`
	// Phases splits Duration: "ngram hints", "score", "ttt adapt", "ttt
	// global sgd" as they apply.
	Phases []Phase `json:"phases"`
	// Budget estimates the time on the challenge's hardware.
	Budget Budget `json:"budget"`

	tokens []uint16
	nats   []float64
	bytes  []int32
}

// Nats returns the loss of the target at every stream position (index 0,
// not a target, is NaN).
func (r *Result) Nats() []float64 { return r.nats }

// TargetBytes returns the byte count of the target at every stream
// position (index 0 is 0).
func (r *Result) TargetBytes() []int32 { return r.bytes }

// BitsPerByte turns a total loss in nats over tokens targets standing for
// bytes bytes into the challenge's two metrics:
//
//	val_loss = lossSum / tokens
//	val_bpb  = val_loss / ln 2 · tokens / bytes  (= lossSum / (bytes · ln 2))
func BitsPerByte(lossSum float64, tokens, bytes int64) (valLoss, valBPB float64) {
	valLoss = lossSum / float64(tokens)
	valBPB = valLoss / math.Ln2 * float64(tokens) / float64(bytes)
	return valLoss, valBPB
}

// finish fills the metrics from per-position losses and bytes, summed in
// float64 in stream order (the order of WriteTokenLosses, so that the file
// reproduces them exactly).
func (r *Result) finish(tokens []uint16, nats []float64, bytes []int32) error {
	r.tokens, r.nats, r.bytes = tokens, nats, bytes
	var sum float64
	var nb int64
	for p := 1; p < len(tokens); p++ {
		sum += nats[p]
		nb += int64(bytes[p])
	}
	r.Tokens, r.Bytes = int64(len(tokens)-1), nb
	if nb <= 0 {
		return fmt.Errorf("eval: the %d scored targets stand for 0 bytes: wrong byte table?", r.Tokens)
	}
	r.ValLoss, r.ValBPB = BitsPerByte(sum, r.Tokens, nb)
	return nil
}

// TokenLossesHeader is the first line of a token-losses file.
const TokenLossesHeader = "pos\ttarget\tnats\tbytes"

// WriteTokenLosses writes one tab-separated line per scored target in
// stream order, after TokenLossesHeader: pos (the target's index in the
// validation stream), target (its token id), nats (its loss, shortest
// exact float64 form) and bytes. Summing the nats and bytes columns in
// file order in float64 and applying BitsPerByte gives exactly ValLoss and
// ValBPB.
func (r *Result) WriteTokenLosses(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(TokenLossesHeader + "\n"); err != nil {
		return err
	}
	var line []byte
	for p := 1; p < len(r.tokens); p++ {
		line = strconv.AppendInt(line[:0], int64(p), 10)
		line = append(line, '\t')
		line = strconv.AppendInt(line, int64(r.tokens[p]), 10)
		line = append(line, '\t')
		line = strconv.AppendFloat(line, r.nats[p], 'g', -1, 64)
		line = append(line, '\t')
		line = strconv.AppendInt(line, int64(r.bytes[p]), 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
