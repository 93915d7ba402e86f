package tokenizer_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/paramgolf/golf/tokenizer"
)

// Encode text with the challenge's sp1024 tokenizer and decode it back.
func ExampleModel_Encode() {
	m := tokenizer.Default()
	ids := m.Encode("Hello\nworld")
	fmt.Println(ids)
	pieces := make([]string, len(ids))
	for i, id := range ids {
		pieces[i] = m.Piece(id)
	}
	fmt.Printf("%q\n", pieces)
	fmt.Printf("%q\n", m.Decode(ids))
	// Output:
	// [981 465 943 458 401]
	// ["H" "ell" "o" "▁wor" "ld"]
	// "Hello world"
}

// Normalization is what encoding sees: NFKC, whitespace collapsed, spaces
// written as U+2581.
func ExampleModel_Normalize() {
	m := tokenizer.Default()
	fmt.Println(m.Normalize("  ﬁne   x²\tＡＢＣ \n"))
	// Output:
	// fine▁x2▁ABC
}

// Characters outside the vocabulary are encoded as their UTF-8 bytes.
func ExampleModel_EncodePieces() {
	fmt.Println(strings.Join(tokenizer.Default().EncodePieces("café 日"), " "))
	// Output:
	// c a f <0xC3> <0xA9> ▁ <0xE6> <0x97> <0xA5>
}

// Encode many documents in parallel, in order.
func ExampleModel_EncodeAll() {
	m := tokenizer.Default()
	all, err := m.EncodeAll(context.Background(), []string{"The Union is strong.", "", "x²"})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(all), len(all[0]), all[1], all[2])
	// Output:
	// 3 8 [] [974 976]
}

// Count the bytes of a token stream for val_bpb: each document starts with
// BOS, and the space of a document's first word is not counted.
func ExampleByteTable() {
	m := tokenizer.Default()
	stream := []uint16{uint16(m.BOS())}
	for _, doc := range []string{"Fellow citizens", "The Union"} {
		for _, id := range m.Encode(doc) {
			stream = append(stream, uint16(id))
		}
		stream = append(stream, uint16(m.BOS()))
	}
	// "Fellow citizens" and "The Union" are 15 + 9 bytes.
	fmt.Println(m.ByteTable().CountTargets(stream))
	// Output:
	// 24
}

// Tokenize a stream of lines as `golf tokenize` does.
func ExampleModel_EncodeLines() {
	m := tokenizer.Default()
	in := strings.NewReader("{\"text\": \"Hello\\nworld\"}\n{\"text\": \"x²\"}\n")
	st, err := m.EncodeLines(context.Background(), os.Stdout, in, tokenizer.LinesOptions{JSONL: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Docs, "documents,", st.Tokens, "tokens")
	// Output:
	// 981 465 943 458 401
	// 974 976
	// 2 documents, 7 tokens
}

// Load a model file and print its special ids.
func ExampleLoad() {
	m, err := tokenizer.Load("testdata/fineweb_8192_bpe.model")
	if err != nil {
		panic(err)
	}
	fmt.Println(m.VocabSize(), m.PAD(), m.BOS(), m.EOS(), m.UNK(), m.TrainerSpec().ModelType)
	// Output:
	// 8192 0 1 2 3 BPE
}

// CaseOps rewrites capitals as operators before lowercase text, exactly
// invertibly.
func ExampleCaseOpsEncode() {
	enc := tokenizer.CaseOpsEncode("The NASA iPhone")
	fmt.Printf("%+q\n", enc)
	dec, err := tokenizer.CaseOpsDecode(enc)
	fmt.Println(dec, err)
	// Output:
	// "\ue001the \ue002nasa i\ue003phone"
	// The NASA iPhone <nil>
}
