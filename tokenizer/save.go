package tokenizer

import (
	"bytes"
	"fmt"
	"io"
	"strconv"

	"github.com/paramgolf/golf/internal/atomicfile"
)

// MarshalBinary returns the model's .model file: the bytes it was parsed
// from, or, for a trained model, the serialized ModelProto that the
// reference C++ and Python libraries load.
func (m *Model) MarshalBinary() ([]byte, error) {
	if m.raw == nil {
		return nil, fmt.Errorf("tokenizer: %s: no serialized form", m.name)
	}
	return bytes.Clone(m.raw), nil
}

// Save writes the model's .model file to path atomically (a temporary file
// renamed into place).
func (m *Model) Save(path string) error {
	data, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	return nil
}

// WriteVocab writes the .vocab text file that spm_train writes beside a
// model: one line per piece, "piece<TAB>score" with the score as C++
// prints a float (six significant digits), or the piece alone when
// withScores is false.
func (m *Model) WriteVocab(w io.Writer, withScores bool) error {
	var b []byte
	for i, p := range m.pieces {
		b = append(b, p...)
		if withScores {
			b = append(b, '\t')
			b = appendCxxFloat(b, m.scores[i])
		}
		b = append(b, '\n')
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("tokenizer: write vocab: %w", err)
	}
	return nil
}

// appendCxxFloat formats f as std::ostream << float does by default
// (printf's %g with precision 6).
func appendCxxFloat(b []byte, f float32) []byte {
	return strconv.AppendFloat(b, float64(f), 'g', 6, 32)
}
