package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/progress"
)

// Defaults of Options, as the challenge's script has them.
const (
	DefaultRepo        = "willdepueoai/parameter-golf"
	DefaultRemoteRoot  = "datasets"
	DefaultEndpoint    = "https://huggingface.co"
	DefaultTrainShards = 80
)

// Options configures Fetch.
type Options struct {
	// Out is the local root (the script's data/ folder).
	Out string
	// Repo is the Hugging Face dataset repository (DefaultRepo; community
	// exports such as "kevclark/parameter-golf" or
	// "romeerp/parameter-golf-caseops-v1" work the same way).
	Repo string
	// RemoteRoot is the repository folder that holds manifest.json (""
	// means DefaultRemoteRoot; "." the repository's top level).
	RemoteRoot string
	// Revision is the branch, tag or commit (default "main").
	Revision string
	// Endpoint is the server (DefaultEndpoint): files come from
	// <Endpoint>/datasets/<Repo>/resolve/<Revision>/<path>. A mirror, or a
	// test server, goes here.
	Endpoint string
	// Token, when set, is sent as a bearer token (gated or private repos).
	Token string
	// Variant selects the dataset: "sp1024", "sp8192", "byte260" name
	// fineweb10B_<variant>; any other name is looked up as it is and then
	// with that prefix. Dataset, when set, is the manifest's dataset name.
	Variant string
	Dataset string
	// TrainShards is how many training shards to fetch (a prefix of the
	// frozen order); Fetch fails if the dataset has fewer.
	TrainShards int
	// WithDocs also fetches docs_selected.jsonl and its source manifest.
	WithDocs bool
	// ValBytes says whether to fetch the validation byte sidecar
	// (fineweb_val_bytes_NNNNNN.bin, CaseOps datasets): "yes", "no", or
	// "auto" (the default: when the manifest counts files_val_bytes, or the
	// dataset's name says caseops, in which case a missing sidecar is
	// skipped).
	ValBytes string
	// SkipManifest uses Out/manifest.json without fetching it.
	SkipManifest bool
	// Force fetches files again even when they exist.
	Force bool
	// Client is the HTTP client (default: one with a 30 s response-header
	// timeout and no overall one, for multi-gigabyte files).
	Client *http.Client
	// Retries is how many times a failed transfer is retried, resuming
	// where it stopped (0: 5; negative: none); RetryWait the pause before
	// the first retry, doubled each time (0: 2 s; negative: none).
	Retries   int
	RetryWait time.Duration
	// StallTimeout abandons (and retries) a transfer that receives nothing
	// for this long (0: one minute).
	StallTimeout time.Duration
	// Progress receives progress lines with rate and ETA (nil: none).
	Progress io.Writer
}

// Result says what Fetch did.
type Result struct {
	Repo        string   `json:"repo"`
	Manifest    string   `json:"manifest"`    // local path
	Dataset     string   `json:"dataset"`     // manifest name, e.g. fineweb10B_sp1024
	DatasetDir  string   `json:"dataset_dir"` // local folder of the shards (golf train --data)
	Tokenizers  []string `json:"tokenizers"`  // local paths of the tokenizer files
	Files       []File   `json:"files"`
	Downloaded  int64    `json:"downloaded_bytes"`
	Seconds     float64  `json:"seconds"`
	TrainShards int      `json:"train_shards"`
	ValShards   int      `json:"val_shards"`
	ValBytes    int      `json:"val_byte_shards"`
}

// File is one file of a download.
type File struct {
	Remote  string `json:"remote"` // path in the repository
	Local   string `json:"local"`
	Size    int64  `json:"size"`
	Status  string `json:"status"`           // "downloaded", "resumed", "present" or "missing" (optional files)
	SHA256  string `json:"sha256,omitempty"` // when the server or the manifest gave one and it was checked
	Retries int    `json:"retries,omitempty"`
}

// ErrRemoteMissing is wrapped by the error for a file the repository does
// not have (HTTP 404).
var ErrRemoteMissing = errors.New("not in the repository")

