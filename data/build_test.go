package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
)

// The reference data in testdata was made by gen_reference.py with the
// challenge's export rules and SentencePiece 0.1.97: 40 documents, the
// first 7 for validation, 700-token shards.
const (
	refValDocs     = 7
	refShardTokens = 700
)

func loadModel(t testing.TB, name string) *tokenizer.Model {
	t.Helper()
	switch name {
	case "sp1024":
		return tokenizer.Default()
	case "sp8192":
		m, err := tokenizer.Load("../tokenizer/testdata/fineweb_8192_bpe.model")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("unknown model %s", name)
	return nil
}

// The tokenizer is what Build and InspectShard take.
var (
	_ Encoder    = (*tokenizer.Model)(nil)
	_ Vocabulary = (*tokenizer.Model)(nil)
)

// refDocs returns the texts of testdata/docs.jsonl.
func refDocs(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/docs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, rec.Text)
	}
	if len(docs) != 40 {
		t.Fatalf("docs.jsonl has %d documents, want 40", len(docs))
	}
	return docs
}

// shardNames lists the shard files of dir, sorted.
func shardNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "fineweb_") {
			names = append(names, e.Name())
		}
	}
	return names
}

// sameShards fails unless dir holds exactly the shard files of want, byte
// for byte.
func sameShards(t *testing.T, dir, want string) {
	t.Helper()
	got, exp := shardNames(t, dir), shardNames(t, want)
	if !slices.Equal(got, exp) {
		t.Fatalf("shards %v, want %v", got, exp)
	}
	for _, name := range exp {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(want, name))
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs from the reference's", name)
		}
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func splitStream(t testing.TB, dir string, split Split) []uint16 {
	t.Helper()
	files, err := splitFiles(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	var all []uint16
	for _, f := range files {
		toks, err := ReadShard(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, toks...)
	}
	return all
}

func countBOS(toks []uint16, bos int) int64 {
	var n int64
	for _, t := range toks {
		if int(t) == bos {
			n++
		}
	}
	return n
}

func TestBuildMatchesReferenceExport(t *testing.T) {
	for _, name := range []string{"sp1024", "sp8192"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name)
			ref := filepath.Join("testdata", "ref_"+name)
			dir := filepath.Join(t.TempDir(), "out")
			var progress bytes.Buffer
			man, err := Build(context.Background(), BuildOptions{
				Dir: dir, Inputs: []Input{{Name: "testdata/docs.jsonl"}}, Encoder: m,
				ValDocs: refValDocs, ShardTokens: refShardTokens, BatchBytes: 3000, Workers: 3, Progress: &progress,
			})
			if err != nil {
				t.Fatal(err)
			}
			sameShards(t, dir, ref)
			if !strings.Contains(progress.String(), "data build:") || !strings.Contains(progress.String(), "done") {
				t.Errorf("no progress lines: %q", progress.String())
			}

			// The manifest, on disk and returned, against the files.
			disk, err := ReadManifest(filepath.Join(dir, ManifestName))
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(disk)
			b, _ := json.Marshal(man)
			if !bytes.Equal(a, b) {
				t.Error("manifest.json differs from the returned manifest")
			}
			docs := refDocs(t)
			var textBytes [2]int64
			for i, d := range docs {
				textBytes[min(i/refValDocs, 1)] += int64(len(d))
			}
			bt := m.ByteTable()
			for k, c := range []struct {
				split Split
				info  SplitInfo
				docs  int64
			}{{Val, man.Val, refValDocs}, {Train, man.Train, int64(len(docs) - refValDocs)}} {
				stream := splitStream(t, dir, c.split)
				if c.info.Docs != c.docs || countBOS(stream, m.BOS()) != c.docs {
					t.Errorf("%s: %d documents in the manifest, %d BOS in the shards, want %d", c.split, c.info.Docs, countBOS(stream, m.BOS()), c.docs)
				}
				if c.info.Tokens != int64(len(stream)) {
					t.Errorf("%s: manifest says %d tokens, shards hold %d", c.split, c.info.Tokens, len(stream))
				}
				if c.info.TextBytes != textBytes[k] {
					t.Errorf("%s: text bytes %d, want %d", c.split, c.info.TextBytes, textBytes[k])
				}
				if want := bt.CountTargets(stream); c.info.TargetBytes != want {
					t.Errorf("%s: target bytes %d, want CountTargets = %d", c.split, c.info.TargetBytes, want)
				}
				var docsInShards int64
				for _, sh := range c.info.Shards {
					path := filepath.Join(dir, sh.File)
					toks, _ := ReadShard(path)
					if sh.Tokens != int64(len(toks)) || sh.Docs != countBOS(toks, m.BOS()) || sh.SHA256 != sha256File(t, path) {
						t.Errorf("%s: manifest entry %+v disagrees with the file", sh.File, sh)
					}
					if sh.Tokens > refShardTokens {
						t.Errorf("%s: %d tokens, over the shard size", sh.File, sh.Tokens)
					}
					docsInShards += sh.Docs
				}
				if docsInShards != c.docs {
					t.Errorf("%s: shards start %d documents, want %d", c.split, docsInShards, c.docs)
				}
			}
			if man.Docs != 40 || man.Tokens != man.Val.Tokens+man.Train.Tokens || man.TextBytes != textBytes[0]+textBytes[1] {
				t.Errorf("totals: %+v", man)
			}
			if man.Tokenizer.Name != filepath.Base(m.Name()) || man.Tokenizer.VocabSize != m.VocabSize() || man.Tokenizer.BOS != 1 {
				t.Errorf("tokenizer info %+v", man.Tokenizer)
			}
			if man.MaxTokenID >= m.VocabSize() || man.MaxTokenID < 900 {
				t.Errorf("max token id %d", man.MaxTokenID)
			}
			if len(man.Inputs) != 1 || man.Inputs[0].Docs != 40 || man.Inputs[0].Format != "jsonl" {
				t.Errorf("inputs %+v", man.Inputs)
			}
		})
	}
}

