package spmtrain_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

// Train a BPE vocabulary with the challenge's settings (byte fallback, so
// ids 4-259 are the byte pieces) and encode with it at once.
func ExampleTrain() {
	sentences := []string{
		"the lower the newer", "lowest and newest", "the lowest of the low",
		"newer is not lower", "the newest", "low and new",
	}
	opts := spmtrain.DefaultOptions(280)
	m, err := spmtrain.Train(context.Background(), sentences, opts)
	if err != nil {
		panic(err)
	}
	var learned []string
	for id := 260; id < m.VocabSize(); id++ {
		learned = append(learned, m.Piece(id))
	}
	fmt.Println(m.VocabSize(), strings.Join(learned, " "))
	fmt.Println(m.EncodePieces("the newest lower"))
	// Output:
	// 280 we lo he ne the st e ▁ w t n o l h s r a d f i
	// [the ▁ ne we st ▁ lo we r]
}