// ErrOffline is wrapped by the error when the server cannot be reached at
// all (no route, DNS failure, connection refused).
var ErrOffline = errors.New("cannot reach the server")

// remoteManifest is the part of the export's manifest.json that the
// download reads.
type remoteManifest struct {
	ShardSize int64 `json:"shard_size"`
	DocsMeta  struct {
		DocsSHA256 string `json:"docs_sha256"`
	} `json:"docs_meta"`
	Datasets []struct {
		Name          string           `json:"name"`
		TokenizerName string           `json:"tokenizer_name"`
		Stats         map[string]int64 `json:"stats"`
	} `json:"datasets"`
	Tokenizers []map[string]any `json:"tokenizers"`
}

// datasetForVariant is the script's dataset_dir_for_variant.
func datasetForVariant(v string) (string, bool) {
	if v == "byte260" || regexp.MustCompile(`^sp[0-9]+$`).MatchString(v) {
		return "fineweb10B_" + v, true
	}
	return "", false
}

func (o *Options) fill() error {
	if o.Out == "" {
		return errors.New("data: download: no output folder")
	}
	if o.Repo == "" {
		o.Repo = DefaultRepo
	}
	if o.Revision == "" {
		o.Revision = "main"
	}
	switch o.RemoteRoot = strings.Trim(o.RemoteRoot, "/"); o.RemoteRoot {
	case "":
		o.RemoteRoot = DefaultRemoteRoot
	case ".":
		o.RemoteRoot = ""
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if _, err := url.Parse(o.Endpoint); err != nil {
		return fmt.Errorf("data: download: endpoint %q: %w", o.Endpoint, err)
	}
	if o.Variant == "" && o.Dataset == "" {
		o.Variant = "sp1024"
	}
	if o.TrainShards < 0 {
		return fmt.Errorf("data: download: %d training shards", o.TrainShards)
	}
	switch o.ValBytes {
	case "":
		o.ValBytes = "auto"
	case "auto", "yes", "no":
	default:
		return fmt.Errorf("data: download: ValBytes %q: want auto, yes or no", o.ValBytes)
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.RetryWait == 0 {
		o.RetryWait = 2 * time.Second
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: 30 * time.Second,
			TLSHandshakeTimeout:   30 * time.Second,
		}}
	}
	return nil
}

// remotePath joins the remote root and a path inside it.
func (o *Options) remotePath(p string) string {
	if o.RemoteRoot == "" {
		return p
	}
	return o.RemoteRoot + "/" + p
}

// localPath is where a remote path lands: Out joined with the path less
// the remote root (the script's local_path_for_remote).
func (o *Options) localPath(remote string) string {
	rel := remote
	if o.RemoteRoot != "" {
		rel = strings.TrimPrefix(rel, o.RemoteRoot+"/")
	}
	return filepath.Join(o.Out, filepath.FromSlash(rel))
}

