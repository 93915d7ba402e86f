package quant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/quant/synthetic"
)

// Quantize a small matrix with the challenge's reference scheme: int8 per
// row, fp16 scales (the 65,536-element threshold is lowered so this small
// matrix is quantized rather than kept as fp16).
func ExampleQuantize() {
	w := model.Weights{{Name: "block_0/mlp/fc", Shape: []int{2, 4}, Class: model.MLP, Data: []float32{
		0.5, -0.25, 1.5, 0.125,
		-3, 2, 0.75, -1,
	}}}
	s := quant.Reference()
	s.KeepMaxElements = 0
	q, err := quant.Quantize(context.Background(), w, s, quant.Options{})
	if err != nil {
		panic(err)
	}
	t := q.Tensors[0]
	fmt.Println(t.Format, t.Bits, t.Symbols, t.Scales)
	// Output: int 8 [42 -21 127 11 -127 85 32 -42] [0.011810303 0.023620605]
}

// Pack synthetic weights, write the artifact, read it back.
func ExamplePack() {
	w, err := synthetic.Weights("tiny", 1)
	if err != nil {
		panic(err)
	}
	s, _ := quant.SchemeByName("int6-sd")
	q, err := quant.Quantize(context.Background(), w, s, quant.Options{})
	if err != nil {
		panic(err)
	}
	cfg, _ := model.Preset("tiny")
	meta := quant.Meta{Model: cfg, Settings: quant.EvalSettings{Preset: "tiny", SeqLen: 256}}
	data, rep, err := quant.Pack(context.Background(), meta, q, quant.PackOptions{Codec: "fse"})
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "golf-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.golf")
	if err := quant.WriteArtifact(path, data); err != nil {
		panic(err)
	}
	a, err := quant.ReadArtifact(path)
	if err != nil {
		panic(err)
	}
	got, weights, err := a.Model()
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Params, len(weights), got.Name, got.ModelDim, a.Meta.Settings.SeqLen, weights[0].Class, weights[0].Init, a.FileBytes == len(data))
	// Output: 592144 42 tiny 128 256 embedding normal(0.005) true
}

// Count code bytes the way golf pack does (here on a two-file tree; golf
// pack passes golf.Source(), the module's embedded source), then add them
// to the model bytes against the 16,000,000-byte budget.
func ExampleMeasureCode() {
	src := fstest.MapFS{
		"go.mod":    {Data: []byte("module example\n")},
		"main.go":   {Data: []byte("// Command example does nothing.\npackage main\n\nfunc main() {} // the comments do not count\n")},
		"x_test.go": {Data: []byte("package main\n")}, // tests do not count
	}
	code, err := quant.MeasureCode(src)
	if err != nil {
		panic(err)
	}
	size := quant.NewSizeReport(15_000_000, code)
	fmt.Println(code.Files, code.SourceBytes, code.RawBytes, size.TotalBytes-size.ModelBytes == code.Bytes, size.OverBudget())
	// Output: 2 106 65 true false
}
