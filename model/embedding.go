package model

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// embedding is the tied token embedding tok_emb [V, D], N(0,
// EmbedInitStd): the input lookup and, unless UntiedHead, the output head.
type embedding struct{ c Config }

func (m embedding) params() []ParamSpec {
	return []ParamSpec{{"tok_emb", []int{m.c.VocabSize, m.c.ModelDim}, Embedding, Normal(m.c.EmbedInitStd)}}
}

// embed returns the raw token embeddings [B*T, D] (plus the BigramHash
// term when configured), before the SmearGate and the first rmsnorm.
func (f *forward) embed() *Node {
	n := f.b * f.t
	x := graph.Gather(f.param("tok_emb"), graph.Reshape(f.inputs, n, 1))
	if f.cfg.BigramVocab > 0 {
		x = graph.Add(x, f.bigram())
	}
	return x
}

// bigramHash is the hashed-bigram embedding (PR #162, removed by #1218):
// bigram/table [Vb, Db] zero-initialised (class Table, the embedding's
// optimizer group), bigram/proj [D, Db] when Db != D (see auxProjInit) and
// bigram/scale [1] = 0.05 (class Control).
type bigramHash struct{ c Config }

func (m bigramHash) params() []ParamSpec {
	c := m.c
	ps := []ParamSpec{{"bigram/table", []int{c.BigramVocab, c.BigramDim}, Table, Zeros()}}
	if c.BigramDim != c.ModelDim {
		ps = append(ps, ParamSpec{"bigram/proj", []int{c.ModelDim, c.BigramDim}, Control, auxProjInit(c.ModelDim, c.BigramDim)})
	}
	return append(ps, ParamSpec{"bigram/scale", []int{1}, Control, Const(0.05)})
}

// Bigram hash multipliers of the records' bigram_hash (T1019).
const (
	bigramMulCur  = 36313
	bigramMulPrev = 27191
)

// bigram returns scale · proj(table[h]) [B*T, D], h = bigramIndices(inputs).
func (f *forward) bigram() *Node {
	c := f.cfg
	h := bigramIndices(f.inputs, c.BigramVocab)
	x := graph.Gather(f.param("bigram/table"), graph.Reshape(h, f.b*f.t, 1))
	if c.BigramDim != c.ModelDim {
		x = f.linearNamed(x, "bigram/proj")
	}
	return graph.Mul(x, f.scalar("bigram/scale"))
}

// bigramIndices returns the records' hash [B, T] of each token of ids [B, T]
// (int32) and the one before it in its row, into a table of vb rows:
//
//	h_0 = vb-1;  h_t = ((36313·t_t) XOR (27191·t_{t-1})) mod (vb-1)
//
// with the products wrapping in int32 and mod a floor modulo (torch's %),
// so h_t is in [0, vb-1) for every token id.
func bigramIndices(ids *Node, vb int) *Node {
	g := ids.Graph()
	t := ids.Shape().Dimensions[1]
	m := graph.Scalar(g, dtypes.Int32, int32(vb-1))
	h := graph.Add(graph.ZerosLike(sliceAxis(ids, 1, 0, 1)), m)
	if t > 1 {
		cur := graph.MulScalar(sliceAxis(ids, 1, 1, t), bigramMulCur)
		prev := graph.MulScalar(sliceAxis(ids, 1, 0, t-1), bigramMulPrev)
		// The products wrap negative from token 59,139 up; gomlx's Rem
		// truncates (as Go's %), so the remainder is moved into [0, mod).
		rest := graph.Rem(graph.Add(graph.Rem(graph.BitwiseXor(cur, prev), m), m), m)
		h = graph.Concatenate([]*Node{h, rest}, 1)
	}
	return h
}

// auxProjInit is the initialiser of the BigramHash and value-embedding
// projections [out, in]. Their modules zero them, but the records' GPT
// _init_weights then re-initialises every nn.Linear without _zero_init that
// is at least 64x64 orthogonally (T549, T1019): so orthogonal(1) when both
// sides are >= 64, zeros otherwise. (A zero projection of a zero table would
// never receive a gradient.)
func auxProjInit(out, in int) Init {
	if out >= 64 && in >= 64 {
		return Orthogonal(1)
	}
	return Zeros()
}