// writeJSONL writes docs as JSONL lines to path.
func writeJSONL(t testing.TB, path string, docs []string) {
	t.Helper()
	var b bytes.Buffer
	for _, d := range docs {
		line, _ := json.Marshal(map[string]any{"text": d, "id": len(b.String())})
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuildInputForms(t *testing.T) {
	ref := filepath.Join("testdata", "ref_sp1024")
	docs := refDocs(t)
	raw, err := os.ReadFile("testdata/docs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	in := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	os.WriteFile(filepath.Join(in, "docs.jsonl.gz"), gz.Bytes(), 0o644)
	enc, _ := zstd.NewWriter(nil)
	os.WriteFile(filepath.Join(in, "docs.jsonl.zst"), enc.EncodeAll(raw, nil), 0o644)
	// Three JSONL files; the validation split ends inside the first.
	writeJSONL(t, filepath.Join(in, "a.jsonl"), docs[:10])
	writeJSONL(t, filepath.Join(in, "b.jsonl"), docs[10:11])
	writeJSONL(t, filepath.Join(in, "c.jsonl"), docs[11:])
	// One plain-text file per document.
	var textInputs []Input
	for i, d := range docs {
		p := filepath.Join(in, fmt.Sprintf("doc%02d.txt", i))
		os.WriteFile(p, []byte(d), 0o644)
		textInputs = append(textInputs, Input{Name: p})
	}
	cases := []struct {
		name   string
		inputs []Input
		format Format
	}{
		{"gzip", []Input{{Name: filepath.Join(in, "docs.jsonl.gz")}}, FormatAuto},
		{"zstd", []Input{{Name: filepath.Join(in, "docs.jsonl.zst")}}, FormatAuto},
		{"reader", []Input{{Name: "stdin", R: bytes.NewReader(raw)}}, FormatJSONL},
		{"compressed reader", []Input{{Name: "stdin", R: bytes.NewReader(gz.Bytes())}}, FormatJSONL},
		{"three files", []Input{{Name: filepath.Join(in, "a.jsonl")}, {Name: filepath.Join(in, "b.jsonl")}, {Name: filepath.Join(in, "c.jsonl")}}, FormatAuto},
		{"text files", textInputs, FormatAuto},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			man, err := Build(context.Background(), BuildOptions{
				Dir: dir, Inputs: c.inputs, Format: c.format, Encoder: tokenizer.Default(),
				ValDocs: refValDocs, ShardTokens: refShardTokens, BatchBytes: 1 + len(c.name)*500,
			})
			if err != nil {
				t.Fatal(err)
			}
			sameShards(t, dir, ref)
			var n int64
			for _, info := range man.Inputs {
				n += info.Docs
			}
			if n != 40 {
				t.Errorf("inputs report %d documents", n)
			}
		})
	}
}

func TestBuildBlankLineDocs(t *testing.T) {
	m := tokenizer.Default()
	texts := []string{"First document,\nstill the first.", "Second\r\nwith CRLF.", "  indented third  ", "Fourth: \u00e9\U0001f389", "fifth"}
	input := "\n\n" + texts[0] + "\n\n \t \n" + texts[1] + "\r\n\r\n" + texts[2] + "\n\n\n" + texts[3] + "\n   \n" + texts[4]
	p := filepath.Join(t.TempDir(), "docs.txt")
	os.WriteFile(p, []byte(input), 0o644)
	dir := t.TempDir()
	man, err := Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: p}}, BlankLineDocs: true, Encoder: m, ValDocs: 2, ShardTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	var val, train []uint16
	for i, text := range texts {
		toks := []uint16{1}
		for _, id := range m.Encode(text) {
			toks = append(toks, uint16(id))
		}
		if i < 2 {
			val = append(val, toks...)
		} else {
			train = append(train, toks...)
		}
	}
	if got := splitStream(t, dir, Val); !slices.Equal(got, val) {
		t.Errorf("val stream %v, want %v", got, val)
	}
	if got := splitStream(t, dir, Train); !slices.Equal(got, train) {
		t.Errorf("train stream %v, want %v", got, train)
	}
	if man.Inputs[0].Format != "text-blocks" || man.Docs != 5 {
		t.Errorf("manifest %+v", man.Inputs)
	}
	for _, sp := range []SplitInfo{man.Val, man.Train} {
		for i, sh := range sp.Shards {
			if sh.Tokens > 5 || (i < len(sp.Shards)-1 && sh.Tokens != 5) {
				t.Errorf("shard %s has %d tokens, shards must fill to 5", sh.File, sh.Tokens)
			}
		}
	}
}

