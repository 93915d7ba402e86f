package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/data/download"
)

// hubServer serves a small repository in the challenge's layout under
// /datasets/<repo>/resolve/main/ (the LFS redirects and faults are tested
// in package data).
func hubServer(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{}
	shard := func(name string, n int) {
		p := filepath.Join(dir, name)
		toks := make([]uint16, n)
		for i := range toks {
			toks[i] = uint16(i % 1000)
		}
		if err := data.WriteShard(p, toks); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		files["datasets/datasets/fineweb10B_sp1024/"+name] = b
	}
	shard("fineweb_val_000000.bin", 300)
	shard("fineweb_train_000000.bin", 500)
	shard("fineweb_train_000001.bin", 200)
	files["datasets/tokenizers/fineweb_1024_bpe.model"] = []byte("model")
	files["datasets/manifest.json"] = []byte(`{"shard_size": 500, "tokenizers": [{"name": "sp_bpe_1024", "model_path": "tokenizers/fineweb_1024_bpe.model"}],
		"datasets": [{"name": "fineweb10B_sp1024", "tokenizer_name": "sp_bpe_1024", "stats": {"files_val": 1, "files_train": 2, "tokens_val": 300, "tokens_train": 700}}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := strings.CutPrefix(r.URL.Path, "/datasets/"+repo+"/resolve/main/")
		b, found := files[p]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDataDownloadCLI(t *testing.T) {
	url := hubServer(t, "someone/golf-data")
	out := t.TempDir()
	code, stdout, stderr := dataCLI(t, "", "data", "download", "--endpoint", url, "--repo", "someone/golf-data", "--out", out, "--quiet", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dir := filepath.Join(out, "datasets", "fineweb10B_sp1024")
	if !tableHasRow(stdout, "training shards 1") || !strings.Contains(stdout, "golf train --data "+dir) {
		t.Errorf("output:\n%s", stdout)
	}
	for _, f := range []string{"manifest.json", "datasets/fineweb10B_sp1024/fineweb_val_000000.bin", "datasets/fineweb10B_sp1024/fineweb_train_000000.bin", "tokenizers/fineweb_1024_bpe.model"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fineweb_train_000001.bin")); err == nil {
		t.Error("fetched a second training shard")
	}
	// JSON, everything present now.
	code, stdout, _ = dataCLI(t, "", "data", "download", "--endpoint", url, "--repo", "someone/golf-data", "--out", out, "--train-shards", "1", "--json")
	var res download.Result
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Downloaded != 0 || len(res.Files) != 4 {
		t.Fatalf("second run: exit %d, %+v", code, res)
	}
	// Errors: too many shards, offline, bad arguments.
	if code, _, stderr := dataCLI(t, "", "data", "download", "--endpoint", url, "--repo", "someone/golf-data", "--out", t.TempDir(), "--train-shards", "3", "--quiet"); code != 1 || !strings.Contains(stderr, "only 2 training shards") {
		t.Errorf("too many shards: exit %d %s", code, stderr)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if code, _, stderr := dataCLI(t, "", "data", "download", "--endpoint", "http://"+addr, "--out", t.TempDir(), "--quiet"); code != 1 || !strings.Contains(stderr, "offline") {
		t.Errorf("offline: exit %d %s", code, stderr)
	}
	for _, args := range [][]string{{"x"}, {"--train-shards", "-1"}, {"1", "2"}} {
		if code, _, stderr := dataCLI(t, "", append([]string{"data", "download", "--out", t.TempDir()}, args...)...); code != 2 {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
}
