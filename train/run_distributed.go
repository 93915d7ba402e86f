package train

import (
	"encoding/json"
	"fmt"

	"github.com/gomlx/gomlx/backends"

	"github.com/paramgolf/golf/data"
)

// The run's side of data-parallel training (see distributed.go): one loader
// per rank, each reading its own spans of every step, and each rank's rows
// cut into its micro-batches.

// runDevices returns the number of data-parallel ranks a run uses: asked,
// or when asked is 0 all of the backend's devices, down to the largest
// count that divides the reference's 8 spans per step (train_gpt.py's
// grad_accum_steps = 8 / world_size).
func runDevices(backend backends.Backend, asked int) (int, error) {
	have := backend.NumDevices()
	if asked == 0 {
		n := 1
		for d := 2; d <= min(have, data.ReferenceSpans); d++ {
			if data.ReferenceSpans%d == 0 {
				n = d
			}
		}
		return n, nil
	}
	if asked < 0 || asked > have {
		return 0, fmt.Errorf("train: --devices %d: the backend %s has %d device(s)", asked, backend.Name(), have)
	}
	if _, err := data.ReferenceAccumSteps(asked); err != nil {
		return 0, fmt.Errorf("train: --devices %d: %w", asked, err)
	}
	return asked, nil
}

// openLoaders opens rank 0's loader (r.loader) and the other ranks'
// (r.rankLoaders), each of world size r.devices: the reference's stream
// spans, or the record's packed documents with --document-packing.
func (r *runner) openLoaders(files []string) error {
	for rank := range r.devices {
		src, err := r.openSource(files, rank)
		if err != nil {
			r.closeLoaders()
			return err
		}
		if rank == 0 {
			r.loader = src
		} else {
			r.rankLoaders = append(r.rankLoaders, src)
		}
	}
	return nil
}

// openSource opens one rank's step source.
func (r *runner) openSource(files []string, rank int) (stepSource, error) {
	if !r.s.DocumentPacking {
		l, err := data.NewLoader(files, rank, r.devices)
		if err != nil {
			return nil, err
		}
		return streamSource{l}, nil
	}
	bos := r.tok.BOS()
	if bos < 0 {
		return nil, fmt.Errorf("document packing needs a BOS token; tokenizer %s has none", r.tok.Name())
	}
	pl, err := data.NewPackingLoader(files, rank, r.devices, uint16(bos))
	if err != nil {
		return nil, err
	}
	return packingSource{pl, r.s.MaxDocLen}, nil
}

func (r *runner) closeLoaders() {
	if r.loader != nil {
		r.loader.Close()
	}
	for _, l := range r.rankLoaders {
		l.Close()
	}
}

// restoreLoaders puts every rank's loader at st: the ranks read the same
// stream in lockstep, each taking its own spans, so rank 0's position
// serves them all (and a run may resume on another number of devices).
func (r *runner) restoreLoaders(st json.RawMessage) error {
	if err := r.loader.restore(st); err != nil {
		return err
	}
	for _, l := range r.rankLoaders {
		if err := l.restore(st); err != nil {
			return err
		}
	}
	return nil
}

// rankSettings is the run's settings as one rank sees them: its share of
// every step's tokens, for sizing its micro-batches.
func (r *runner) rankSettings() (Settings, error) {
	_, rows, err := data.StepShape(r.s.BatchTokens, r.s.SeqLen, r.devices)
	if err != nil {
		return Settings{}, fmt.Errorf("train: %w", err)
	}
	s := r.s
	s.BatchTokens = rows * r.s.SeqLen
	if s.MicroBatchTokens > 0 && s.BatchTokens%s.MicroBatchTokens != 0 {
		return Settings{}, fmt.Errorf("train: micro-batch-tokens %d does not divide one rank's %d tokens per step (%d tokens over %d devices)",
			s.MicroBatchTokens, s.BatchTokens, r.s.BatchTokens, r.devices)
	}
	return s, nil
}

// nextStep reads one optimizer step at the run's current sequence length:
// each rank's rows as the reference reads them (data.Loader.NextStep, or
// the packing loader's, with the rank's loader), cut into r.accum
// micro-batches of consecutive rows. How a step is cut changes memory and
// speed, never which tokens it trains on.
func (r *runner) nextStep() ([][]Batch, error) {
	ranks := make([][]Batch, r.devices)
	for rank := range ranks {
		l := r.loader
		if rank > 0 {
			l = r.rankLoaders[rank-1]
		}
		micro, err := l.step(r.s.BatchTokens, r.seqLen, r.accum)
		if err != nil {
			if r.devices > 1 {
				return nil, fmt.Errorf("rank %d: %w", rank, err)
			}
			return nil, err
		}
		ranks[rank] = micro
	}
	return ranks, nil
}
