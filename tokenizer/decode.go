package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// Decode returns the text of ids, as the reference's DecodeIds:
//
//   - control pieces (<s>, </s>, <pad>) decode to nothing;
//   - the unknown piece decodes to TrainerSpec().UnkSurface (" ⁇ ");
//   - a run of byte pieces is reassembled into bytes, each complete UTF-8
//     character written as is and each byte that does not form one as U+FFFD;
//   - other pieces decode to their text with U+2581 turned into a space,
//     except that while nothing has been written yet a leading U+2581 is
//     dropped (for every such piece when the model removes extra whitespace,
//     else for the first one).
//
// Ids outside the vocabulary, which the reference rejects, decode like the
// unknown piece.
func (m *Model) Decode(ids []int) string {
	var sb strings.Builder
	var run []byte // pending byte pieces
	removeExtra := m.normSpec.RemoveExtraWhitespaces
	stripLeading := m.normSpec.AddDummyPrefix || removeExtra
	isBOSWS, bosWSSeen := true, false
	for _, id := range ids {
		if m.IsByte(id) {
			run = append(run, m.pieceByteValue(id))
			continue
		}
		writeBytePieces(&sb, run)
		run = run[:0]
		if bosWSSeen || sb.Len() > 0 {
			isBOSWS = false
		}
		bosWSSeen = false
		switch m.PieceType(id) {
		case Control:
		case Unknown, 0:
			sb.WriteString(m.trainer.UnkSurface)
		default:
			piece := m.pieces[id]
			if isBOSWS && stripLeading {
				if rest, ok := strings.CutPrefix(piece, spaceSymbol); ok {
					piece = rest
					// With extra whitespace removed, every leading space mark
					// goes until some text is written.
					bosWSSeen = !removeExtra
				}
			}
			sb.WriteString(strings.ReplaceAll(piece, spaceSymbol, " "))
		}
	}
	writeBytePieces(&sb, run)
	if m.denorm != nil {
		return string(m.denorm.appendNormalized(nil, sb.String()))
	}
	return sb.String()
}

// pieceByteValue returns the byte a byte piece stands for.
func (m *Model) pieceByteValue(id int) byte {
	b, _ := pieceByte(m.pieces[id])
	return b
}

// writeBytePieces writes reassembled bytes: valid UTF-8 characters as they
// are, every other byte as U+FFFD.
func writeBytePieces(sb *strings.Builder, run []byte) {
	for len(run) > 0 {
		r, size := utf8.DecodeRune(run)
		if r == utf8.RuneError && size == 1 {
			sb.WriteString(replacementChar)
		} else {
			sb.Write(run[:size])
		}
		run = run[size:]
	}
}
