package train

import (
	"context"
	"math"
	"testing"
)

// byteRule is a hand-made byte table: 1 + tok%3 bytes, minus one after
// token 0 (a stand-in for the "no space after a boundary" rule).
type byteRule struct{}

func (byteRule) TokenBytes(prev, tok int) int {
	n := 1 + tok%3
	if prev == 0 {
		n--
	}
	return n
}

// A byte sidecar in EvalOptions replaces the byte rule position by
// position: the target at stream position p counts TargetBytes[p], every
// target once, whatever the stride; a sidecar shorter than the stream is
// refused.
func TestTrainerEvaluateSidecarBytes(t *testing.T) {
	tr := newToyTrainer(t, DefaultOptimizer(), 1, 12)
	tokens := toyStream(1+4*10+3, toyVocab, 21)
	sidecar := make([]uint16, len(tokens))
	var want int64
	for p := range sidecar {
		sidecar[p] = uint16(p*7%5 + p%3)
		if p > 0 {
			want += int64(sidecar[p])
		}
	}
	for _, stride := range []int{10, 3} {
		res, err := tr.Evaluate(context.Background(), tokens, byteRule{}, EvalOptions{SeqLen: 10, Stride: stride, TargetBytes: sidecar})
		if err != nil {
			t.Fatal(err)
		}
		if res.Bytes != want {
			t.Errorf("stride %d: %d bytes, the sidecar's targets hold %d", stride, res.Bytes, want)
		}
		if _, err := tr.Evaluate(context.Background(), tokens, byteRule{}, EvalOptions{SeqLen: 10, Stride: stride, TargetBytes: sidecar[:len(tokens)-1]}); err == nil {
			t.Errorf("stride %d: a short sidecar was accepted", stride)
		}
	}
}

// hostToyLoss is the toy bigram model's mean loss over every target of the
// stream, in float64 on the host from its weights.
func hostToyLoss(t *testing.T, tr *Trainer, s []uint16) float64 {
	w := weightsOf(t, tr)
	emb, mix, gain := w[0].Data, w[1].Data, w[2].Data
	sum := 0.0
	for p := 0; p+1 < len(s); p++ {
		x := int(s[p])
		h := make([]float64, toyDim)
		for j := range toyDim {
			for i := range toyDim {
				h[j] += float64(emb[x*toyDim+i]) * float64(gain[i]) * float64(mix[i*toyDim+j])
			}
		}
		logits := make([]float64, toyVocab)
		m := math.Inf(-1)
		for v := range toyVocab {
			for j := range toyDim {
				logits[v] += h[j] * float64(emb[v*toyDim+j])
			}
			m = max(m, logits[v])
		}
		z := 0.0
		for _, l := range logits {
			z += math.Exp(l - m)
		}
		sum += math.Log(z) + m - logits[s[p+1]]
	}
	return sum / float64(len(s)-1)
}

// A bigram model's loss needs one token of context, so plain and sliding
// evaluation must agree with each other and with the host computation.
func TestTrainerEvaluateMatchesHost(t *testing.T) {
	opt := DefaultOptimizer()
	tr := newToyTrainer(t, opt, 1, 12)
	s := toyStream(1024, toyVocab, 13)
	for step := range 5 {
		if _, err := tr.Step(context.Background(), []Batch{batchAt(s, step*64, 4, 16)}, 1, 0.9); err != nil {
			t.Fatal(err)
		}
	}
	val := toyStream(32*16+1, toyVocab, 14)
	want := hostToyLoss(t, tr, val)
	for _, stride := range []int{0, 16, 5, 1} {
		res, err := tr.Evaluate(context.Background(), val, byteRule{}, EvalOptions{SeqLen: 16, Stride: stride, BatchRows: 8})
		if err != nil {
			t.Fatal(err)
		}
		if res.Tokens != 32*16 || math.Abs(res.ValLoss-want) > 1e-5 {
			t.Fatalf("stride %d: val_loss %.7f over %d tokens, host %.7f over %d", stride, res.ValLoss, res.Tokens, want, 32*16)
		}
	}
	if _, err := tr.Evaluate(context.Background(), []uint16{1, 2, 99}, byteRule{}, EvalOptions{SeqLen: 2}); err == nil {
		t.Fatal("a token outside the vocabulary was accepted")
	}
}
