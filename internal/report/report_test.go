package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTablePrintAligns(t *testing.T) {
	tab := NewTable("results", "scheme", "bytes", "bpb")
	tab.Add("int8+zlib", 15815847, 1.22436570)
	tab.Add("int6", 11, 0.000123)
	var sb strings.Builder
	if err := tab.Print(&sb); err != nil {
		t.Fatal(err)
	}
	want := "results\n" +
		"scheme        bytes       bpb\n" +
		"int8+zlib  15815847    1.2244\n" +
		"int6             11  0.000123\n"
	if sb.String() != want {
		t.Errorf("got\n%s\nwant\n%s", sb.String(), want)
	}
}

func TestTableLeftColumns(t *testing.T) {
	tab := NewTable("", "check", "status", "detail")
	tab.Left = map[int]bool{2: true}
	tab.Add("bytes", "pass", "all equal")
	tab.Add("causality", "fail", "x")
	var sb strings.Builder
	if err := tab.Print(&sb); err != nil {
		t.Fatal(err)
	}
	want := "check      status  detail\n" +
		"bytes        pass  all equal\n" +
		"causality    fail  x\n"
	if sb.String() != want {
		t.Errorf("got\n%s\nwant\n%s", sb.String(), want)
	}
}

func TestSaveJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := SaveJSON(path, map[string]float64{"val_bpb": 1.5}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var got map[string]float64
	if err := json.Unmarshal(raw, &got); err != nil || got["val_bpb"] != 1.5 {
		t.Fatalf("round trip %s: %v", raw, err)
	}
}
