package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paramgolf/golf/data"
)

// fakeHub is a Hugging Face dataset repository served the way the Hub
// serves one: /datasets/<repo>/resolve/<revision>/<path>; "LFS" files
// (shards, documents) answer with a redirect to a CDN URL that carries
// X-Linked-Size and X-Linked-Etag (the SHA-256), as the Hub does; the CDN
// honours Range. Faults can be injected per path.
type fakeHub struct {
	t     *testing.T
	repo  string
	files map[string][]byte // path in the repository -> content

	mu          sync.Mutex
	cutAfter    map[string][]int // path -> for each coming request, bytes to send before cutting the connection
	stallAfter  map[string][]int // path -> for each coming request, bytes to send before going silent
	badSHA      map[string]bool  // path -> announce a wrong SHA-256
	ignoreRange map[string]bool  // path -> answer ranged requests with the whole file
	requests    map[string]int   // path -> requests seen (resolve and CDN)
	ranges      map[string][]string
}

func newFakeHub(t *testing.T, repo string) *fakeHub {
	return &fakeHub{t: t, repo: repo, files: map[string][]byte{}, cutAfter: map[string][]int{}, stallAfter: map[string][]int{}, badSHA: map[string]bool{},
		ignoreRange: map[string]bool{}, requests: map[string]int{}, ranges: map[string][]string{}}
}

func isLFS(p string) bool { return strings.HasSuffix(p, ".bin") || strings.HasSuffix(p, ".jsonl") }

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		h.serveCDN(w, r, p)
		return
	}
	prefix := "/datasets/" + h.repo + "/resolve/main/"
	p, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	h.mu.Lock()
	h.requests[p]++
	h.mu.Unlock()
	content, ok := h.files[p]
	if !ok {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if isLFS(p) {
		sum := sha256.Sum256(content)
		etag := hex.EncodeToString(sum[:])
		h.mu.Lock()
		if h.badSHA[p] {
			etag = strings.Repeat("0", 64)
		}
		h.mu.Unlock()
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(content)))
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		http.Redirect(w, r, "/cdn/"+p, http.StatusFound)
		return
	}
	h.serveCDN(w, r, p)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request, p string) {
	content := h.files[p]
	h.mu.Lock()
	h.ranges[p] = append(h.ranges[p], r.Header.Get("Range"))
	var cut = -1
	if c := h.cutAfter[p]; len(c) > 0 {
		cut, h.cutAfter[p] = c[0], c[1:]
	}
	ignore := h.ignoreRange[p]
	stall := -1
	if c := h.stallAfter[p]; len(c) > 0 {
		stall, h.stallAfter[p] = c[0], c[1:]
	}
	h.mu.Unlock()
	if stall >= 0 {
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:stall])
		w.(http.Flusher).Flush()
		select { // silent until the client gives up
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	if ignore {
		r.Header.Del("Range")
	}
	if cut >= 0 {
		// Announce the whole file, send part of it, and drop the connection.
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(content)-1, len(content)))
			w.Header().Set("Content-Length", fmt.Sprint(len(content)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			w.WriteHeader(http.StatusOK)
		}
		w.Write(content[start : start+cut])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			h.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	http.ServeContent(w, r, filepath.Base(p), time.Time{}, bytes.NewReader(content))
}

