package data

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/tokenizer"
)

// buildSmall builds a few documents into dir with tok (2 validation
// documents, shards of 40 tokens: several training shards).
func buildSmall(t *testing.T, dir string, tok *tokenizer.Model, docs ...string) *Manifest {
	t.Helper()
	if len(docs) == 0 {
		docs = []string{"first validation text", "second validation text", "the training text goes on for a while to fill more than one shard",
			"another training document, long enough to straddle shards as well", "and a last one"}
	}
	var b bytes.Buffer
	for _, d := range docs {
		b.WriteString(`{"text": "` + d + `"}` + "\n")
	}
	m, err := Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: "docs.jsonl", R: &b}},
		Encoder: tok, ValDocs: 2, ShardTokens: 40, Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A folder whose shards are not the ones its manifest lists is refused,
// whatever the fault: an extra shard of another build, a missing one, one
// rewritten with another length, or shards of another tokenizer.
func TestCheckDirRefusesWhatTheManifestDoesNotDescribe(t *testing.T) {
	tok := tokenizer.Default()
	dir := t.TempDir()
	m := buildSmall(t, dir, tok)
	c, err := CheckDir(dir, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest == nil || len(c.Train) != len(m.Train.Shards) || !strings.Contains(c.Note, "manifest.json checked") {
		t.Fatalf("clean folder: %+v", c)
	}
	if len(m.Train.Shards) < 2 {
		t.Fatalf("want several training shards, got %d", len(m.Train.Shards))
	}
	copyDir := func(t *testing.T) string {
		t.Helper()
		d := t.TempDir()
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o644)
		}
		return d
	}
	sp8192, err := tokenizer.Load("../tokenizer/testdata/fineweb_8192_bpe.model")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		break_ func(d string)
		tok    *tokenizer.Model
		want   string
	}{
		{"extra shard", func(d string) { WriteShard(filepath.Join(d, ShardName(Train, 57)), []uint16{1, 2, 3}) }, tok, "does not list"},
		{"missing shard", func(d string) { os.Remove(filepath.Join(d, m.Train.Shards[1].File)) }, tok, "missing"},
		{"other length", func(d string) { WriteShard(filepath.Join(d, m.Train.Shards[0].File), []uint16{1, 2, 3}) }, tok, "holds 3 tokens"},
		{"corrupt header", func(d string) { os.WriteFile(filepath.Join(d, m.Val.Shards[0].File), []byte("junk"), 0o644) }, tok, "truncated header"},
		{"other tokenizer", func(string) {}, sp8192, "fineweb_8192_bpe.model of 8192 ids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := copyDir(t)
			c.break_(d)
			if _, err := CheckDir(d, c.tok); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CheckDir: %v, want an error with %q", err, c.want)
			}
		})
	}
	// Without a manifest, the shards' headers are checked and the note
	// says no manifest was found.
	d := copyDir(t)
	os.Remove(filepath.Join(d, ManifestName))
	c2, err := CheckDir(d, tok)
	if err != nil || c2.Manifest != nil || !strings.Contains(c2.Note, "no manifest.json") {
		t.Fatalf("no manifest: %+v, %v", c2, err)
	}
	os.WriteFile(filepath.Join(d, m.Train.Shards[0].File), []byte("junk"), 0o644)
	if _, err := CheckDir(d, tok); err == nil || !strings.Contains(err.Error(), m.Train.Shards[0].File) {
		t.Fatalf("no manifest, corrupt shard: %v", err)
	}
}

// A folder a build is writing (it holds the folder's lock) is refused.
func TestCheckDirRefusesAFolderBeingBuilt(t *testing.T) {
	dir := t.TempDir()
	buildSmall(t, dir, tokenizer.Default())
	l, err := outlock.Acquire(dir, "golf data build --out x")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if _, err := CheckDir(dir, nil); err == nil || !strings.Contains(err.Error(), "being written by") || !strings.Contains(err.Error(), "golf data build") {
		t.Fatalf("CheckDir while locked: %v", err)
	}
}

