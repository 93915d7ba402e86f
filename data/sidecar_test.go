package data

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

var _ CaseOpsEncoder = (*tokenizer.Model)(nil)

// caseOpsModel is a small CaseOps tokenizer trained on part of the corpus.
var caseOpsModel = sync.OnceValues(func() (*tokenizer.Model, error) {
	docs, err := corpus.Documents()
	if err != nil {
		return nil, err
	}
	var s []string
	for _, d := range docs[corpus.ValDocs : corpus.ValDocs+30] {
		s = append(s, tokenizer.CaseOpsEncode(d.Text))
	}
	o := spmtrain.DefaultOptions(800)
	o.UserDefinedSymbols = tokenizer.CaseOpsSymbols
	o.MaxSentenceLength = 1 << 20
	return spmtrain.Train(context.Background(), s, o)
})

// adversarialDocs hold what the sidecar must account for: capitals of
// every kind, non-ASCII letters, characters outside the vocabulary (byte
// pieces), literal operator characters that the transform escapes, NFKC
// rewrites, whitespace runs, and whitespace at the ends (which
// normalization drops, so no token stands for it).
var adversarialDocs = []string{
	"The NASA Launch of McDonald's iPhone, ÉCOLE and École; ALLCAPS WORDS and a Title.",
	"literal operators \ue001\ue002\ue003\ue004 and \ue000 next to them: A\ue001B",
	"  padded at both ends, with   runs of   spaces\tand\ttabs  ",
	"ﬁne Ｈｅｌｌｏ x² ½ — “quotes” 日本語 한국어 🚀 emoji",
	"\u3000ideographic space at the start",
	"aBcDeF GhIjKl MNOPqrst uvWXYZ",
}

