package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/paramgolf/golf/tokenizer"
)

// The validation byte sidecar (the record's CaseOps data, PR #1729): beside
// each validation shard fineweb_val_NNNNNN.bin, a file
// fineweb_val_bytes_NNNNNN.bin in the same shard format, holding one uint16
// per token of the shard: the UTF-8 bytes of the original (untransformed)
// text that the token stands for, 0 for BOS and for CaseOps operators. When
// a dataset has it, val_bpb divides by these bytes instead of the byte
// table's, which would count the transformed text.

// sidecarPrefix starts the names of byte sidecar files.
const sidecarPrefix = "fineweb_val_bytes_"

// SidecarName returns the file name of the byte sidecar of validation
// shard index, e.g. "fineweb_val_bytes_000000.bin".
func SidecarName(index int) string { return fmt.Sprintf("%s%06d.bin", sidecarPrefix, index) }

// isSidecar reports whether a file name is a byte sidecar's.
func isSidecar(name string) bool { return strings.HasPrefix(name, sidecarPrefix) }

// SidecarFor returns the sidecar path that belongs to a validation shard
// path (fineweb_val_NNNNNN.bin -> fineweb_val_bytes_NNNNNN.bin), or "" when
// path is not a validation shard's name.
func SidecarFor(shard string) string {
	dir, base := filepath.Split(shard)
	rest, ok := strings.CutPrefix(base, "fineweb_val_")
	if !ok || isSidecar(base) {
		return ""
	}
	return filepath.Join(dir, sidecarPrefix+rest)
}

// ValidationByteFiles returns the byte sidecar files in dir, sorted by
// name, or an error if there are none.
func ValidationByteFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: byte sidecar: %w", err)
	}
	var files []string
	for _, e := range entries {
		if ok, _ := filepath.Match(sidecarPrefix+"*.bin", e.Name()); ok && !e.IsDir() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("data: no byte sidecar (%s*.bin) in %s", sidecarPrefix, dir)
	}
	return files, nil
}

// HasValidationBytes reports whether dir holds a byte sidecar.
func HasValidationBytes(dir string) bool {
	files, err := ValidationByteFiles(dir)
	return err == nil && len(files) > 0
}

// LoadValidationBytes returns the first n values of dir's byte sidecar:
// the bytes of each token of the validation stream that LoadValidation
// returns (n is that stream's length), so that the target at stream
// position p counts bytes[p]. Every validation shard must have its sidecar,
// with the same number of tokens; the record's load_validation_byte_sidecar
// checks the same.
func LoadValidationBytes(dir string, n int) ([]uint16, error) {
	vals, err := ValFiles(dir)
	if err != nil {
		return nil, err
	}
	sides, err := ValidationByteFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(sides) != len(vals) {
		return nil, fmt.Errorf("data: byte sidecar: %d sidecar files for %d validation shards in %s", len(sides), len(vals), dir)
	}
	out := make([]uint16, n)
	at := 0
	for i, v := range vals {
		if SidecarFor(v) != sides[i] {
			return nil, fmt.Errorf("data: byte sidecar: %s does not belong to %s", filepath.Base(sides[i]), filepath.Base(v))
		}
		tn, err := ShardTokenCount(v)
		if err != nil {
			return nil, fmt.Errorf("data: byte sidecar: %w", err)
		}
		f, sn, err := openShardFile(sides[i])
		if err != nil {
			return nil, fmt.Errorf("data: byte sidecar: %w", err)
		}
		if sn != tn {
			f.Close()
			return nil, fmt.Errorf("data: byte sidecar: %s holds %d values for the %d tokens of %s", sides[i], sn, tn, filepath.Base(v))
		}
		k := min(int(sn), n-at)
		if k > 0 {
			err = readTokens(sides[i], f, out[at:at+k])
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("data: byte sidecar: %w", err)
		}
		at += k
	}
	if at < n {
		return nil, fmt.Errorf("data: byte sidecar: %d values in %s, fewer than the %d validation tokens", at, dir, n)
	}
	return out, nil
}

// CaseOpsEncoder is an Encoder that can apply the CaseOps transform and
// say what each token stands for in the original text; *tokenizer.Model is
// one (build with BuildOptions.CaseOps).
type CaseOpsEncoder interface {
	Encoder
	// HasCaseOps reports whether the operators are tokens of their own.
	HasCaseOps() bool
	// CaseOpsEncode returns the ids of the transformed text and, for each,
	// the bytes of original it stands for.
	CaseOpsEncode(original string) (ids, originalBytes []int, err error)
}

// caseOpsEncode encodes a batch of documents for a CaseOps build: the
// documents with index (in the whole build) below valDocs with their byte
// counts, the others transformed and encoded in one EncodeAll call.
func caseOpsEncode(b *docBatch, enc CaseOpsEncoder, valDocs int64, encodeAll func([]string) ([][]int, error)) error {
	b.ids = make([][]int, len(b.texts))
	b.counts = make([][]int, len(b.texts))
	var trainIdx []int
	var trainTexts []string
	for i, text := range b.texts {
		if b.first+int64(i) < valDocs {
			ids, counts, err := enc.CaseOpsEncode(text)
			if err != nil {
				return err
			}
			b.ids[i], b.counts[i] = ids, counts
			continue
		}
		trainIdx = append(trainIdx, i)
		trainTexts = append(trainTexts, tokenizer.CaseOpsEncode(text))
	}
	if len(trainTexts) == 0 {
		return nil
	}
	ids, err := encodeAll(trainTexts)
	if err != nil {
		return err
	}
	if len(ids) != len(trainTexts) {
		return fmt.Errorf("tokenizer %s returned %d encodings for %d documents", enc.Name(), len(ids), len(trainTexts))
	}
	for k, i := range trainIdx {
		b.ids[i] = ids[k]
	}
	return nil
}

// sidecarValues turns a document's byte counts into the sidecar's values:
// 0 for its BOS, then one per token.
func sidecarValues(dst []uint16, counts []int, place string) ([]uint16, error) {
	dst = append(dst[:0], 0)
	for i, c := range counts {
		if c < 0 || c > 0xFFFF {
			return nil, fmt.Errorf("%s: token %d stands for %d bytes, more than a uint16 holds", place, i, c)
		}
		dst = append(dst, uint16(c))
	}
	return dst, nil
}