func TestBuildDefault(t *testing.T) {
	m := tokenizer.Default()
	dir := t.TempDir()
	// An unrelated earlier build is replaced.
	WriteShard(filepath.Join(dir, "fineweb_train_000007.bin"), []uint16{1, 2})
	man, err := BuildDefault(context.Background(), dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if man.Val.Docs != corpus.ValDocs || man.Train.Docs != 233-corpus.ValDocs {
		t.Fatalf("split %d/%d documents", man.Val.Docs, man.Train.Docs)
	}
	if names := shardNames(t, dir); !slices.Equal(names, []string{"fineweb_train_000000.bin", "fineweb_val_000000.bin"}) {
		t.Fatalf("shards %v", names)
	}
	val, _, err := corpus.Split()
	if err != nil {
		t.Fatal(err)
	}
	var want []uint16
	for _, d := range val {
		want = append(want, 1)
		for _, id := range m.Encode(d.Text) {
			want = append(want, uint16(id))
		}
	}
	if got := splitStream(t, dir, Val); !slices.Equal(got, want) {
		t.Fatalf("validation stream: %d tokens, want %d (BOS + Encode of each validation address)", len(got), len(want))
	}
	train := splitStream(t, dir, Train)
	if countBOS(train, 1) != 209 || int64(len(train)) != man.Train.Tokens || man.TextBytes != 10_761_202 {
		t.Errorf("train split: %d BOS, %d tokens; manifest %+v", countBOS(train, 1), len(train), man)
	}
}

// faultyEncoder wraps a real tokenizer to inject failures.
type faultyEncoder struct {
	*tokenizer.Model
	calls   atomic.Int64
	onBatch func(n int64, docs []string) error // called before encoding batch n (1-based)
	mapIDs  func(ids []int)
	vocab   int
}

func (f *faultyEncoder) EncodeAll(ctx context.Context, docs []string) ([][]int, error) {
	n := f.calls.Add(1)
	if f.onBatch != nil {
		if err := f.onBatch(n, docs); err != nil {
			return nil, err
		}
	}
	out, err := f.Model.EncodeAll(ctx, docs)
	if err == nil && f.mapIDs != nil {
		for _, ids := range out {
			f.mapIDs(ids)
		}
	}
	return out, err
}

func (f *faultyEncoder) VocabSize() int {
	if f.vocab != 0 {
		return f.vocab
	}
	return f.Model.VocabSize()
}

// shardNamesIfAny lists the shards in dir, none if it does not exist.
func shardNamesIfAny(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "fineweb_") {
			names = append(names, e.Name())
		}
	}
	return names
}

// assertClean fails if dir holds anything but the given names.
func assertClean(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			t.Errorf("%s left behind after a failed build", e.Name())
		}
	}
}

