package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCommitsOnlyOnSuccess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	if err := WriteFile(path, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	boom := errors.New("boom")
	err = Write(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want the fill error, got %v", err)
	}
	got, _ = os.ReadFile(path)
	if string(got) != "hello" {
		t.Fatalf("failed write replaced the file: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// What a killed writer left (an uncommitted temporary file for the same
// name) is removed; another name's temporary files and the final file stay.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model[1].golf")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	f.File.Close() // the process "dies": no Commit, no Abort
	other, _ := Create(filepath.Join(dir, "other.golf"))
	defer other.Abort()
	os.WriteFile(path, []byte("final"), 0o644)
	removed, err := RemoveStale(path)
	if err != nil || len(removed) != 1 || removed[0] != f.File.Name() {
		t.Fatalf("removed %v, %v; want [%s]", removed, err, f.File.Name())
	}
	if _, err := os.Stat(other.File.Name()); err != nil {
		t.Fatalf("another file's temporary was removed: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "final" {
		t.Fatalf("the final file changed: %q", b)
	}
}

// Exchange swaps two folders whole, where the platform has an atomic
// exchange.
func TestExchangeSwapsFolders(t *testing.T) {
	parent := t.TempDir()
	a, b := filepath.Join(parent, "a"), filepath.Join(parent, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(filepath.Base(d)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok, err := Exchange(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("no atomic exchange on this platform or file system")
	}
	for d, want := range map[string]string{a: "b", b: "a"} {
		got, err := os.ReadFile(filepath.Join(d, "name"))
		if err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", d, got, err, want)
		}
	}
	if _, err := Exchange(a, filepath.Join(parent, "missing")); err == nil {
		t.Error("exchange with a missing entry succeeded")
	}
}
