package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command has the same output flags with the same meaning: --json
// (a switch: JSON on stdout instead of the table), --json-out FILE and
// --quiet.
func TestEveryCommandHasTheOutputFlags(t *testing.T) {
	for name := range commands {
		code, _, stderr := runGolf(t, append(strings.Fields(name), "-h")...)
		if code != 0 {
			t.Errorf("golf %s -h: exit %d", name, code)
			continue
		}
		for _, want := range []string{"\n  -json\n", "\n  -json-out string\n", "\n  -quiet\n"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("golf %s -h lacks %q:\n%s", name, strings.TrimSpace(want), stderr)
			}
		}
	}
}

// --json prints JSON to stdout and nothing else; --json-out writes the same
// JSON to a file and leaves the table on stdout.
func TestJSONFlagsMeanTheSame(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "inspect.json")
	code, stdout, stderr := runGolf(t, "data", "inspect", "--json-out", js, refSP1024)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "data inspect") || json.Valid([]byte(stdout)) {
		t.Fatalf("--json-out: stdout should be the table:\n%s", stdout)
	}
	file, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runGolf(t, "data", "inspect", "--json", refSP1024)
	if code != 0 || !json.Valid([]byte(stdout)) || strings.TrimSpace(stdout) != strings.TrimSpace(string(file)) {
		t.Fatalf("--json stdout and --json-out file differ:\n%s\n---\n%s", stdout, file)
	}
	// golf tokenize --json: one JSON array per document.
	code, stdout, stderr = golfIn(t, "Hello world\n\nsecond line\n", "tokenize", "--json")
	if code != 0 {
		t.Fatalf("tokenize --json: %s", stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var ids [][]int
	for _, l := range lines {
		var a []int
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("tokenize --json line %q: %v", l, err)
		}
		ids = append(ids, a)
	}
	_, plain, _ := golfIn(t, "Hello world\n\nsecond line\n", "tokenize")
	if p := strings.Split(strings.TrimSpace(plain), "\n"); len(ids) != 3 || len(p) != 3 || len(ids[1]) != 0 || len(ids[0]) != len(strings.Fields(p[0])) {
		t.Fatalf("tokenize --json %v vs %q", ids, plain)
	}
}
