package quant

import (
	"testing"
	"testing/fstest"

	"github.com/paramgolf/golf/quant/codec"
)

func TestMeasureCodeByHand(t *testing.T) {
	fsys := fstest.MapFS{
		"go.mod":             {Data: []byte("module x\n")},
		"b/b.go":             {Data: []byte("// Package b is stripped.\npackage b // to this\n")},
		"a.go":               {Data: []byte("package x\n")},
		"b/b_test.go":        {Data: []byte("package b // not counted\n")},
		"cmd/golf/main.go":   {Data: []byte("package main\n")},
		"cmd/golf/x_test.go": {Data: []byte("ignored")},
	}
	got, err := MeasureCode(fsys)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted: a.go, b/b.go, cmd/golf/main.go, go.mod; b.go without its
	// comments.
	archive := "a.go\n10\npackage x\n" + "b/b.go\n10\npackage b\n" + "cmd/golf/main.go\n13\npackage main\n" + "go.mod\n9\nmodule x\n"
	if got.Files != 4 || got.RawBytes != len(archive) || got.SourceBytes != 10+47+13+9 {
		t.Fatalf("got %+v, want 4 files, 79 source bytes and %d raw bytes", got, len(archive))
	}
	z, _ := codec.Brotli{}.Compress([]byte(archive), codec.Hint{})
	if got.Bytes != len(z) || got.Codec != "brotli-11" {
		t.Fatalf("got %d compressed bytes with %s, want %d with brotli-11", got.Bytes, got.Codec, len(z))
	}
}

func TestSizeReportBudget(t *testing.T) {
	code := CodeSize{Bytes: 40_000}
	r := NewSizeReport(15_960_000, code)
	if r.TotalBytes != 16_000_000 || r.Margin != 0 || r.OverBudget() {
		t.Fatalf("exactly at the budget: %+v", r)
	}
	r = NewSizeReport(15_960_001, code)
	if !r.OverBudget() || r.Margin != -1 {
		t.Fatalf("one byte over: %+v", r)
	}
}
