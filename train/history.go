package train

// TrainPoint is one logged training step.
type TrainPoint struct {
	Step        int     `json:"step"`          // optimizer steps done
	TrainTimeMs float64 `json:"train_time_ms"` // training time (evaluation excluded)
	Loss        float64 `json:"train_loss"`    // mean loss of the step's micro-batches, nats
	LRScale     float64 `json:"lr_scale"`      // schedule multiplier used by the step
}

// ValPoint is one evaluation during training.
type ValPoint struct {
	Step        int     `json:"step"`
	TrainTimeMs float64 `json:"train_time_ms"`
	ValLoss     float64 `json:"val_loss"`
	ValBPB      float64 `json:"val_bpb"`
	// Tokens is the number of validation targets scored: the capped
	// periodic count (Settings.ValTokens) or the whole split.
	Tokens int64 `json:"tokens,omitempty"`
}

// History is the loss curve of a run, carried across resumes (train/lossplot
// draws it).
type History struct {
	Train []TrainPoint `json:"train"`
	Val   []ValPoint   `json:"val"`
}