func TestBuildFailuresLeaveNoPartialShards(t *testing.T) {
	docs := refDocs(t)
	in := t.TempDir()
	good := filepath.Join(in, "good.jsonl")
	writeJSONL(t, good, docs)
	// A bad line 33: after the validation shards and several training
	// shards are complete.
	raw, _ := os.ReadFile(good)
	lines := strings.SplitAfter(string(raw), "\n")
	lines[32] = `{"text": "unterminated` + "\n"
	bad := filepath.Join(in, "bad.jsonl")
	os.WriteFile(bad, []byte(strings.Join(lines, "")), 0o644)
	noText := filepath.Join(in, "notext.jsonl")
	os.WriteFile(noText, []byte("{\"text\":\"a\"}\n\n{\"Text\":\"b\"}\n"), 0o644)

	type tc struct {
		name    string
		inputs  []Input
		enc     func(cancel context.CancelFunc, dir string, earlier []string) Encoder
		valDocs int
		want    string
		wantIs  error
	}
	base := func(context.CancelFunc, string, []string) Encoder { return tokenizer.Default() }
	cases := []tc{
		{name: "bad JSON line", inputs: []Input{{Name: good}, {Name: bad}}, enc: base, want: "bad.jsonl: line 33: not a JSON object"},
		{name: "no text field", inputs: []Input{{Name: noText}}, enc: base, want: `notext.jsonl: line 3: the record has no "text" field`},
		{name: "missing input", inputs: []Input{{Name: good}, {Name: filepath.Join(in, "nope.jsonl")}}, enc: base, want: "nope.jsonl", wantIs: os.ErrNotExist},
		{name: "too few documents", inputs: []Input{{Name: good}}, enc: base, valDocs: 41, want: "40 documents, fewer than the 41 validation documents"},
		{name: "encoder error", inputs: []Input{{Name: good}}, enc: func(context.CancelFunc, string, []string) Encoder {
			return &faultyEncoder{Model: tokenizer.Default(), onBatch: func(n int64, _ []string) error {
				if n == 6 {
					return errors.New("injected encoder failure")
				}
				return nil
			}}
		}, want: "injected encoder failure"},
		{name: "cancelled", inputs: []Input{{Name: good}}, enc: func(cancel context.CancelFunc, dir string, _ []string) Encoder {
			return &faultyEncoder{Model: tokenizer.Default(), onBatch: func(n int64, _ []string) error {
				if n == 8 {
					cancel()
				}
				return nil
			}}
		}, wantIs: context.Canceled},
		{name: "id outside the vocabulary", inputs: []Input{{Name: good}}, enc: func(context.CancelFunc, string, []string) Encoder {
			return &faultyEncoder{Model: tokenizer.Default(), mapIDs: func(ids []int) {
				if len(ids) > 0 {
					ids[len(ids)-1] = 1024
				}
			}}
		}, want: "returned id 1024 outside its vocabulary of 1024 ids"},
		{name: "vocabulary over uint16", inputs: []Input{{Name: good}}, enc: func(context.CancelFunc, string, []string) Encoder {
			return &faultyEncoder{Model: tokenizer.Default(), vocab: 70000}
		}, want: "70000 ids; shards store uint16 ids"},
		{name: "final names never appear before the end", inputs: []Input{{Name: good}, {Name: bad}}, enc: func(_ context.CancelFunc, dir string, earlier []string) Encoder {
			return &faultyEncoder{Model: tokenizer.Default(), onBatch: func(n int64, _ []string) error {
				if names := shardNamesIfAny(dir); len(names) > 0 && !slices.Equal(names, earlier) {
					return fmt.Errorf("batch %d: final-named shards exist mid-build: %v", n, names)
				}
				return nil
			}}
		}, want: "bad.jsonl: line 33"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, earlier := range []bool{false, true} {
				root := t.TempDir()
				dir := filepath.Join(root, "out")
				keep := []string{}
				if earlier {
					// A complete earlier build must survive a failed rebuild.
					if _, err := Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: "testdata/docs.jsonl"}}, Encoder: tokenizer.Default(), ValDocs: 3, ShardTokens: 2000}); err != nil {
						t.Fatal(err)
					}
					keep = append(shardNames(t, dir), ManifestName)
				}
				before := map[string]string{}
				for _, name := range keep {
					before[name] = sha256File(t, filepath.Join(dir, name))
				}
				ctx, cancel := context.WithCancel(context.Background())
				_, err := Build(ctx, BuildOptions{
					Dir: dir, Inputs: c.inputs, Encoder: c.enc(cancel, dir, shardNamesIfAny(dir)), ValDocs: max(c.valDocs, refValDocs),
					ShardTokens: 1000, BatchBytes: 2000, Workers: 2, Overwrite: earlier,
				})
				cancel()
				if err == nil {
					t.Fatal("the build succeeded")
				}
				if c.want != "" && !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q lacks %q", err, c.want)
				}
				if c.wantIs != nil && !errors.Is(err, c.wantIs) {
					t.Errorf("error %v is not %v", err, c.wantIs)
				}
				assertClean(t, dir, keep...)
				for name, sum := range before {
					if sha256File(t, filepath.Join(dir, name)) != sum {
						t.Errorf("the earlier build's %s changed", name)
					}
				}
				if !earlier {
					if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("the output directory the build created is still there (%v)", err)
					}
				}
			}
		})
	}
}

