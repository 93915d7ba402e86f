package eval

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/paramgolf/golf/model"
)

// Options configures one evaluation pass over a validation stream.
type Options struct {
	// SeqLen is the evaluation context in tokens: the window length of the
	// plain and sliding passes and the longest context test-time training
	// gives a target (the record's EVAL_SEQ_LEN = TTT_EVAL_SEQ_LEN = 2560).
	// It is independent of the training sequence length.
	SeqLen int
	// Stride is the sliding-window step: 0 or SeqLen scores non-overlapping
	// windows; a smaller stride scores every target with at least
	// SeqLen-Stride tokens of context (the records used 64). Test-time
	// training ignores it.
	Stride int
	// DocIsolated makes attention stop at document boundaries (BOS): a
	// target is predicted from its own document only (the record's varlen
	// attention). Test-time training is always document-isolated.
	DocIsolated bool
	// BOS is the token that starts a document; 0 means 1, the challenge's
	// tokenizers' id.
	BOS int
	// BatchTokens is about how many tokens one graph call scores (rows =
	// BatchTokens/SeqLen); 0 means 65536.
	BatchTokens int
	// Tilt, when set, applies the token n-gram tilt to every score (§6.4).
	Tilt *Tilt
	// TTT, when set, scores by score-first LoRA test-time training (§6.3)
	// instead of fixed windows.
	TTT *TTT
	// BudgetTargets is the number of validation targets the time budget
	// estimate scales to (see Budget); 0 means RecordValTargets.
	BudgetTargets int64
	// Progress, when set, receives periodic progress lines.
	Progress io.Writer
}

// bos returns the document-start token id.
func (o Options) bos() int {
	if o.BOS > 0 {
		return o.BOS
	}
	return 1
}

// stride returns the effective sliding stride.
func (o Options) stride() int {
	if o.Stride <= 0 {
		return o.SeqLen
	}
	return o.Stride
}

// rows returns how many windows of SeqLen tokens one graph call holds.
func (o Options) rows() int {
	bt := o.BatchTokens
	if bt <= 0 {
		bt = 65536
	}
	return max(1, bt/o.SeqLen)
}