// A second build into a folder fails at once, naming the first; the
// hidden folder of a killed build is removed by the next build.
func TestBuildLocksAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	l, err := outlock.Acquire(dir, "the first build")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: "a.txt", R: strings.NewReader("text")}}, Encoder: tokenizer.Default()})
	if err == nil || !strings.Contains(err.Error(), `"the first build"`) {
		t.Fatalf("second build: %v, want it to name the first", err)
	}
	l.Release()
	stale := filepath.Join(dir, ".golf-build-123")
	os.MkdirAll(stale, 0o755)
	os.WriteFile(filepath.Join(stale, ShardName(Train, 0)), []byte("left by a kill"), 0o644)
	if c := staleBuilds(dir); !slices.Equal(c, []string{".golf-build-123"}) {
		t.Fatalf("staleBuilds: %v", c)
	}
	buildSmall(t, dir, tokenizer.Default())
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("the killed build's folder is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, outlock.FileName)); !os.IsNotExist(err) {
		t.Fatalf("the lock file outlived the build: %v", err)
	}
}

// Inputs that hold no text are an error, not a shard of BOS tokens.
func TestBuildRefusesEmptyInputs(t *testing.T) {
	for _, in := range []string{"", "   \n"} {
		_, err := Build(context.Background(), BuildOptions{Dir: t.TempDir(), Inputs: []Input{{Name: "empty.txt", R: strings.NewReader(in)}}, Encoder: tokenizer.Default()})
		if err == nil || !strings.Contains(err.Error(), "no text") && !strings.Contains(err.Error(), "no documents") {
			t.Errorf("%q: %v, want an error", in, err)
		}
	}
}

