package tokenizer

import "github.com/paramgolf/golf/tokenizer/internal/spm"

// Span is the byte range Begin..End of an input text that one token stands
// for (the reference's SentencePieceText piece begin/end; the text in it is
// the piece's "surface").
type Span struct{ Begin, End int }

// appendNormalizedAligned is appendNormalized that also records, for each
// output byte, the offset in the input of the character it came from, and
// one more entry for the end: the reference's norm_to_orig. Whitespace
// dropped at the start and end belongs to no output byte.
func (n *normalizer) appendNormalizedAligned(dst []byte, n2o []int, in string) ([]byte, []int) {
	consumed := 0
	removeExtra := n.spec.RemoveExtraWhitespaces
	if removeExtra {
		for consumed < len(in) {
			out, used := n.prefix(in[consumed:])
			if out != " " {
				break
			}
			consumed += used
		}
	}
	if consumed == len(in) {
		return dst, n2o
	}
	ws := n.wsSymbol()
	addWS := func() {
		dst = append(dst, ws...)
		for range len(ws) {
			n2o = append(n2o, consumed)
		}
	}
	start := len(dst)
	if n.spec.AddDummyPrefix && !n.wsAsSuffix {
		addWS()
	}
	prevSpace := removeExtra
	for consumed < len(in) {
		out, used := n.prefix(in[consumed:])
		if prevSpace {
			for len(out) > 0 && out[0] == ' ' {
				out = out[1:]
			}
		}
		if len(out) > 0 {
			for i := 0; i < len(out); i++ {
				if out[i] == ' ' && n.spec.EscapeWhitespaces {
					dst = append(dst, spaceSymbol...)
					n2o = append(n2o, consumed, consumed, consumed)
				} else {
					dst = append(dst, out[i])
					n2o = append(n2o, consumed)
				}
			}
			prevSpace = out[len(out)-1] == ' '
		}
		consumed += used
		if !removeExtra {
			prevSpace = false
		}
	}
	if removeExtra {
		for len(dst)-start >= len(ws) && string(dst[len(dst)-len(ws):]) == ws {
			l := len(dst) - len(ws)
			consumed = n2o[len(n2o)-len(ws)]
			dst, n2o = dst[:l], n2o[:len(n2o)-len(ws)]
		}
	}
	if n.spec.AddDummyPrefix && n.wsAsSuffix {
		addWS()
	}
	return dst, append(n2o, consumed)
}

// EncodeSpans returns the ids of text, as Encode, and the span of text
// each stands for, as the reference's EncodeAsImmutableProto reports them.
// The spans tile the text from its first to its last non-whitespace
// character (whitespace dropped at either end belongs to no token, a
// collapsed run of it to the token that starts with the space mark). When
// a character outside the vocabulary becomes several byte pieces, the last
// one holds the character's span and the others are empty; a run of
// unknown characters without byte fallback is one token.
func (m *Model) EncodeSpans(text string) ([]int, []Span) {
	st := m.scratchSet.Get().(*encodeState)
	defer m.scratchSet.Put(st)
	norm, n2o := m.norm.appendNormalizedAligned(nil, nil, text)
	st.record, st.pieces = true, st.pieces[:0]
	e := emitter{m: m, st: st}
	m.segment(&e, string(norm))
	st.record = false
	ids := make([]int, len(e.out))
	spans := make([]Span, len(e.out))
	consumed := 0
	p := 0 // index in st.pieces, which has one entry per id
	for i, id := range e.out {
		ids[i] = int(id)
		if m.types[id] == Byte {
			// One UTF-8 character became byte pieces; the last takes its span.
			lead := consumed
			for lead > 0 && norm[lead]&0xC0 == 0x80 {
				lead--
			}
			end := lead + min(len(norm)-lead, spm.OneCharLen(norm[lead]))
			if consumed+1 == end {
				spans[i] = Span{n2o[lead], n2o[end]}
			} else {
				spans[i] = Span{n2o[lead], n2o[lead]}
			}
			consumed++
		} else {
			l := len(st.pieces[p])
			spans[i] = Span{n2o[consumed], n2o[consumed+l]}
			consumed += l
		}
		p++
	}
	st.word = e.out[:0]
	return ids, spans
}

// CaseOpsEncode transforms original with CaseOpsEncode, encodes it, and
// returns the ids with, for each, the bytes of original it stands for
// (CaseOpsByteCounts over the token surfaces): 0 for operators and for all
// but the last byte piece of a character. The counts add up to the UTF-8
// length of original without the whitespace that normalization drops at
// its ends. The model should have the CaseOps operators as user-defined
// symbols (a model trained with CaseOpsSymbols).
func (m *Model) CaseOpsEncode(original string) (ids, originalBytes []int, err error) {
	transformed := CaseOpsEncode(original)
	ids, spans := m.EncodeSpans(transformed)
	surfaces := make([]string, len(spans))
	for i, s := range spans {
		surfaces[i] = transformed[s.Begin:s.End]
	}
	counts, err := CaseOpsByteCounts(surfaces)
	if err != nil {
		return nil, nil, err
	}
	return ids, counts, nil
}

// HasCaseOps reports whether the model has the four CaseOps operators as
// user-defined symbols, so that they encode as tokens of their own.
func (m *Model) HasCaseOps() bool {
	for _, s := range CaseOpsSymbols {
		id, ok := m.mergeable[s]
		if !ok || m.types[id] != UserDefined {
			return false
		}
	}
	return true
}