func TestBuildRefusesEarlierBuildWithoutOverwrite(t *testing.T) {
	dir := t.TempDir()
	opt := BuildOptions{Dir: dir, Inputs: []Input{{Name: "testdata/docs.jsonl"}}, Encoder: tokenizer.Default(), ValDocs: 7, ShardTokens: 700}
	if _, err := Build(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	before := shardNames(t, dir)
	_, err := Build(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "already holds a build") || !strings.Contains(err.Error(), ManifestName) {
		t.Fatalf("rebuild without Overwrite: %v", err)
	}
	// Overwrite with bigger shards: the earlier build's extra shards go.
	opt.Overwrite, opt.ShardTokens = true, 10_000
	man, err := Build(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	after := shardNames(t, dir)
	if len(before) != 25 || !slices.Equal(after, []string{"fineweb_train_000000.bin", "fineweb_train_000001.bin", "fineweb_val_000000.bin"}) {
		t.Errorf("shards before %d, after %v", len(before), after)
	}
	if len(man.Train.Shards) != 2 || man.Train.Shards[0].Tokens != 10_000 {
		t.Errorf("manifest shards %+v", man.Train.Shards)
	}
	if got := append(splitStream(t, dir, Val), splitStream(t, dir, Train)...); len(got) != 3407+13335 {
		t.Errorf("rebuilt stream has %d tokens, want the reference's 16742", len(got))
	}
}

func TestBuildOptionErrors(t *testing.T) {
	m := tokenizer.Default()
	good := []Input{{Name: "testdata/docs.jsonl"}}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		opt  BuildOptions
		want string
	}{
		{BuildOptions{Inputs: good, Encoder: m}, "no output directory"},
		{BuildOptions{Dir: t.TempDir(), Inputs: good}, "no encoder"},
		{BuildOptions{Dir: t.TempDir(), Encoder: m}, "no inputs"},
		{BuildOptions{Dir: t.TempDir(), Inputs: good, Encoder: m, ValDocs: -1}, "-1 validation documents"},
		{BuildOptions{Dir: t.TempDir(), Inputs: good, Encoder: m, ShardTokens: -5}, "shard size -5"},
		{BuildOptions{Dir: file, Inputs: good, Encoder: m}, "not a directory"},
		{BuildOptions{Dir: t.TempDir(), Inputs: []Input{{Name: t.TempDir()}}, Encoder: m}, "is a directory"},
		{BuildOptions{Dir: t.TempDir(), Inputs: []Input{{Name: file}}, Encoder: m, Format: FormatJSONL}, "no documents"},
	} {
		if _, err := Build(context.Background(), c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opt, err, c.want)
		}
	}
}

// plainEncoder hides the real tokenizer's SHA256 method, as an encoder
// without a model file would lack one.
type plainEncoder struct{ Encoder }

func TestBuildRecordsTokenizerDigest(t *testing.T) {
	tok := tokenizer.Default()
	opt := BuildOptions{Inputs: []Input{{Name: "testdata/docs.jsonl"}}, ValDocs: 7, Encoder: tok}
	opt.Dir = t.TempDir()
	m, err := Build(context.Background(), opt)
	if err != nil || m.Tokenizer.SHA256 != tok.SHA256() || len(tok.SHA256()) != 64 {
		t.Fatalf("encoder method: %+v, %v", m, err)
	}
	opt.Dir, opt.Encoder, opt.TokenizerSHA256 = t.TempDir(), plainEncoder{tok}, "from-options"
	m, err = Build(context.Background(), opt)
	if err != nil || m.Tokenizer.SHA256 != "from-options" {
		t.Fatalf("option: %+v, %v", m, err)
	}
	// Without either, the field is left out of manifest.json.
	opt.Dir, opt.TokenizerSHA256 = t.TempDir(), ""
	if _, err := Build(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(opt.Dir, ManifestName))
	if strings.Contains(string(raw), "sha256\": \"\"") || !strings.Contains(string(raw), `"vocab_size": 1024`) {
		t.Errorf("manifest.json:\n%s", raw)
	}
}
