package audit

import (
	"fmt"
	"sort"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/tokenizer"
)

// Decoder turns token ids into text (*tokenizer.Model).
type Decoder interface {
	Decode(ids []int) string
}

// Reference gives the true UTF-8 length of the text of a document.
type Reference interface {
	// DocBytes returns the byte length of document k (0-based, in stream
	// order) whose tokens after its BOS are body; ok is false when the
	// reference has no such document.
	DocBytes(k int, body []uint16) (n int, ok bool)
	// Name describes the reference in the report.
	Name() string
}

// DecodedText is the reference of a tokenizer's byte rule: a document's
// bytes are the UTF-8 length of its decoded tokens.
func DecodedText(d Decoder) Reference { return decoded{d: d} }

// CaseOpsText is the reference of a CaseOps byte sidecar: a document's
// bytes are the UTF-8 length of its decoded tokens with the CaseOps
// transform undone (tokenizer.CaseOpsDecode), the original text.
func CaseOpsText(d Decoder) Reference { return decoded{d: d, caseOps: true} }

type decoded struct {
	d       Decoder
	caseOps bool
}

// text returns the reference text of tokens.
func (r decoded) text(tokens []uint16) string {
	s := r.d.Decode(ints(tokens))
	if r.caseOps {
		if orig, err := tokenizer.CaseOpsDecode(s); err == nil {
			return orig
		}
		// Cut inside an operator sequence (a truncated document): the
		// transformed text is all there is.
	}
	return s
}

func (r decoded) DocBytes(_ int, body []uint16) (int, bool) { return len(r.text(body)), true }

func (r decoded) Name() string {
	if r.caseOps {
		return "the original (CaseOps-decoded) validation text"
	}
	return "the decoded validation text"
}

// OriginalText is the reference of a CaseOps byte sidecar: the byte
// lengths of the original (untransformed) documents, in stream order.
func OriginalText(lengths []int) Reference { return original(lengths) }

type original []int

func (r original) DocBytes(k int, _ []uint16) (int, bool) {
	if k < len(r) {
		return r[k], true
	}
	return 0, false
}
func (r original) Name() string { return "the original text" }

func ints(x []uint16) []int {
	out := make([]int, len(x))
	for i, v := range x {
		out[i] = int(v)
	}
	return out
}

// CheckBytes compares the byte counts an evaluation uses (src over tokens)
// with the reference document by document: the targets of document k —
// the tokens after its BOS up to and including the next BOS, which counts
// 0 — must stand for exactly the reference's bytes of its text. A stream
// truncated inside its last document compares that document's decoded
// prefix. A failure names the document and, against decoded text, the first
// target where the running counts part.
func CheckBytes(tokens []uint16, src eval.ByteSource, ref Reference, bos int) Check {
	c := Check{Name: "bytes"}
	counts, err := src.StreamBytes(tokens)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		return c
	}
	if bos <= 0 {
		bos = 1
	}
	var total, want int64
	docs, bad, skipped := 0, 0, 0
	_, whole := ref.(original)
	for _, d := range eval.Documents(tokens, bos) {
		if int(tokens[d.Start]) != bos {
			skipped++ // a leading partial document: its first target's space depends on a token before the stream
			continue
		}
		k := docs
		docs++
		end := d.Start + d.Len // targets d.Start+1 .. end-1
		bodyEnd := end
		if int(tokens[end-1]) == bos {
			bodyEnd-- // the next document's BOS
		} else if whole && end == len(tokens) {
			skipped++ // cut by the stream's truncation: the original is longer
			continue
		}
		var got int64
		for p := d.Start + 1; p < end; p++ {
			got += int64(counts[p])
		}
		n, ok := ref.DocBytes(k, tokens[d.Start+1:bodyEnd])
		if !ok {
			skipped++
			continue
		}
		total += got
		want += int64(n)
		if got != int64(n) {
			bad++
			if len(c.Failures) < maxNamed {
				msg := fmt.Sprintf("document %d (positions %d-%d): %d bytes counted, %s has %d", k, d.Start+1, end-1, got, ref.Name(), n)
				if dd, ok := ref.(decoded); ok {
					if p := firstDivergence(tokens, counts, d.Start, bodyEnd, dd); p > 0 {
						msg += fmt.Sprintf("; counts part from the text at position %d (token %d)", p, tokens[p])
					}
				}
				c.Failures = append(c.Failures, msg)
			}
		}
	}
	if bad > 0 {
		c.Status = Fail
		c.Detail = fmt.Sprintf("%d of %d documents miscounted: %d bytes counted, %s has %d", bad, docs, total, ref.Name(), want)
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("%d bytes in %d documents equal %s", total, docs-skipped, ref.Name())
	if skipped > 0 {
		c.Detail += fmt.Sprintf(" (%d documents not compared)", skipped)
	}
	return c
}

// firstDivergence returns the first position p in (start, end) where the
// counted bytes of targets start+1..p differ from the UTF-8 length of the
// decoded tokens start+1..p, by bisection (0 if none is found).
func firstDivergence(tokens []uint16, counts []int32, start, end int, d decoded) int {
	cum := make([]int64, end-start) // cum[i]: counts of targets start+1 .. start+i
	for i := 1; i < len(cum); i++ {
		cum[i] = cum[i-1] + int64(counts[start+i])
	}
	differs := func(i int) bool { return int64(len(d.text(tokens[start+1:start+1+i]))) != cum[i] }
	i := sort.Search(len(cum), func(i int) bool { return i > 0 && differs(i) })
	if i >= len(cum) {
		return 0
	}
	return start + i
}
