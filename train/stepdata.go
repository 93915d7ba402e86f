package train

import (
	"encoding/json"
	"fmt"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/strictjson"
)

// stepSource reads a run's optimizer steps: the reference's stream spans
// (data.Loader) or the record's packed documents (data.PackingLoader).
type stepSource interface {
	// step returns one optimizer step's rows for sequence length seqLen
	// cut into accum micro-batches.
	step(batchTokens, seqLen, accum int) ([]Batch, error)
	state() (json.RawMessage, error)
	restore(json.RawMessage) error
	Close() error
}

// streamSource is the baseline's loader: 8 spans of the token stream.
type streamSource struct{ l *data.Loader }

func (s streamSource) step(batchTokens, seqLen, accum int) ([]Batch, error) {
	in, tg, err := s.l.NextStep(batchTokens, seqLen)
	if err != nil {
		return nil, fmt.Errorf("train: data: %w", err)
	}
	return SplitStep(in, tg, seqLen, accum)
}

func (s streamSource) state() (json.RawMessage, error) { return json.Marshal(s.l.State()) }

func (s streamSource) restore(b json.RawMessage) error {
	st, err := data.ParseLoaderState(b)
	if err != nil {
		return err
	}
	return s.l.Restore(st)
}

func (s streamSource) Close() error { return s.l.Close() }

// packingSource is the record's document-packing loader: each micro-batch
// carries segment ids, documents cut at maxDocLen (0: the sequence length).
type packingSource struct {
	l         *data.PackingLoader
	maxDocLen int
}

func (s packingSource) step(batchTokens, seqLen, accum int) ([]Batch, error) {
	capLen := s.maxDocLen
	if capLen == 0 {
		capLen = seqLen
	}
	in, tg, seg, err := s.l.NextStep(batchTokens, seqLen, capLen)
	if err != nil {
		return nil, fmt.Errorf("train: data: %w", err)
	}
	micro, err := SplitStep(in, tg, seqLen, accum)
	if err != nil {
		return nil, err
	}
	n := len(in) / accum
	for i := range micro {
		micro[i].Segments = seg[i*n : (i+1)*n : (i+1)*n]
	}
	return micro, nil
}

func (s packingSource) state() (json.RawMessage, error) { return json.Marshal(s.l.State()) }

func (s packingSource) restore(b json.RawMessage) error {
	var st data.PackingState
	if err := strictjson.Decode(b, &st); err != nil {
		return fmt.Errorf("packing loader state: %w", err)
	}
	return s.l.Restore(st)
}

func (s packingSource) Close() error { return s.l.Close() }