// Validate reports settings no evaluation can use.
func (o Options) Validate(cfg model.Config) error {
	var errs []error
	if o.SeqLen <= 0 {
		errs = append(errs, fmt.Errorf("eval sequence length must be positive, got %d", o.SeqLen))
	}
	if o.Stride < 0 || (o.SeqLen > 0 && o.Stride > o.SeqLen) {
		errs = append(errs, fmt.Errorf("eval stride must be in [0, %d] (the eval sequence length), got %d", o.SeqLen, o.Stride))
	}
	if o.BOS < 0 || o.BOS >= cfg.VocabSize {
		errs = append(errs, fmt.Errorf("BOS id %d is outside the vocabulary of %d", o.BOS, cfg.VocabSize))
	}
	if o.BatchTokens < 0 {
		errs = append(errs, fmt.Errorf("batch tokens must not be negative, got %d", o.BatchTokens))
	}
	if o.Tilt != nil {
		if err := o.Tilt.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.TTT != nil {
		if err := o.TTT.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Order is the order in which test-time training scores documents.
type Order string

const (
	// StreamOrder scores documents in validation-stream order, in batches
	// of consecutive documents, and the global phase trains on the scored
	// prefix of the stream: a target's score depends only on the artifact
	// and the tokens before it (strict causality).
	StreamOrder Order = "stream"
	// RecordOrder is PR #2135's order: documents sorted by length, batches
	// processed longest first, the global phase trained on the first
	// documents so scored (the longest ones), and a document's last chunk
	// scored in a window that ends at the document's end. A document's
	// score then depends on the lengths of documents after it in the
	// stream; the audit reports this order as not stream-causal.
	RecordOrder Order = "record"
)

// TTT configures score-first LoRA test-time training (record-stack.md
// §6.3). Every target is scored before any update that could have seen it:
// a document's chunk is scored with adapters trained on its earlier chunks
// only (plus warm-started A matrices and a base model globally trained on
// documents already scored).
type TTT struct {
	// Rank and Alpha of each LoRA: Δ(x) = (x Aᵀ) Bᵀ · Alpha/Rank,
	// A ~ U(±1/sqrt(in)), B = 0 (record 80 and 144).
	Rank  int     `json:"rank"`
	Alpha float64 `json:"alpha"`
	// Which targets get an adapter at every virtual layer (Q, K, V, O, MLP)
	// and on the head (record: all but K).
	Q    bool `json:"q"`
	K    bool `json:"k"`
	V    bool `json:"v"`
	O    bool `json:"o"`
	MLP  bool `json:"mlp"`
	Head bool `json:"head"`
	// Chunk is the number of targets scored, then trained on, per step
	// (record 48).
	Chunk int `json:"chunk"`
	// AdamW of the adapters, one step per chunk (record lr 8e-5, β (0,
	// 0.99), ε 1e-10, weight decay 2.0).
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
	// BatchDocs is how many documents are adapted side by side, one row
	// and one adapter each (record 64).
	BatchDocs int `json:"batch_docs"`
	// WarmStartA keeps each row's A from the previous batch (B and the
	// optimizer state are reset), as the record does.
	WarmStartA bool `json:"warm_start_a"`
	// Order of the documents; "" means StreamOrder.
	Order Order `json:"order"`
	// Phases and PrefixDocs configure the phased global SGD: after each
	// of Phases equal shares of the first PrefixDocs documents is scored,
	// every non-frozen base weight is trained on all documents scored so
	// far, and a fresh adapter (new A) continues (record 1 and 2500; 0
	// prefix documents turns the phase off).
	Phases     int `json:"phases"`
	PrefixDocs int `json:"prefix_docs"`
	// The global phase's SGD: learning rate (cosine to 0 over its chunks),
	// momentum, global gradient-norm clip, tokens per chunk (one step
	// each; the last chunk is skipped, as the record does) and epochs
	// (record 0.001, 0.9, 1.0, 32768, 1).
	GlobalLR          float64 `json:"global_lr"`
	GlobalMomentum    float64 `json:"global_momentum"`
	GlobalClip        float64 `json:"global_clip"`
	GlobalChunkTokens int     `json:"global_chunk_tokens"`
	GlobalEpochs      int     `json:"global_epochs"`
	// GlobalRanks is the number of ranks whose data-parallel step the
	// global phase reproduces (record 8, its GPUs): a chunk's sequences
	// are split over them as the record splits them, and a step's loss is
	// the mean of the ranks' mean losses, as its gradient all-reduce
	// averages them. 0 or 1: one rank, the mean over all sequences.
	GlobalRanks int `json:"global_ranks"`
	// GlobalBatchSeqs caps the sequences one rank takes per step (record
	// 32; 0: all of its share of the chunk in one step).
	GlobalBatchSeqs int `json:"global_batch_seqs"`
	// Seed draws the adapters' A matrices.
	Seed int64 `json:"seed"`
}

// RecordTTT returns PR #2135's test-time-training settings in golf's
// default stream order.
func RecordTTT() TTT {
	return TTT{
		Rank: 80, Alpha: 144, Q: true, V: true, O: true, MLP: true, Head: true,
		Chunk: 48, LR: 8e-5, Beta1: 0, Beta2: 0.99, Eps: 1e-10, WeightDecay: 2.0,
		BatchDocs: 64, WarmStartA: true, Order: StreamOrder,
		Phases: 1, PrefixDocs: 2500,
		GlobalLR: 0.001, GlobalMomentum: 0.9, GlobalClip: 1.0, GlobalChunkTokens: 32768, GlobalEpochs: 1,
		GlobalRanks: 8, GlobalBatchSeqs: 32,
		Seed: 1,
	}
}

// Targets lists the adapted targets.
func (t TTT) Targets() []model.AdapterTarget {
	var ts []model.AdapterTarget
	for _, x := range []struct {
		on bool
		t  model.AdapterTarget
	}{{t.Q, model.AdaptQ}, {t.K, model.AdaptK}, {t.V, model.AdaptV}, {t.O, model.AdaptO}, {t.MLP, model.AdaptMLP}, {t.Head, model.AdaptHead}} {
		if x.on {
			ts = append(ts, x.t)
		}
	}
	return ts
}

// order returns the effective order.
func (t TTT) order() Order {
	if t.Order == "" {
		return StreamOrder
	}
	return t.Order
}

// Validate reports settings test-time training cannot use.
func (t TTT) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("ttt: "+format, args...))
		}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	check(t.Rank > 0, "rank must be positive, got %d", t.Rank)
	check(finite(t.Alpha) && t.Alpha > 0, "alpha must be positive, got %v", t.Alpha)
	check(len(t.Targets()) > 0, "no adapter targets (enable at least one of q, k, v, o, mlp, head)")
	check(t.Chunk > 0, "chunk must be positive, got %d", t.Chunk)
	check(finite(t.LR) && t.LR >= 0, "lr must be >= 0, got %v", t.LR)
	check(t.Beta1 >= 0 && t.Beta1 < 1 && t.Beta2 >= 0 && t.Beta2 < 1, "betas must be in [0, 1), got %v, %v", t.Beta1, t.Beta2)
	check(finite(t.Eps) && t.Eps > 0, "eps must be positive, got %v", t.Eps)
	check(finite(t.WeightDecay) && t.WeightDecay >= 0, "weight decay must be >= 0, got %v", t.WeightDecay)
	check(t.BatchDocs > 0, "batch docs must be positive, got %d", t.BatchDocs)
	check(slices.Contains([]Order{"", StreamOrder, RecordOrder}, t.Order), "order must be %q or %q, got %q", StreamOrder, RecordOrder, t.Order)
	check(t.PrefixDocs >= 0, "prefix docs must be >= 0, got %d", t.PrefixDocs)
	check(t.PrefixDocs == 0 || t.Phases > 0, "phases must be positive with prefix docs, got %d", t.Phases)
	if t.PrefixDocs > 0 {
		check(finite(t.GlobalLR) && t.GlobalLR >= 0, "global lr must be >= 0, got %v", t.GlobalLR)
		check(t.GlobalMomentum >= 0 && t.GlobalMomentum < 1, "global momentum must be in [0, 1), got %v", t.GlobalMomentum)
		check(finite(t.GlobalClip) && t.GlobalClip >= 0, "global clip must be >= 0, got %v", t.GlobalClip)
		check(t.GlobalChunkTokens > 0, "global chunk tokens must be positive, got %d", t.GlobalChunkTokens)
		check(t.GlobalEpochs >= 0, "global epochs must be >= 0, got %d", t.GlobalEpochs)
		check(t.GlobalRanks >= 0, "global ranks must be >= 0, got %d", t.GlobalRanks)
		check(t.GlobalBatchSeqs >= 0, "global batch seqs must be >= 0, got %d", t.GlobalBatchSeqs)
	}
	return errors.Join(errs...)
}