func jsonlDocs(docs []string) []byte {
	var b bytes.Buffer
	for _, d := range docs {
		line, _ := json.Marshal(map[string]string{"text": d})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// spanBytes is what a document's tokens stand for: its UTF-8 length
// without the whitespace normalization drops at its ends.
func spanBytes(m *tokenizer.Model, doc string) int {
	_, spans := m.EncodeSpans(tokenizer.CaseOpsEncode(doc))
	if len(spans) == 0 {
		return 0
	}
	t := tokenizer.CaseOpsEncode(doc)
	// The spans are in the transformed text; its ends are the original's.
	lead := spans[0].Begin
	trail := len(t) - spans[len(spans)-1].End
	return len(doc) - lead - trail
}

func TestBuildCaseOpsSidecar(t *testing.T) {
	m, err := caseOpsModel()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := corpus.Documents()
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, d := range docs[:8] {
		texts = append(texts, d.Text)
	}
	texts = append(texts, adversarialDocs...)
	for _, d := range docs[200:203] {
		texts = append(texts, d.Text)
	}
	valDocs := len(texts) - 3
	dir := t.TempDir()
	man, err := Build(context.Background(), BuildOptions{
		Dir: dir, Inputs: []Input{{Name: "docs.jsonl", R: bytes.NewReader(jsonlDocs(texts))}},
		Encoder: m, ValDocs: valDocs, ShardTokens: 20000, CaseOps: true, BatchBytes: 50000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if man.Tokenizer.Transform != tokenizer.CaseOpsTransformName {
		t.Errorf("manifest transform %q", man.Tokenizer.Transform)
	}
	if len(man.Val.Shards) < 2 || len(man.Val.ByteShards) != len(man.Val.Shards) || len(man.Train.ByteShards) != 0 {
		t.Fatalf("val shards %d, byte shards %d, train byte shards %d", len(man.Val.Shards), len(man.Val.ByteShards), len(man.Train.ByteShards))
	}
	vals, err := ValFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(man.Val.Shards) {
		t.Fatalf("ValFiles lists %d files for %d shards (sidecars must not count)", len(vals), len(man.Val.Shards))
	}
	for i, v := range vals {
		if filepath.Base(SidecarFor(v)) != SidecarName(i) || man.Val.ByteShards[i].File != SidecarName(i) {
			t.Errorf("shard %s: sidecar %s, manifest %s", v, SidecarFor(v), man.Val.ByteShards[i].File)
		}
	}
	stream, err := LoadValidation(vals, 1)
	if err != nil {
		t.Fatal(err)
	}
	side, err := LoadValidationBytes(dir, len(stream))
	if err != nil {
		t.Fatal(err)
	}
	// The stream is [BOS] + ids of each transformed document, and the
	// sidecar gives each token its original bytes: 0 at every BOS, and per
	// document the length of its text between the first and last
	// character normalization keeps.
	at := 0
	var total int64
	for i, text := range texts[:valDocs] {
		ids, counts, err := m.CaseOpsEncode(text)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.Encode(tokenizer.CaseOpsEncode(text)); !slices.Equal(ids, want) {
			t.Fatalf("document %d: CaseOpsEncode ids differ from Encode of the transform", i)
		}
		if int(stream[at]) != m.BOS() || side[at] != 0 {
			t.Fatalf("document %d: stream[%d] = %d with %d bytes, want BOS with 0", i, at, stream[at], side[at])
		}
		sum := 0
		for k, id := range ids {
			if int(stream[at+1+k]) != id || int(side[at+1+k]) != counts[k] {
				t.Fatalf("document %d token %d: %d (%d bytes), want %d (%d bytes)", i, k, stream[at+1+k], side[at+1+k], id, counts[k])
			}
			sum += int(side[at+1+k])
			// An operator is 0 bytes, unless it is a literal one behind ESC.
			escaped := k > 0 && m.Piece(ids[k-1]) == string(tokenizer.CaseOpsEscape) && (k < 2 || m.Piece(ids[k-2]) != string(tokenizer.CaseOpsEscape))
			if m.PieceType(id) == tokenizer.UserDefined && side[at+1+k] != 0 && !(escaped && side[at+1+k] == 3) {
				t.Errorf("document %d: operator %q stands for %d bytes", i, m.Piece(id), side[at+1+k])
			}
		}
		if want := spanBytes(m, text); sum != want {
			t.Errorf("document %d: sidecar adds up to %d, the text has %d bytes (%d with its ends)", i, sum, want, len(text))
		}
		if strings.TrimSpace(text) == text && sum != len(text) {
			t.Errorf("document %d: sidecar adds up to %d, the UTF-8 length is %d", i, sum, len(text))
		}
		total += int64(sum)
		at += 1 + len(ids)
	}
	if at != len(stream) {
		t.Fatalf("stream has %d tokens, documents %d", len(stream), at)
	}
	if man.Val.TargetBytes != total {
		t.Errorf("manifest val target bytes %d, sidecar %d", man.Val.TargetBytes, total)
	}
	// Inspect reads the sidecar.
	var inspected int64
	for _, v := range vals {
		st, err := InspectShardBytes(v, SidecarFor(v), m)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByteSource != "sidecar" {
			t.Errorf("byte source %q", st.ByteSource)
		}
		inspected += st.Bytes
	}
	// Per shard, the first token of each shard is not a target.
	var firsts int64
	off := 0
	for _, sh := range man.Val.Shards {
		firsts += int64(side[off])
		off += int(sh.Tokens)
	}
	if inspected != total-firsts {
		t.Errorf("inspect counts %d bytes, want %d", inspected, total-firsts)
	}
}

func TestSidecarFaults(t *testing.T) {
	m, err := caseOpsModel()
	if err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T) string {
		dir := t.TempDir()
		_, err := Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: "d.jsonl", R: bytes.NewReader(jsonlDocs(adversarialDocs))}},
			Encoder: m, ValDocs: 3, CaseOps: true})
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("not a CaseOps tokenizer", func(t *testing.T) {
		_, err := Build(context.Background(), BuildOptions{Dir: t.TempDir(), Inputs: []Input{{Name: "d.jsonl", R: bytes.NewReader(jsonlDocs(adversarialDocs))}},
			Encoder: tokenizer.Default(), ValDocs: 3, CaseOps: true})
		if err == nil || !strings.Contains(err.Error(), "CaseOps operators") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("short sidecar", func(t *testing.T) {
		dir := build(t)
		p := filepath.Join(dir, SidecarName(0))
		vals, err := ReadShard(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteShard(p, vals[:len(vals)-1]); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadValidationBytes(dir, 10); err == nil || !strings.Contains(err.Error(), "values for the") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("missing sidecar", func(t *testing.T) {
		dir := build(t)
		os.Remove(filepath.Join(dir, SidecarName(0)))
		if HasValidationBytes(dir) {
			t.Error("HasValidationBytes with none")
		}
		if _, err := LoadValidationBytes(dir, 10); err == nil || !strings.Contains(err.Error(), "no byte sidecar") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("nonzero BOS", func(t *testing.T) {
		dir := build(t)
		p := filepath.Join(dir, SidecarName(0))
		vals, _ := ReadShard(p)
		vals[0] = 3
		if err := WriteShard(p, vals); err != nil {
			t.Fatal(err)
		}
		if _, err := InspectShardBytes(filepath.Join(dir, ShardName(Val, 0)), p, m); err == nil || !strings.Contains(err.Error(), "BOS") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("overwrite removes old sidecars", func(t *testing.T) {
		dir := build(t)
		if _, err := Build(context.Background(), BuildOptions{Dir: dir, Inputs: []Input{{Name: "d.jsonl", R: bytes.NewReader(jsonlDocs(adversarialDocs))}},
			Encoder: m, ValDocs: 3, Overwrite: true}); err != nil {
			t.Fatal(err)
		}
		if HasValidationBytes(dir) {
			t.Error("a build without CaseOps left the earlier build's sidecar")
		}
	})
}
