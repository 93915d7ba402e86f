package data

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/tokenizer"
)

func TestInspectShard(t *testing.T) {
	m := tokenizer.Default()
	files, err := ValFiles("testdata/ref_sp1024")
	if err != nil {
		t.Fatal(err)
	}
	var total ShardStats
	total.MaxID = -1
	for _, f := range files {
		st, err := InspectShard(f, m)
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := ReadShard(f)
		maxID := -1
		for _, v := range toks {
			maxID = max(maxID, int(v))
		}
		if st.File != f || st.Tokens != int64(len(toks)) || st.Docs != countBOS(toks, 1) || st.MaxID != maxID ||
			st.Bytes != m.ByteTable().CountTargets(toks) {
			t.Errorf("%s: %+v", f, st)
		}
		total.Add(st)
	}
	// The reference's validation split: 7 documents, 3407 tokens.
	if total.Docs != 7 || total.Tokens != 3407 {
		t.Errorf("total %+v", total)
	}

	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.bin")
	WriteShard(empty, nil)
	if st, err := InspectShard(empty, m); err != nil || st.Tokens != 0 || st.MaxID != -1 || st.Bytes != 0 {
		t.Errorf("empty shard: %+v, %v", st, err)
	}
	bad := filepath.Join(dir, "bad.bin")
	WriteShard(bad, []uint16{1, 5, 1023, 1024, 2000})
	_, err = InspectShard(bad, m)
	if !errors.Is(err, ErrInvalidShard) || !strings.Contains(err.Error(), "token id 1024 at index 3") || !strings.Contains(err.Error(), "bad.bin") {
		t.Errorf("out-of-vocabulary id: %v", err)
	}
}
