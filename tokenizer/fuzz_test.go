package tokenizer

import (
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// Fuzz targets. Run each for a while with, e.g.:
//
//	go test ./tokenizer -run XXX -fuzz FuzzEncode -fuzztime 60s
//
// (FuzzParse's inputs are whole models: give it -fuzzminimizetime 2s, or
// minimizing a new interesting input of several kilobytes stalls the run
// for up to a minute at a time.)

// FuzzParse feeds arbitrary bytes to the .model reader: it must return a
// model or an error naming the input, never panic; a model it accepts must
// encode and decode without panicking and give ids in its vocabulary.
func FuzzParse(f *testing.F) {
	f.Add(buildModel(tinyPieces(), nil, identityNorm))
	p := tinyPieces()
	p[3].typ = Unused
	p = append(p, testPiece{"<sep>", 0, UserDefined})
	for b := range 256 {
		p = append(p, testPiece{spm.BytePiece(byte(b)), 0, Byte})
	}
	f.Add(buildModel(p, [][]byte{pbVarint(35, 1), pbVarint(24, 1)}, identityNorm))
	f.Add(buildModel(tinyPieces(), nil, [][]byte{pbVarint(3, 1), pbVarint(4, 0), pbVarint(5, 0)},
		pbBytes(4, pbBytes(1, pbString(1, "abc"), pbString(2, "abc")))))
	if data, err := os.ReadFile("testdata/variants/suffix.model"); err == nil {
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte("\x12\x02\x18\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.model", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.model") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, text := range []string{"", "abc a\tb ab<sep>", "\xff\x00é日本 ▁ <s>", string(data[:min(len(data), 64)])} {
			ids := m.Encode(text)
			for _, id := range ids {
				if id < 0 || id >= m.VocabSize() {
					t.Fatalf("Encode(%q) gave id %d outside the vocabulary of %d", text, id, m.VocabSize())
				}
			}
			m.Decode(ids)
			m.EncodePieces(text)
			m.ByteTable().CountTargets([]uint16{1, 2, 3, 65535})
		}
		m.Decode([]int{-1, 0, 1, 2, 3, 1 << 20})
	})
}

// FuzzNormalize runs the normalizer with an arbitrary precompiled charsmap
// (a corrupt trie included) on arbitrary text: no panic, and with the real
// charsmap, valid UTF-8 without raw spaces or a trailing space mark.
func FuzzNormalize(f *testing.F) {
	real := Default().normSpec.PrecompiledCharsmap
	f.Add(real[:4+1024], "Hello  world")
	f.Add([]byte("\x08\x00\x00\x00\x00\x04\x00\x00\x61\x01\x00\x00x\x00"), "a ab")
	f.Add([]byte{}, "\xff")
	f.Fuzz(func(t *testing.T, charsmap []byte, text string) {
		spec := NormalizerSpec{PrecompiledCharsmap: charsmap, RemoveExtraWhitespaces: true, EscapeWhitespaces: true}
		if n, err := newNormalizer(spec, false, nil); err == nil {
			n.appendNormalized(nil, text)
		}
		got := Default().Normalize(text)
		if !utf8.ValidString(got) || strings.ContainsRune(got, ' ') || strings.HasSuffix(got, spaceSymbol) {
			t.Fatalf("Normalize(%q) = %q", text, got)
		}
	})
}

// fuzzModels are the models FuzzEncode checks, each with its copies that
// take the other code paths (see variants in reference_test.go).
var fuzzModels = sync.OnceValue(func() []map[string]*Model {
	var out []map[string]*Model
	for _, tm := range testModelFiles {
		m, err := Load(tm.path)
		if err != nil {
			panic(err)
		}
		whole, _ := Load(tm.path)
		whole.split = splitNone
		queue, _ := Load(tm.path)
		queue.split, queue.scanLimit = splitNone, 0
		out = append(out, map[string]*Model{"cached": m, "whole-text": whole, "queue": queue})
	}
	return out
})

// maxFuzzText is the most input bytes FuzzEncode encodes.
const maxFuzzText = 256

// FuzzEncode checks, on arbitrary input and for every test model, that the
// word cache and the two merge strategies give the same ids, that every id
// is in the vocabulary, and for the challenge's models (byte fallback,
// space marks only at the start of pieces) that decoding gives the
// normalized text back (spaces unescaped, leading ones dropped, as the
// reference's decoder does) and that the byte table counts that text.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"", "Hello world", " \t\n a  b \r\n", "ﬁ x² ＡＢＣ", "e\u0301 日本語 🙂", "<s><unk><0x41>▁", "\x00\xff\xc0\x80",
		"1234567890", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"Mr. Speaker, Mr. Vice President, Members of Congress", "hello <sep> New York x▁ 2021",
	} {
		f.Add(s)
	}
	models := fuzzModels() // loaded once per process, not per input
	f.Fuzz(func(t *testing.T, text string) {
		// Small inputs only: every execution encodes the text 18 times (six
		// models, three code paths), and minimizing a long interesting
		// input took minutes (the fuzzer reported 0 executions a second).
		// A long input returns at once, so it never adds coverage.
		if len(text) > maxFuzzText {
			return
		}
		for i, paths := range models {
			m := paths["cached"]
			ids := m.Encode(text)
			for _, id := range ids {
				if id < 0 || id >= m.VocabSize() {
					t.Fatalf("%s: id %d outside the vocabulary", testModelFiles[i].name, id)
				}
			}
			for name, other := range paths {
				if got := other.Encode(text); !slices.Equal(got, ids) {
					t.Fatalf("%s: %s path gives %v, cached %v", testModelFiles[i].name, name, got, ids)
				}
			}
			if name := testModelFiles[i].name; name == "sp1024" || name == "sp8192" {
				norm := m.Normalize(text)
				if got, want := m.Decode(ids), decodedForm(norm); got != want {
					t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q", name, text, got, want)
				}
				if got, want := m.ByteTable().CountTargets(withBOS(m, ids)), normalizedBytes(m, text); got != want {
					t.Fatalf("%s: %d bytes counted, the normalized text has %d", name, got, want)
				}
			}
		}
	})
}