// fileURL is the resolve URL of a remote path.
func (o *Options) fileURL(remote string) string {
	parts := strings.Split(remote, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return fmt.Sprintf("%s/datasets/%s/resolve/%s/%s", o.Endpoint, o.Repo, url.PathEscape(o.Revision), strings.Join(parts, "/"))
}

// plannedFile is one file to fetch, with what is known of it beforehand.
type plannedFile struct {
	remote   string
	size     int64 // expected size from the manifest (0: unknown)
	sha256   string
	optional bool // a 404 is not an error (a sidecar the dataset may lack)
	shard    bool // a shard file: its header is checked
}

// Fetch downloads a dataset of the challenge's data: the manifest, the
// validation shards (and their byte sidecar for CaseOps data), the first
// opt.TrainShards training shards, the tokenizer files and, with WithDocs,
// the documents. Files already present are kept (unless Force). Each file
// is written as a hidden ".<name>.part" beside its final name and renamed
// only when complete and checked: its size against the manifest (every
// shard but a split's last has shard_size tokens) and the server's, its
// SHA-256 when the server gives one (Hugging Face does for LFS files,
// X-Linked-Etag) or the manifest does (docs_sha256), and a shard's header.
// An interrupted transfer resumes from the partial file (HTTP Range),
// within a run (Retries) and across runs.
func Fetch(ctx context.Context, opt Options) (*Result, error) {
	start := time.Now()
	if err := opt.fill(); err != nil {
		return nil, err
	}
	res := &Result{Repo: opt.Repo}
	manifestRemote := opt.remotePath("manifest.json")
	res.Manifest = opt.localPath(manifestRemote)
	d := &downloader{opt: &opt, res: res, meter: progress.New(opt.Progress, "data download", "bytes", 0)}
	if opt.SkipManifest {
		if _, err := os.Stat(res.Manifest); err != nil {
			return nil, fmt.Errorf("data: download: --skip-manifest: the manifest is needed for the shard counts but %s is missing", res.Manifest)
		}
	} else if err := d.fetch(ctx, plannedFile{remote: manifestRemote}); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(res.Manifest)
	if err != nil {
		return nil, fmt.Errorf("data: download: %w", err)
	}
	var man remoteManifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("data: download: manifest %s: %w", res.Manifest, err)
	}
	plan, err := planDownload(&opt, &man, res)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range plan {
		total += f.size
	}
	d.meter.SetTotal(total)
	for _, f := range plan {
		if err := d.fetch(ctx, f); err != nil {
			return nil, err
		}
	}
	if total > 0 {
		d.meter.Done()
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// planDownload lists the files of the chosen dataset, as the script does.
func planDownload(opt *Options, man *remoteManifest, res *Result) ([]plannedFile, error) {
	name := opt.Dataset
	var names []string
	for _, ds := range man.Datasets {
		names = append(names, ds.Name)
	}
	find := func(n string) int {
		for i, ds := range man.Datasets {
			if ds.Name == n {
				return i
			}
		}
		return -1
	}
	idx := -1
	switch {
	case name != "":
		idx = find(name)
	default:
		if n, ok := datasetForVariant(opt.Variant); ok {
			name, idx = n, find(n)
		} else if idx = find(opt.Variant); idx >= 0 {
			name = opt.Variant
		} else {
			name = "fineweb10B_" + opt.Variant
			idx = find(name)
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("data: download: dataset %s is not in %s (it has %s)", name, res.Manifest, strings.Join(names, ", "))
	}
	ds := man.Datasets[idx]
	res.Dataset = ds.Name
	stat := func(k string) (int64, bool) { v, ok := ds.Stats[k]; return v, ok }
	nVal, ok1 := stat("files_val")
	nTrain, ok2 := stat("files_train")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("data: download: dataset %s in %s has no files_val/files_train stats", ds.Name, res.Manifest)
	}
	if int64(opt.TrainShards) > nTrain {
		return nil, fmt.Errorf("data: download: %s has only %d training shards in %s, %d asked for", ds.Name, nTrain, opt.Repo, opt.TrainShards)
	}
	var tok map[string]any
	for _, t := range man.Tokenizers {
		if n, _ := t["name"].(string); n == ds.TokenizerName {
			tok = t
			break
		}
	}
	if tok == nil {
		return nil, fmt.Errorf("data: download: tokenizer %s of dataset %s is not in %s", ds.TokenizerName, ds.Name, res.Manifest)
	}
	var artifacts []string
	for _, k := range []string{"model_path", "vocab_path", "path"} {
		if v, _ := tok[k].(string); v != "" {
			artifacts = append(artifacts, v)
		}
	}
	if len(artifacts) == 0 {
		return nil, fmt.Errorf("data: download: tokenizer %s in %s names no files (model_path, vocab_path or path)", ds.TokenizerName, res.Manifest)
	}
	// Shard sizes: every shard but a split's last holds shard_size tokens.
	sizeOf := func(i, n, tokens int64, haveTokens bool) int64 {
		if man.ShardSize <= 0 {
			return 0
		}
		if i < n-1 {
			return data.ShardHeaderBytes + 2*man.ShardSize
		}
		if !haveTokens {
			return 0
		}
		last := tokens - (n-1)*man.ShardSize
		if last <= 0 || last > man.ShardSize {
			return 0 // inconsistent stats: do not guess
		}
		return data.ShardHeaderBytes + 2*last
	}
	tokVal, okTV := stat("tokens_val")
	tokTrain, okTT := stat("tokens_train")
	var plan []plannedFile
	if opt.WithDocs {
		plan = append(plan,
			plannedFile{remote: opt.remotePath("docs_selected.jsonl"), sha256: strings.ToLower(man.DocsMeta.DocsSHA256)},
			plannedFile{remote: opt.remotePath("docs_selected.source_manifest.json")})
	}
	prefix := opt.remotePath("datasets/" + ds.Name)
	for i := range nVal {
		plan = append(plan, plannedFile{remote: fmt.Sprintf("%s/%s", prefix, data.ShardName(data.Val, int(i))), size: sizeOf(i, nVal, tokVal, okTV), shard: true})
	}
	sidecars, optional := nVal, false
	switch nb, ok := stat("files_val_bytes"); {
	case opt.ValBytes == "no":
		sidecars = 0
	case ok:
		sidecars = nb
	case opt.ValBytes == "auto" && !strings.Contains(strings.ToLower(ds.Name), "caseops"):
		sidecars = 0
	case opt.ValBytes == "auto":
		optional = true
	}
	for i := range sidecars {
		plan = append(plan, plannedFile{remote: fmt.Sprintf("%s/%s", prefix, data.SidecarName(int(i))), size: sizeOf(i, nVal, tokVal, okTV), shard: true, optional: optional})
	}
	for i := range int64(opt.TrainShards) {
		plan = append(plan, plannedFile{remote: fmt.Sprintf("%s/%s", prefix, data.ShardName(data.Train, int(i))), size: sizeOf(i, nTrain, tokTrain, okTT), shard: true})
	}
	for _, a := range artifacts {
		remote := opt.remotePath(a)
		plan = append(plan, plannedFile{remote: remote})
		res.Tokenizers = append(res.Tokenizers, opt.localPath(remote))
	}
	res.DatasetDir = opt.localPath(prefix)
	res.ValShards, res.TrainShards = int(nVal), opt.TrainShards
	return plan, nil
}

// downloader fetches files one at a time.
type downloader struct {
	opt   *Options
	res   *Result
	meter *progress.Meter
}

// partPath is the hidden name a file is written under until it is done.
func partPath(local string) string {
	dir, base := filepath.Split(local)
	return filepath.Join(dir, "."+base+".part")
}

// fetch downloads one planned file (or keeps it when present) and records
// it in the result.
func (d *downloader) fetch(ctx context.Context, f plannedFile) error {
	local := d.opt.localPath(f.remote)
	entry := File{Remote: f.remote, Local: local}
	if st, err := os.Stat(local); err == nil && !d.opt.Force {
		if f.size > 0 && st.Size() != f.size {
			return fmt.Errorf("data: download: %s exists with %d bytes, but the manifest makes it %d; remove it or download again with --force", local, st.Size(), f.size)
		}
		entry.Size, entry.Status = st.Size(), "present"
		d.meter.Add(f.size)
		d.res.Files = append(d.res.Files, entry)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return fmt.Errorf("data: download: %w", err)
	}
	part := partPath(local)
	if d.opt.Force {
		os.Remove(part)
	}
	wait := d.opt.RetryWait
	var counted int64 // bytes of this file the meter has seen
	for attempt := 0; ; attempt++ {
		st, err := d.transfer(ctx, f, part, &counted)
		if err != nil {
			if fi, serr := os.Stat(part); serr == nil && fi.Size() == 0 {
				os.Remove(part) // nothing to resume from
			}
		}
		if err == nil {
			entry.Size, entry.SHA256, entry.Retries = st.size, st.sha256, attempt
			entry.Status = "downloaded"
			if st.resumed {
				entry.Status = "resumed"
			}
			if err := os.Rename(part, local); err != nil {
				return fmt.Errorf("data: download: %w", err)
			}
			d.res.Files = append(d.res.Files, entry)
			d.res.Downloaded += st.fetched
			if strings.Contains(filepath.Base(local), "_val_bytes_") {
				d.res.ValBytes++
			}
			return nil
		}
		if errors.Is(err, ErrRemoteMissing) && f.optional {
			entry.Status = "missing"
			d.res.Files = append(d.res.Files, entry)
			return nil
		}
		var fe *fatalError
		switch {
		case errors.As(err, &fe):
			return fmt.Errorf("data: download: %s: %w", f.remote, fe.err)
		case ctx.Err() != nil:
			return fmt.Errorf("data: download: %s: %w", f.remote, ctx.Err())
		case attempt >= d.opt.Retries:
			return fmt.Errorf("data: download: %s: %w (gave up after %d tries; run again to resume from the partial file)", f.remote, err, attempt+1)
		}
		if wait > 0 {
			fmt.Fprintf(d.progressOut(), "data download: %s: %v; retrying in %s\n", f.remote, err, wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return fmt.Errorf("data: download: %s: %w", f.remote, ctx.Err())
			}
			wait *= 2
		}
	}
}

func (d *downloader) progressOut() io.Writer {
	if d.opt.Progress == nil {
		return io.Discard
	}
	return d.opt.Progress
}

// fatalError marks a failure that retrying cannot mend (a missing file, a
// wrong size or checksum, a refused token).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(format string, args ...any) error { return &fatalError{fmt.Errorf(format, args...)} }

// transferStats describes one completed transfer.
type transferStats struct {
	size, fetched int64
	sha256        string
	resumed       bool
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// transfer fetches the rest of a file into part (resuming from what part
// holds) and checks it. A network failure comes back as a plain error (to
// retry); other faults as *fatalError.
func (d *downloader) transfer(ctx context.Context, f plannedFile, part string, counted *int64) (transferStats, error) {
	var st transferStats
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return st, fatal("%w", err)
	}
	defer out.Close()
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return st, fatal("%w", err)
	}
	// A transfer that stalls is cancelled, and then retried like a broken one.
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(d.opt.StallTimeout, func() {
		cancel(fmt.Errorf("nothing received for %s", d.opt.StallTimeout))
	})
	defer stall.Stop()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, d.opt.fileURL(f.remote), nil)
	if err != nil {
		return st, fatal("%w", err)
	}
	req.Header.Set("User-Agent", "golf-data-download/1")
	if d.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+d.opt.Token)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	// Hugging Face answers a resolve URL of an LFS file with a redirect
	// that carries the file's size and SHA-256; remember them.
	var linkedSize, linkedSHA string
	client := *d.opt.Client
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if resp := r.Response; resp != nil {
			if v := resp.Header.Get("X-Linked-Size"); v != "" {
				linkedSize = v
			}
			if v := strings.Trim(resp.Header.Get("X-Linked-Etag"), `"`); v != "" {
				linkedSHA = strings.ToLower(v)
			}
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		if isOffline(err) {
			return st, fatal("%w: %s (%v); offline? A mirror can be given with --endpoint or HF_ENDPOINT", ErrOffline, d.opt.Endpoint, err)
		}
		return st, err
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("X-Linked-Size"); v != "" {
		linkedSize = v
	}
	if v := strings.Trim(resp.Header.Get("X-Linked-Etag"), `"`); v != "" {
		linkedSHA = strings.ToLower(v)
	}
	total := int64(-1) // the whole file's size, when the server says
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 { // the server ignored the range: start over
			if err := out.Truncate(0); err != nil {
				return st, fatal("%w", err)
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return st, fatal("%w", err)
			}
			have = 0
		}
		total = resp.ContentLength
	case http.StatusPartialContent:
		first, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || first != have {
			return st, fatal("the server resumed at %q, not at byte %d", resp.Header.Get("Content-Range"), have)
		}
		total = size
		st.resumed = true
	case http.StatusRequestedRangeNotSatisfiable:
		// The partial file is as long as the file (or longer): check it.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have {
			total = size
			st.resumed = true
			break
		}
		out.Truncate(0)
		return st, fmt.Errorf("the partial file of %d bytes does not fit the remote file; starting over", have)
	case http.StatusNotFound:
		return st, fatal("%w (HTTP 404 from %s)", ErrRemoteMissing, d.opt.fileURL(f.remote))
	case http.StatusUnauthorized, http.StatusForbidden:
		return st, fatal("HTTP %d from %s: the repository may be gated or private (set HF_TOKEN)", resp.StatusCode, d.opt.fileURL(f.remote))
	default:
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return st, fmt.Errorf("HTTP %d from %s", resp.StatusCode, d.opt.fileURL(f.remote))
		}
		return st, fatal("HTTP %d from %s", resp.StatusCode, d.opt.fileURL(f.remote))
	}
	want := f.size
	if n, err := strconv.ParseInt(linkedSize, 10, 64); err == nil && n > 0 {
		if want > 0 && n != want {
			return st, fatal("the server says %d bytes, the manifest's shard sizes %d", n, want)
		}
		want = n
	}
	if total >= 0 && want > 0 && total != want {
		return st, fatal("the server sends %d bytes, the file should have %d", total, want)
	}
	if want <= 0 {
		want = total
	}
	sum := f.sha256
	if hexSHA256.MatchString(linkedSHA) {
		if sum != "" && sum != linkedSHA {
			return st, fatal("the server's SHA-256 %s differs from the manifest's %s", linkedSHA, sum)
		}
		sum = linkedSHA
	}
	var h hash.Hash
	if sum != "" {
		h = sha256.New()
		if have > 0 { // hash what an earlier attempt wrote
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return st, fatal("%w", err)
			}
			if _, err := io.CopyN(h, out, have); err != nil {
				return st, fatal("read the partial file: %w", err)
			}
		}
	}
	if have > *counted {
		d.meter.Add(have - *counted)
		*counted = have
	}
	w := io.Writer(out)
	if h != nil {
		w = io.MultiWriter(out, h)
	}
	n, copyErr := io.Copy(w, &meterReader{r: resp.Body, m: d.meter, counted: counted, stall: stall, timeout: d.opt.StallTimeout})
	st.fetched = n
	size := have + n
	if copyErr != nil {
		if ctx.Err() != nil {
			return st, fatal("%w", ctx.Err())
		}
		if cause := context.Cause(reqCtx); cause != nil {
			copyErr = cause
		}
		return st, fmt.Errorf("transfer stopped at byte %d: %w", size, copyErr)
	}
	if want > 0 && size < want {
		return st, fmt.Errorf("the connection ended at byte %d of %d", size, want)
	}
	if want > 0 && size != want {
		os.Remove(part)
		return st, fatal("got %d bytes, the file should have %d", size, want)
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			os.Remove(part)
			return st, fatal("SHA-256 %s, expected %s: the download is corrupt and was removed", got, sum)
		}
		st.sha256 = sum
	}
	if err := out.Sync(); err != nil {
		return st, fatal("%w", err)
	}
	if f.shard {
		if _, err := data.ShardTokenCount(part); err != nil {
			os.Remove(part)
			return st, fatal("not a valid shard: %w", err)
		}
	}
	st.size = size
	return st, nil
}

// meterReader counts bytes read into the progress meter.
type meterReader struct {
	r       io.Reader
	m       *progress.Meter
	counted *int64
	stall   *time.Timer // reset whenever bytes arrive
	timeout time.Duration
}

func (r *meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.stall.Reset(r.timeout)
	}
	r.m.Add(int64(n))
	*r.counted += int64(n)
	return n, err
}

// parseContentRange reads "bytes first-last/size" or "bytes */size".
func parseContentRange(v string) (first, size int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, total, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		size = -1
	}
	if rng == "*" {
		return -1, size, err == nil
	}
	a, _, found := strings.Cut(rng, "-")
	first, err = strconv.ParseInt(a, 10, 64)
	return first, size, found && err == nil
}

// isOffline reports whether err means the server could not be reached at
// all, as opposed to a transfer that broke.
func isOffline(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