// hubShard returns a shard file of n tokens.
func hubShard(t *testing.T, n int, seed uint16) []byte {
	t.Helper()
	toks := make([]uint16, n)
	for i := range toks {
		toks[i] = uint16(i*7+int(seed)) % 1024
	}
	p := filepath.Join(t.TempDir(), "s.bin")
	if err := data.WriteShard(p, toks); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// challengeRepo fills a fake repository in the layout of the challenge's
// export: root "datasets", shard size 1000 tokens, sp1024 with 2 validation
// and 3 training shards (the last of each short), and a CaseOps sp8192 with
// byte sidecars.
func challengeRepo(t *testing.T, h *fakeHub) {
	const shardSize = 1000
	docs := []byte(`{"text":"a"}` + "\n" + `{"text":"b"}` + "\n")
	docsSum := sha256.Sum256(docs)
	man := map[string]any{
		"version": "10B", "shard_size": shardSize, "num_docs": 2,
		"docs_meta": map[string]any{"docs_sha256": hex.EncodeToString(docsSum[:])},
		"tokenizers": []map[string]any{
			{"name": "sp_bpe_1024", "kind": "sentencepiece_bpe", "model_path": "tokenizers/fineweb_1024_bpe.model", "vocab_path": "tokenizers/fineweb_1024_bpe.vocab"},
			{"name": "sp_caseops_8192", "kind": "sentencepiece_bpe", "model_path": "tokenizers/caseops_8192.model"},
		},
		"datasets": []map[string]any{
			{"name": "fineweb10B_sp1024", "tokenizer_name": "sp_bpe_1024",
				"stats": map[string]int{"files_val": 2, "files_train": 3, "tokens_val": 1500, "tokens_train": 2700}},
			{"name": "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved", "tokenizer_name": "sp_caseops_8192",
				"stats": map[string]int{"files_val": 1, "files_train": 1, "tokens_val": 400, "tokens_train": 900, "files_val_bytes": 1}},
		},
	}
	mb, _ := json.MarshalIndent(man, "", "  ")
	h.files["datasets/manifest.json"] = mb
	h.files["datasets/docs_selected.jsonl"] = docs
	h.files["datasets/docs_selected.source_manifest.json"] = []byte(`{"docs_sha256":"x"}`)
	h.files["datasets/tokenizers/fineweb_1024_bpe.model"] = []byte("model bytes")
	h.files["datasets/tokenizers/fineweb_1024_bpe.vocab"] = []byte("<pad>\t0\n")
	h.files["datasets/tokenizers/caseops_8192.model"] = []byte("caseops model")
	d := "datasets/datasets/fineweb10B_sp1024/"
	h.files[d+"fineweb_val_000000.bin"] = hubShard(t, 1000, 1)
	h.files[d+"fineweb_val_000001.bin"] = hubShard(t, 500, 2)
	h.files[d+"fineweb_train_000000.bin"] = hubShard(t, 1000, 3)
	h.files[d+"fineweb_train_000001.bin"] = hubShard(t, 1000, 4)
	h.files[d+"fineweb_train_000002.bin"] = hubShard(t, 700, 5)
	c := "datasets/datasets/fineweb10B_sp8192_lossless_caps_caseops_v1_reserved/"
	h.files[c+"fineweb_val_000000.bin"] = hubShard(t, 400, 6)
	h.files[c+"fineweb_val_bytes_000000.bin"] = hubShard(t, 400, 7)
	h.files[c+"fineweb_train_000000.bin"] = hubShard(t, 900, 8)
}

func startHub(t *testing.T, repo string) (*fakeHub, string) {
	h := newFakeHub(t, repo)
	challengeRepo(t, h)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func downloadOpts(out, endpoint string) Options {
	return Options{Out: out, Endpoint: endpoint, TrainShards: 2, RetryWait: -1}
}

// sameAsRemote checks that every downloaded file equals the repository's
// and that no partial file is left.
func sameAsRemote(t *testing.T, h *fakeHub, res *Result) {
	t.Helper()
	for _, f := range res.Files {
		if f.Status == "missing" {
			continue
		}
		got, err := os.ReadFile(f.Local)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, h.files[f.Remote]) {
			t.Errorf("%s differs from the repository's %s", f.Local, f.Remote)
		}
	}
	filepath.Walk(res.DatasetDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".part") {
			t.Errorf("partial file left: %s", p)
		}
		return nil
	})
}

