package data_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/tokenizer"
)

// A shard is a 1024-byte header and two bytes per token.
func ExampleWriteShard() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, data.ShardName(data.Val, 0))
	if err := data.WriteShard(path, []uint16{1, 981, 465, 943}); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(path)
	tokens, err := data.ReadShard(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(path), st.Size(), "bytes:", tokens)
	// Output: fineweb_val_000000.bin 1032 bytes: [1 981 465 943]
}

// OpenShard maps the file instead of copying it.
func ExampleOpenShard() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fineweb_train_000000.bin")
	data.WriteShard(path, []uint16{1, 2, 3, 1, 5})
	s, err := data.OpenShard(path)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.Len(), s.Tokens())
	// Output: 5 [1 2 3 1 5]
}

// Two ranks share one stream: each call takes 2 × (2+1) tokens and gives
// each rank its own 3, as inputs and targets shifted by one.
func ExampleLoader_Next() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	data.WriteShard(filepath.Join(dir, "fineweb_train_000000.bin"), []uint16{10, 11, 12, 13, 14, 15, 16, 17, 18, 19})
	files, _ := data.TrainFiles(dir)
	for rank := range 2 {
		l, err := data.NewLoader(files, rank, 2)
		if err != nil {
			log.Fatal(err)
		}
		for range 2 {
			in, tg, _ := l.Next(4, 2, 1) // 4 tokens a step, rows of 2, no accumulation
			fmt.Printf("rank %d: inputs %v targets %v\n", rank, in, tg)
		}
		l.Close()
	}
	// Output:
	// rank 0: inputs [10 11] targets [11 12]
	// rank 0: inputs [16 17] targets [17 18]
	// rank 1: inputs [13 14] targets [14 15]
	// rank 1: inputs [19 10] targets [10 11]
}

// A checkpoint stores State; Restore continues where it left off.
func ExampleLoader_State() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	data.WriteShard(filepath.Join(dir, "fineweb_train_000000.bin"), []uint16{0, 1, 2, 3, 4, 5, 6, 7})
	data.WriteShard(filepath.Join(dir, "fineweb_train_000001.bin"), []uint16{8, 9, 10, 11})
	files, _ := data.TrainFiles(dir)
	l, _ := data.NewLoader(files, 0, 1)
	l.Next(4, 4, 1)
	l.Next(4, 4, 1)
	saved := l.State()
	want, _, _ := l.Next(4, 4, 1)

	resumed, _ := data.NewLoader(files, 0, 1)
	if err := resumed.Restore(saved); err != nil {
		log.Fatal(err)
	}
	got, _, _ := resumed.Next(4, 4, 1)
	fmt.Printf("%+v %v %v\n", saved, want, got)
	// Output: {File:1 Pos:2 Shard:fineweb_train_000001.bin} [10 11 0 1] [10 11 0 1]
}

// Validation keeps whole sequences plus one token for the last target.
func ExampleLoadValidation() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	data.WriteShard(filepath.Join(dir, "fineweb_val_000000.bin"), []uint16{1, 2, 3, 4, 5, 6})
	data.WriteShard(filepath.Join(dir, "fineweb_val_000001.bin"), []uint16{7, 8, 9, 10})
	files, _ := data.ValFiles(dir)
	val, err := data.LoadValidation(files, 4)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(val) // 10 tokens: (10-1)/4*4 + 1 = 9
	// Output: [1 2 3 4 5 6 7 8 9]
}

// Build tokenizes JSONL documents into validation and training shards.
func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	jsonl := `{"text": "The first document is for validation."}
{"text": "Training starts here."}
{"text": "And goes on."}
`
	m, err := data.Build(context.Background(), data.BuildOptions{
		Dir:     dir,
		Inputs:  []data.Input{{Name: "docs.jsonl", R: strings.NewReader(jsonl)}},
		Encoder: tokenizer.Default(),
		ValDocs: 1,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("val:", m.Val.Docs, "docs", m.Val.Tokens, "tokens", m.Val.TextBytes, "text bytes", m.Val.TargetBytes, "target bytes")
	fmt.Println("train:", m.Train.Docs, "docs in", m.Train.Shards[0].File)
	val, _ := data.ReadShard(filepath.Join(dir, m.Val.Shards[0].File))
	fmt.Println(tokenizer.Default().Decode(intIDs(val[1:])))
	// Output:
	// val: 1 docs 14 tokens 37 text bytes 37 target bytes
	// train: 2 docs in fineweb_train_000000.bin
	// The first document is for validation.
}

func intIDs(u []uint16) []int {
	out := make([]int, len(u))
	for i, v := range u {
		out[i] = int(v)
	}
	return out
}
