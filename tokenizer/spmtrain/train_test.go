package spmtrain_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

// trainCase is one case of testdata/train/reference.json.gz (see
// testdata/gen_train_reference.py).
type trainCase struct {
	Name    string            `json:"name"`
	Input   string            `json:"input"`
	Flags   map[string]string `json:"flags"`
	Via     string            `json:"via"`
	Error   bool              `json:"error"`
	Model   string            `json:"model_sha256"`
	Vocab   string            `json:"vocab_sha256"`
	Pieces  []string          `json:"pieces"`
	Scores  []float32         `json:"scores"`
	Types   []int             `json:"types"`
	HeldOut []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"held_out"`
	GolfHeldOut [][]int  `json:"golf_held_out_ids"`
	ValSHA      []string `json:"val_ids_sha256"`
}

func readGzipJSON(t testing.TB, path string, v any) {
	t.Helper()
	if err := loadGzipJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

func loadGzipJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func idsSHA(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, id)
	}
	return sha256Hex([]byte(b.String()))
}

var (
	corpusDocs = sync.OnceValues(func() ([]string, error) {
		docs, err := corpus.Documents()
		if err != nil {
			return nil, err
		}
		out := make([]string, len(docs))
		for i, d := range docs {
			out[i] = d.Text
		}
		return out, nil
	})
	mixedText = sync.OnceValues(func() (string, error) {
		f, err := os.Open("testdata/train/mixed.txt.gz")
		if err != nil {
			return "", err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(zr)
		return string(b), err
	})
)

// trainInput returns a case's sentences and the file name spm_train read
// them from: each line of the file is a sentence, as spm_train reads it
// (std::getline: split at "\n" only).
func trainInput(t testing.TB, input string) ([]string, string) {
	t.Helper()
	texts, err := corpusDocs()
	if err != nil {
		t.Fatal(err)
	}
	switch input {
	case "corpus":
		return texts[corpus.ValDocs:], "corpus.txt"
	case "caseops_corpus":
		out := make([]string, 0, len(texts)-corpus.ValDocs)
		for _, d := range texts[corpus.ValDocs:] {
			out = append(out, tokenizer.CaseOpsEncode(d))
		}
		return out, "caseops_corpus.txt"
	}
	mixed, err := mixedText()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(mixed, "\n")
	switch input {
	case "mixed":
		return lines, "mixed.txt"
	case "docs":
		// Documents for the Python trainer: lines that are UTF-8, in groups
		// of DOC_SIZES consecutive lines.
		var good []string
		for _, l := range lines[:len(lines)-1] {
			if utf8.ValidString(l) {
				good = append(good, l)
			}
		}
		sizes := []int{1, 3, 2, 6, 4, 5}
		var docs []string
		for i, k := 0, 0; i < len(good); k++ {
			n := min(sizes[k%len(sizes)], len(good)-i)
			docs = append(docs, strings.Join(good[i:i+n], "\n"))
			i += n
		}
		return docs, ""
	}
	t.Fatalf("unknown input %q", input)
	return nil, ""
}

func trainCases(t testing.TB) []trainCase {
	var ref struct {
		Cases []trainCase `json:"cases"`
	}
	readGzipJSON(t, "testdata/train/reference.json.gz", &ref)
	if len(ref.Cases) == 0 {
		t.Fatal("no training cases")
	}
	return ref.Cases
}

// caseOptions returns the options that stand for a case's spm_train flags.
func caseOptions(t testing.TB, c trainCase) spmtrain.Options {
	t.Helper()
	o := spmtrain.SPMOptions()
	for k, v := range c.Flags {
		if err := o.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if c.Via == "python" {
		o.NumThreads = 16
	}
	return o
}

// TestTrainParity trains every reference case and compares the pieces,
// scores and types with spm_train's, the .model and .vocab files byte for
// byte where the reference ran spm_train itself, and the ids of held-out
// text.
func TestTrainParity(t *testing.T) {
	for _, c := range trainCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			if testing.Short() && len(c.Pieces) > 4096 {
				t.Skip("large vocabulary; run without -short")
			}
			sentences, file := trainInput(t, c.Input)
			o := caseOptions(t, c)
			if c.Via == "cli" {
				o.Input, o.ModelPrefix = []string{file}, c.Name
			}
			var st spmtrain.Stats
			o.Stats = &st
			m, err := spmtrain.Train(context.Background(), sentences, o)
			if c.Error {
				if err == nil {
					t.Fatalf("the reference fails; Train gave %d pieces", m.VocabSize())
				}
				t.Logf("error as the reference: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pieces, %d merges, alphabet %d, %d words, %.2fs, tie risks %d", st.VocabSize, st.Merges, st.Alphabet, st.Words, st.Seconds, st.TieRisks)
			checkPieces(t, m, c)
			if c.Via == "cli" {
				data, _ := m.MarshalBinary()
				if got := sha256Hex(data); got != c.Model {
					t.Errorf(".model SHA-256 %s, spm_train's %s", got, c.Model)
				}
				var vb bytes.Buffer
				if err := m.WriteVocab(&vb, o.VocabularyOutputPieceScore); err != nil {
					t.Fatal(err)
				}
				if got := sha256Hex(vb.Bytes()); got != c.Vocab {
					t.Errorf(".vocab SHA-256 %s, spm_train's %s", got, c.Vocab)
				}
			}
			for i, h := range c.HeldOut {
				if got := m.Encode(h.Text); !slices.Equal(got, h.IDs) {
					t.Errorf("held-out %q: ids %v, reference %v", h.Text, got, h.IDs)
				}
				if i < len(c.GolfHeldOut) && !slices.Equal(c.GolfHeldOut[i], h.IDs) {
					t.Errorf("held-out %q: Python with the golf-trained model gave %v", h.Text, c.GolfHeldOut[i])
				}
			}
			if len(c.ValSHA) > 0 {
				texts, _ := corpusDocs()
				for i, want := range c.ValSHA {
					text := texts[i]
					if c.Input == "caseops_corpus" {
						text = tokenizer.CaseOpsEncode(text)
					}
					if got := idsSHA(m.Encode(text)); got != want {
						t.Errorf("validation document %d: ids differ from the reference's", i)
					}
				}
			}
		})
	}
}

// checkPieces compares a trained model's vocabulary with the reference's
// and reports the first difference.
func checkPieces(t *testing.T, m *tokenizer.Model, c trainCase) {
	t.Helper()
	n := m.VocabSize()
	if n != len(c.Pieces) {
		t.Errorf("%d pieces, reference %d", n, len(c.Pieces))
	}
	for i := range min(n, len(c.Pieces)) {
		if m.Piece(i) != c.Pieces[i] || m.Score(i) != c.Scores[i] || int(m.PieceType(i)) != c.Types[i] {
			t.Errorf("first difference at id %d: %q %v %v, reference %q %v %d (context: %q)", i,
				m.Piece(i), m.Score(i), m.PieceType(i), c.Pieces[i], c.Scores[i], c.Types[i], c.Pieces[max(0, i-5):min(len(c.Pieces), i+5)])
			return
		}
	}
}

// Flags as spm_train takes them: an empty --unk_surface is an empty
// surface (kept through the .model bytes, decoding the unknown piece to
// nothing), a zero or empty value that Options would read as "the default"
// is refused as spm_train refuses it, and gflags' yes/no are booleans.
func TestSetFlagsAsTheReference(t *testing.T) {
	o := spmtrain.SPMOptions()
	o.VocabSize, o.HardVocabLimit = 20, false
	if err := o.Set("unk_surface", ""); err != nil {
		t.Fatal(err)
	}
	m, err := spmtrain.Train(context.Background(), []string{"hello world", "hello there"}, o)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := tokenizer.Parse("unk_surface.model", raw)
	if err != nil {
		t.Fatal(err)
	}
	if s := back.TrainerSpec().UnkSurface; s != "" {
		t.Errorf("--unk_surface= saved as %q, want empty", s)
	}
	if got := back.Decode([]int{back.UNK()}); got != "" {
		t.Errorf("the unknown piece decodes to %q, want nothing", got)
	}
	for _, kv := range [][2]string{
		{"max_sentencepiece_length", "0"}, {"max_sentence_length", "0"}, {"num_threads", "0"},
		{"character_coverage", "0"}, {"unk_piece", ""}, {"bos_piece", ""}, {"eos_piece", ""}, {"pad_piece", ""},
	} {
		o := spmtrain.SPMOptions()
		if err := o.Set(kv[0], kv[1]); err == nil {
			t.Errorf("--%s=%s accepted; spm_train refuses it", kv[0], kv[1])
		}
	}
	for v, want := range map[string]bool{"yes": true, "No": false, "y": true, "N": false, "TRUE": true} {
		o := spmtrain.SPMOptions()
		o.HardVocabLimit = !want
		if err := o.Set("hard_vocab_limit", v); err != nil || o.HardVocabLimit != want {
			t.Errorf("--hard_vocab_limit=%s: %v, %v; want %v", v, o.HardVocabLimit, err, want)
		}
	}
}
