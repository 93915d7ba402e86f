package model

import "github.com/gomlx/gomlx/pkg/core/graph"

// head is the output head: with UntiedHead its own lm_head [V, D] (zero,
// class Head; otherwise the tied tok_emb), and with AsymLogit the softcap's
// halves softcap_pos, softcap_neg [1] (LogitSoftcap, class Frozen).
type head struct{ c Config }

func (m head) params() []ParamSpec {
	c := m.c
	var ps []ParamSpec
	if c.UntiedHead {
		ps = append(ps, ParamSpec{"lm_head", []int{c.VocabSize, c.ModelDim}, Head, Zeros()})
	}
	if c.AsymLogit {
		ps = append(ps,
			ParamSpec{"softcap_pos", []int{1}, Frozen, Const(c.LogitSoftcap)},
			ParamSpec{"softcap_neg", []int{1}, Frozen, Const(c.LogitSoftcap)},
		)
	}
	return ps
}

// headWeight is the name of the [V, D] matrix the logits multiply.
func (c Config) headWeight() string {
	if c.UntiedHead {
		return "lm_head"
	}
	return "tok_emb"
}

// logits maps the final hidden state h [B*T, D] to soft-capped logits
// [B*T, V]:
//
//	z = h Wᵀ (+ adapter head on h),  W = tok_emb (tied) or lm_head
//	cap · tanh(z / cap)                       (the baseline)
//	s± · tanh(z / s±), s₊ for z ≥ 0, s₋ else  (AsymLogit)
func (f *forward) logits(h *Node) *Node {
	c := f.cfg
	z := f.linearNamed(h, c.headWeight())
	z = f.addAdapted(z, AdaptHead, -1, h)
	if !c.AsymLogit {
		return graph.MulScalar(graph.Tanh(graph.DivScalar(z, c.LogitSoftcap)), c.LogitSoftcap)
	}
	sp, sn := f.scalar("softcap_pos"), f.scalar("softcap_neg")
	pos := graph.Mul(sp, graph.Tanh(graph.Div(z, sp)))
	neg := graph.Mul(sn, graph.Tanh(graph.Div(z, sn)))
	return graph.Where(graph.GreaterOrEqual(z, graph.ScalarZero(f.g, z.DType())), pos, neg)
}