// FolderTokenizer finds the manifest's tokenizer (its path, or next to the
// shards, or the embedded one), and the challenge's layout.
func TestFolderTokenizer(t *testing.T) {
	dir := t.TempDir()
	buildSmall(t, dir, tokenizer.Default())
	tok, how, err := FolderTokenizer(dir)
	if err != nil || tok != tokenizer.Default() || !strings.Contains(how, "embedded") {
		t.Fatalf("embedded: %v %q %v", tok, how, err)
	}
	// A tokenizer file: found at its recorded path, then (moved) next to
	// the shards; gone, an error naming it.
	src, _ := os.ReadFile("../tokenizer/testdata/fineweb_8192_bpe.model")
	model := filepath.Join(t.TempDir(), "fineweb_8192_bpe.model")
	os.WriteFile(model, src, 0o644)
	sp, err := tokenizer.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	d8 := t.TempDir()
	m := buildSmall(t, d8, sp)
	if m.Tokenizer.Path != model {
		t.Fatalf("manifest path %q, want %q", m.Tokenizer.Path, model)
	}
	if tok, _, err := FolderTokenizer(d8); err != nil || tok.VocabSize() != 8192 {
		t.Fatalf("recorded path: %v %v", tok, err)
	}
	os.Remove(model)
	if _, _, err := FolderTokenizer(d8); err == nil || !strings.Contains(err.Error(), "fineweb_8192_bpe.model") {
		t.Fatalf("tokenizer gone: %v", err)
	}
	os.WriteFile(filepath.Join(d8, "fineweb_8192_bpe.model"), src, 0o644)
	if tok, _, err := FolderTokenizer(d8); err != nil || tok.VocabSize() != 8192 {
		t.Fatalf("next to the shards: %v %v", tok, err)
	}
	os.WriteFile(filepath.Join(d8, "fineweb_8192_bpe.model"), mustRead(t, "../tokenizer/models/fineweb_1024_bpe.model"), 0o644)
	if _, _, err := FolderTokenizer(d8); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Fatalf("another model under the name: %v", err)
	}
	// The challenge's layout, no manifest.
	root := t.TempDir()
	ds := filepath.Join(root, "datasets", "fineweb10B_sp8192")
	os.MkdirAll(ds, 0o755)
	os.MkdirAll(filepath.Join(root, "tokenizers"), 0o755)
	os.WriteFile(filepath.Join(root, "tokenizers", "fineweb_8192_bpe.model"), src, 0o644)
	if tok, how, err := FolderTokenizer(ds); err != nil || tok == nil || tok.VocabSize() != 8192 || !strings.Contains(how, "layout") {
		t.Fatalf("challenge layout: %v %q %v", tok, how, err)
	}
	if tok, _, err := FolderTokenizer(t.TempDir()); tok != nil || err != nil {
		t.Fatalf("a folder that says nothing: %v %v", tok, err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCapValidation(t *testing.T) {
	val := make([]uint16, 10*8+1)
	if got := CapValidation(val, 8, 0); len(got) != len(val) {
		t.Fatalf("no cap: %d", len(got))
	}
	if got := CapValidation(val, 8, 30); len(got) != 3*8+1 {
		t.Fatalf("cap 30: %d tokens, want 25", len(got))
	}
	if got := CapValidation(val, 8, 3); len(got) != 9 {
		t.Fatalf("cap below a sequence: %d tokens, want one sequence", len(got))
	}
	if got := CapValidation(val, 8, 1000); len(got) != len(val) {
		t.Fatalf("cap above the stream: %d", len(got))
	}
}

// Saved loader state is decoded strictly: an unknown field (or one whose
// name differs only in case) restarts nothing, it is an error.
func TestParseLoaderState(t *testing.T) {
	st, err := ParseLoaderState([]byte(`{"file": 2, "pos": 17, "shard": "fineweb_train_000002.bin"}`))
	if err != nil || st.File != 2 || st.Pos != 17 {
		t.Fatalf("valid: %+v %v", st, err)
	}
	for _, bad := range []string{`{"file": 2, "pos": 17, "position": 5}`, `{"File": 2, "pos": 17}`, `{"pos": 17}`, `{"file": 1}`, `{"file": 1, "pos": 2} x`, `[]`} {
		if _, err := ParseLoaderState([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// EnsureDefault builds the embedded corpus once, and again when the
// folder's build is not complete.
func TestEnsureDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the embedded corpus")
	}
	dir := t.TempDir()
	var log bytes.Buffer
	if err := EnsureDefault(context.Background(), dir, tokenizer.Default(), &log); err != nil || !strings.Contains(log.String(), "building") {
		t.Fatalf("first: %v %q", err, log.String())
	}
	log.Reset()
	if err := EnsureDefault(context.Background(), dir, tokenizer.Default(), &log); err != nil || log.Len() != 0 {
		t.Fatalf("second: %v %q (should reuse the build)", err, log.String())
	}
	files, _ := TrainFiles(dir)
	os.Remove(files[0])
	if err := EnsureDefault(context.Background(), dir, tokenizer.Default(), &log); err != nil || !strings.Contains(log.String(), "building") {
		t.Fatalf("after a shard went missing: %v %q", err, log.String())
	}
}

// Two runs that start together share one build of the embedded corpus: the
// second waits for the first's lock instead of failing, and uses its build.
func TestEnsureDefaultWaitsForAnotherBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the embedded corpus")
	}
	dir := t.TempDir()
	other, err := outlock.Acquire(dir, "another golf train")
	if err != nil {
		t.Fatal(err)
	}
	// While the other holds the lock, EnsureDefault waits until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	var log bytes.Buffer
	err = EnsureDefault(ctx, dir, tokenizer.Default(), &log)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(log.String(), "another golf train") {
		t.Fatalf("with the lock held: %v, log %q (want a wait naming the holder, ended by the context)", err, log.String())
	}
	// When the other releases the lock, the waiting one goes on.
	done := make(chan error, 1)
	go func() { done <- EnsureDefault(context.Background(), dir, tokenizer.Default(), nil) }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned while the lock was held: %v", err)
	default:
	}
	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the release: %v", err)
	}
	if _, err := CheckDir(dir, tokenizer.Default()); err != nil {
		t.Fatalf("the build: %v", err)
	}
}
