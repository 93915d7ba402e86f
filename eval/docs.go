package eval

// Doc is one document of a validation stream, as the record's _find_docs
// cuts it: tokens[Start : Start+Len] runs from the document's BOS to the
// next document's BOS inclusive (or to the end of the stream), so its
// targets are the stream positions Start+1 .. Start+Len-1 (Len-1 of them)
// and every target of the stream belongs to exactly one document. A stream
// that does not begin with BOS gets a leading document from position 0.
type Doc struct {
	Start, Len int
}

// Targets returns the number of targets of the document, Len-1.
func (d Doc) Targets() int { return d.Len - 1 }

// FirstTarget returns the stream position of the document's first target.
func (d Doc) FirstTarget() int { return d.Start + 1 }

// Documents splits a stream of tokens into documents at every bos token.
func Documents(tokens []uint16, bos int) []Doc {
	var starts []int
	for i, t := range tokens {
		if int(t) == bos {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 || starts[0] != 0 {
		starts = append([]int{0}, starts...)
	}
	docs := make([]Doc, 0, len(starts))
	for i, s := range starts {
		end := len(tokens)
		if i+1 < len(starts) {
			end = starts[i+1] + 1
		}
		if end-s >= 2 {
			docs = append(docs, Doc{Start: s, Len: end - s})
		}
	}
	return docs
}

// segmentIDs writes into seg, for the len(seg) input positions starting at
// stream position start, the id of the document each input belongs to:
// the count of BOS tokens in tokens[start:p+1]. Inputs with the same id are
// in the same document, so attention restricted to equal ids never crosses
// a BOS boundary (a BOS input starts its document).
func segmentIDs(seg []int32, tokens []uint16, start, bos int) {
	id := int32(0)
	for i := range seg {
		p := start + i
		if p < len(tokens) && int(tokens[p]) == bos {
			id++
		}
		seg[i] = id
	}
}