func TestDownloadChallengeLayout(t *testing.T) {
	h, url := startHub(t, DefaultRepo)
	out := t.TempDir()
	opt := downloadOpts(out, url)
	opt.WithDocs = true
	var progressOut bytes.Buffer
	opt.Progress = &progressOut
	res, err := Fetch(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"manifest.json", "docs_selected.jsonl", "docs_selected.source_manifest.json",
		"datasets/fineweb10B_sp1024/fineweb_val_000000.bin", "datasets/fineweb10B_sp1024/fineweb_val_000001.bin",
		"datasets/fineweb10B_sp1024/fineweb_train_000000.bin", "datasets/fineweb10B_sp1024/fineweb_train_000001.bin",
		"tokenizers/fineweb_1024_bpe.model", "tokenizers/fineweb_1024_bpe.vocab",
	}
	if len(res.Files) != len(want) {
		t.Fatalf("%d files, want %d: %+v", len(res.Files), len(want), res.Files)
	}
	for i, w := range want {
		if rel, _ := filepath.Rel(out, res.Files[i].Local); rel != filepath.FromSlash(w) || res.Files[i].Status != "downloaded" {
			t.Errorf("file %d: %s (%s), want %s downloaded", i, rel, res.Files[i].Status, w)
		}
	}
	sameAsRemote(t, h, res)
	if res.DatasetDir != filepath.Join(out, "datasets", "fineweb10B_sp1024") || res.ValShards != 2 || res.TrainShards != 2 {
		t.Errorf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(out, "datasets/fineweb10B_sp1024/fineweb_train_000002.bin")); err == nil {
		t.Error("downloaded a training shard that was not asked for")
	}
	for _, f := range res.Files {
		if isLFS(f.Remote) && f.SHA256 == "" {
			t.Errorf("%s: the server's SHA-256 was not checked", f.Remote)
		}
	}
	if !strings.Contains(progressOut.String(), "data download:") {
		t.Errorf("no progress line: %q", progressOut.String())
	}
	// The shards are usable as they are.
	if files, err := data.ValFiles(res.DatasetDir); err != nil || len(files) != 2 {
		t.Errorf("ValFiles: %v %v", files, err)
	}
	// A second run finds everything in place and fetches nothing.
	before := h.requests["datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin"]
	res2, err := Fetch(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res2.Files {
		if f.Status != "present" {
			t.Errorf("second run: %s %s", f.Remote, f.Status)
		}
	}
	if res2.Downloaded != 0 || h.requests["datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin"] != before {
		t.Errorf("second run downloaded %d bytes", res2.Downloaded)
	}
}

func TestDownloadResumesInterruptedTransfers(t *testing.T) {
	h, url := startHub(t, DefaultRepo)
	shard := "datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin"
	// Within a run: two connections cut, then the rest.
	h.cutAfter[shard] = []int{700, 500}
	out := t.TempDir()
	res, err := Fetch(context.Background(), downloadOpts(out, url))
	if err != nil {
		t.Fatal(err)
	}
	sameAsRemote(t, h, res)
	var f File
	for _, x := range res.Files {
		if x.Remote == shard {
			f = x
		}
	}
	if f.Status != "resumed" || f.Retries != 2 || h.ranges[shard][1] != "bytes=700-" || h.ranges[shard][2] != "bytes=1200-" {
		t.Errorf("file %+v, ranges asked %q", f, h.ranges[shard])
	}

	// Across runs: a run without retries leaves a hidden partial file and
	// no file under the final name; the next run resumes it.
	val := "datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin"
	h.cutAfter[val] = []int{1000}
	out2 := t.TempDir()
	opt := downloadOpts(out2, url)
	opt.Retries = -1
	_, err = Fetch(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "fineweb_val_000000.bin") || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("interrupted run: %v", err)
	}
	final := filepath.Join(out2, "datasets/fineweb10B_sp1024/fineweb_val_000000.bin")
	if _, err := os.Stat(final); err == nil {
		t.Fatal("a partial file is under its final name")
	}
	if st, err := os.Stat(partPath(final)); err != nil || st.Size() != 1000 {
		t.Fatalf("partial file: %v %v", st, err)
	}
	res, err = Fetch(context.Background(), downloadOpts(out2, url))
	if err != nil {
		t.Fatal(err)
	}
	sameAsRemote(t, h, res)
	if r := h.ranges[val]; r[len(r)-1] != "bytes=1000-" {
		t.Errorf("second run asked %q", r)
	}

	// A transfer that goes silent is abandoned and resumed.
	stalled := "datasets/datasets/fineweb10B_sp1024/fineweb_val_000001.bin"
	h.stallAfter[stalled] = []int{400}
	opt = downloadOpts(t.TempDir(), url)
	opt.StallTimeout = 300 * time.Millisecond
	start := time.Now()
	res, err = Fetch(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	sameAsRemote(t, h, res)
	if r := h.ranges[stalled]; r[len(r)-1] != "bytes=400-" || time.Since(start) > 5*time.Second {
		t.Errorf("stalled transfer: ranges %q after %s", r, time.Since(start))
	}

	// A server that ignores Range: the download starts over and is right.
	train0 := "datasets/datasets/fineweb10B_sp1024/fineweb_train_000000.bin"
	h.cutAfter[train0] = []int{300}
	h.ignoreRange[train0] = true
	res, err = Fetch(context.Background(), downloadOpts(t.TempDir(), url))
	if err != nil {
		t.Fatal(err)
	}
	sameAsRemote(t, h, res)
}

func TestDownloadFaults(t *testing.T) {
	t.Run("wrong size", func(t *testing.T) {
		h, url := startHub(t, DefaultRepo)
		// The repository's last validation shard is shorter than the
		// manifest's token counts make it.
		p := "datasets/datasets/fineweb10B_sp1024/fineweb_val_000001.bin"
		h.files[p] = hubShard(t, 400, 2)
		out := t.TempDir()
		_, err := Fetch(context.Background(), downloadOpts(out, url))
		if err == nil || !strings.Contains(err.Error(), "fineweb_val_000001.bin") || !strings.Contains(err.Error(), "2024") {
			t.Fatalf("error %v", err)
		}
		local := filepath.Join(out, "datasets/fineweb10B_sp1024/fineweb_val_000001.bin")
		for _, f := range []string{local, partPath(local)} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("%s left behind", f)
			}
		}
	})
	t.Run("missing file", func(t *testing.T) {
		h, url := startHub(t, DefaultRepo)
		delete(h.files, "datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin")
		_, err := Fetch(context.Background(), downloadOpts(t.TempDir(), url))
		if !errors.Is(err, ErrRemoteMissing) || !strings.Contains(err.Error(), "fineweb_train_000001.bin") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("bad checksum", func(t *testing.T) {
		h, url := startHub(t, DefaultRepo)
		p := "datasets/datasets/fineweb10B_sp1024/fineweb_train_000000.bin"
		h.badSHA[p] = true
		out := t.TempDir()
		_, err := Fetch(context.Background(), downloadOpts(out, url))
		if err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Fatalf("error %v", err)
		}
		local := filepath.Join(out, "datasets/fineweb10B_sp1024/fineweb_train_000000.bin")
		if _, err := os.Stat(local); err == nil {
			t.Error("a corrupt file is under its final name")
		}
	})
	t.Run("offline", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now: connection refused
		_, err = Fetch(context.Background(), downloadOpts(t.TempDir(), "http://"+addr))
		if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "offline") || !strings.Contains(err.Error(), "manifest.json") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("too many training shards", func(t *testing.T) {
		_, url := startHub(t, DefaultRepo)
		opt := downloadOpts(t.TempDir(), url)
		opt.TrainShards = 4
		if _, err := Fetch(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "only 3 training shards") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("unknown variant", func(t *testing.T) {
		_, url := startHub(t, DefaultRepo)
		opt := downloadOpts(t.TempDir(), url)
		opt.Variant = "sp4096"
		if _, err := Fetch(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "fineweb10B_sp4096 is not in") || !strings.Contains(err.Error(), "fineweb10B_sp1024") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("existing file of the wrong size", func(t *testing.T) {
		_, url := startHub(t, DefaultRepo)
		out := t.TempDir()
		p := filepath.Join(out, "datasets/fineweb10B_sp1024/fineweb_val_000000.bin")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("short"), 0o644)
		if _, err := Fetch(context.Background(), downloadOpts(out, url)); err == nil || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("error %v", err)
		}
		opt := downloadOpts(out, url)
		opt.Force = true
		if _, err := Fetch(context.Background(), opt); err != nil {
			t.Fatal(err)
		}
	})
}

// A community export (another repository) with CaseOps data: the byte
// sidecar comes with the validation shards.
func TestDownloadCaseOpsCommunityRepo(t *testing.T) {
	h, url := startHub(t, "romeerp/parameter-golf-caseops-v1")
	opt := downloadOpts(t.TempDir(), url)
	opt.Repo = "romeerp/parameter-golf-caseops-v1"
	opt.Variant = "sp8192_lossless_caps_caseops_v1_reserved"
	opt.TrainShards = 1
	res, err := Fetch(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	sameAsRemote(t, h, res)
	if res.ValBytes != 1 || !data.HasValidationBytes(res.DatasetDir) {
		t.Fatalf("byte sidecar not downloaded: %+v", res)
	}
	if _, err := data.LoadValidationBytes(res.DatasetDir, 400); err != nil {
		t.Fatal(err)
	}
	// The default repository does not have it.
	opt.Repo = DefaultRepo
	opt.Out = t.TempDir()
	if _, err := Fetch(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("wrong repository: %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in          string
		first, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true}, {"bytes */500", -1, 500, true}, {"bytes 0-0/*", 0, -1, true},
		{"items 1-2/3", 0, 0, false}, {"bytes 5", 0, 0, false},
	} {
		first, size, ok := parseContentRange(c.in)
		if ok != c.ok || (ok && (first != c.first || size != c.size)) {
			t.Errorf("%q: %d %d %v", c.in, first, size, ok)
		}
	}
}
