package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/internal/strictjson"
	"github.com/paramgolf/golf/tokenizer"
)

// ChallengeValDocs is the challenge's validation split: the first 50,000
// documents of its frozen FineWeb order.
const ChallengeValDocs = 50_000

// DefaultShardTokens is the challenge's shard size: 100,000,000 tokens
// (a 200,001,024-byte file).
const DefaultShardTokens = 100_000_000

// ManifestName is the file Build writes last into the output directory.
const ManifestName = "manifest.json"

// Encoder turns documents into token ids; *tokenizer.Model is one. An
// Encoder that also has a ByteTable() *tokenizer.ByteTable method gets the
// metric's byte counts into the manifest, and one with a SHA256() string
// method (the hex digest of its model file) gets that recorded.
type Encoder interface {
	// EncodeAll encodes docs (in parallel, if it likes) and returns their
	// ids in order, without BOS or EOS.
	EncodeAll(ctx context.Context, docs []string) ([][]int, error)
	// VocabSize is the number of ids; every id must be below it.
	VocabSize() int
	// BOS is the id written before every document (1 for the challenge).
	BOS() int
	// Name identifies the tokenizer in the manifest, e.g. its file name.
	Name() string
}

// Input is one source of documents.
type Input struct {
	// Name is the file to read, or, when R is set, the name that errors,
	// progress and the manifest give the input. With FormatAuto it decides
	// the format (*.jsonl, *.jsonl.gz, *.jsonl.zst are JSONL).
	Name string
	// R, when set, is read instead of opening Name (e.g. standard input).
	R io.Reader
}

// BuildOptions configures Build.
type BuildOptions struct {
	// Dir receives the shards and the manifest; it is created if needed.
	Dir string
	// Inputs are read in order; their documents form one sequence. Each may
	// be gzip- or zstd-compressed (detected from its first bytes).
	Inputs []Input
	// Format of the inputs (FormatAuto: by each input's name).
	Format Format
	// BlankLineDocs splits plain-text inputs into one document per run of
	// non-blank lines (lines that hold only whitespace separate documents);
	// otherwise each plain-text input is one document, held in memory whole.
	BlankLineDocs bool
	// Encoder tokenizes the documents (required).
	Encoder Encoder
	// ValDocs is the number of leading documents that form the validation
	// split (ChallengeValDocs for the challenge; 0: no validation split).
	// Build fails if the inputs hold fewer.
	ValDocs int
	// ShardTokens is the most tokens per shard (0: DefaultShardTokens).
	ShardTokens int
	// Overwrite replaces the shards and manifest of an earlier build in
	// Dir; without it Build refuses a directory that holds any.
	Overwrite bool
	// Workers is the number of document batches encoded at once
	// (0: GOMAXPROCS). Each batch is itself encoded in parallel.
	Workers int
	// BatchBytes is the text per batch (0: 1 MiB). Memory stays within a
	// few batches per worker, whatever the size of the inputs.
	BatchBytes int
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// TokenizerSHA256 is recorded in the manifest when the Encoder cannot
	// say it (hex digest of the tokenizer's model file).
	TokenizerSHA256 string
	// CaseOps applies the CaseOps transform (tokenizer.CaseOpsEncode) to
	// every document before encoding it, and writes the validation split's
	// byte sidecar beside its shards (see SidecarName): the original bytes
	// of every token, which val_bpb then divides by. The Encoder must be a
	// CaseOpsEncoder with the operators (a model trained with `golf
	// tokenizer train --caseops`). The validation TargetBytes come from the
	// sidecar; the training split's are not counted (0).
	CaseOps bool
}

// Manifest describes a build; Build writes it as manifest.json.
type Manifest struct {
	Format      string        `json:"format"` // "golf-shards/1"
	Tokenizer   TokenizerInfo `json:"tokenizer"`
	Inputs      []InputInfo   `json:"inputs"`
	ValDocs     int           `json:"val_docs"`     // as asked
	ShardTokens int           `json:"shard_tokens"` // most tokens per shard
	Docs        int64         `json:"docs"`         // documents in both splits
	Tokens      int64         `json:"tokens"`       // tokens in both splits, BOS included
	TextBytes   int64         `json:"text_bytes"`   // UTF-8 bytes of the documents' text
	MaxTokenID  int           `json:"max_token_id"`
	Val         SplitInfo     `json:"val"`
	Train       SplitInfo     `json:"train"`
}

// ManifestFormat is the Format of manifests this package writes.
const ManifestFormat = "golf-shards/1"

// TokenizerInfo identifies the tokenizer of a build.
type TokenizerInfo struct {
	Name      string `json:"name"`
	VocabSize int    `json:"vocab_size"`
	BOS       int    `json:"bos"`
	SHA256    string `json:"sha256,omitempty"` // of the model file, when known
	// Path is the model file's absolute path at build time, when it was
	// a file (FolderTokenizer looks there first).
	Path string `json:"path,omitempty"`
	// Transform names the text transform applied before encoding
	// ("lossless_caps_caseops_v1" for CaseOps), as the record's manifests.
	Transform string `json:"text_transform,omitempty"`
}

// InputInfo describes one input of a build.
type InputInfo struct {
	Name        string `json:"name"`
	Format      string `json:"format"`                // "text", "text-blocks" or "jsonl"
	Compression string `json:"compression,omitempty"` // "gzip" or "zstd"
	Docs        int64  `json:"docs"`
	TextBytes   int64  `json:"text_bytes"`
}

// SplitInfo describes one split: its documents and tokens, and its shards.
type SplitInfo struct {
	Docs      int64 `json:"docs"`
	Tokens    int64 `json:"tokens"`     // BOS included
	TextBytes int64 `json:"text_bytes"` // UTF-8 bytes of the documents' text
	// TargetBytes is the val_bpb denominator of the whole split: the bytes
	// of every token of the split's stream but the first, by the metric's
	// rule (tokenizer.ByteTable.CountTargets over the concatenated shards).
	// Zero when the Encoder has no byte table.
	TargetBytes int64       `json:"target_bytes"`
	Shards      []ShardInfo `json:"shards"`
	// ByteShards are the byte sidecar files, one per shard (CaseOps
	// validation only).
	ByteShards []ShardInfo `json:"byte_shards,omitempty"`
}

// ShardInfo describes one shard file of a build.
type ShardInfo struct {
	File   string `json:"file"`   // base name, in the manifest's directory
	Tokens int64  `json:"tokens"` // tokens in the file
	Docs   int64  `json:"docs"`   // documents that start in the file (its BOS tokens)
	SHA256 string `json:"sha256"` // of the whole file
}

// ReadManifest reads a manifest.json written by Build.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	var m Manifest
	if err := strictjson.Decode(b, &m); err != nil {
		return nil, fmt.Errorf("data: manifest %s: %w", path, err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("data: manifest %s: format %q, want %q", path, m.Format, ManifestFormat)
	}
	return &m, nil
}

// docBatch is a run of consecutive documents on their way through the
// build: read, then encoded by a worker, then written in order.
type docBatch struct {
	texts    []string
	input    []int   // index in Inputs of each document
	line     []int64 // line each document starts on (0: whole input)
	rawBytes int64   // input bytes consumed since the previous batch
	first    int64   // index in the build of the batch's first document
	ids      [][]int
	counts   [][]int // CaseOps validation documents: original bytes per token
	err      error
	done     chan struct{} // closed when ids/err are set
}

// Build tokenizes documents into shards in opt.Dir: the first opt.ValDocs
// documents as fineweb_val_000000.bin, ..., the rest as
// fineweb_train_000000.bin, ..., each document as BOS then its ids, no EOS,
// at most opt.ShardTokens tokens per shard (a document may straddle shards;
// the two splits never share one), then manifest.json. This is the
// challenge's export (export_shards in download_hf_docs_and_tokenize.py).
//
// The inputs are streamed: one goroutine reads documents into batches,
// opt.Workers batches are encoded at once, and the batches are written in
// order, so memory is bounded by the batch size, not the corpus.
//
// Nothing appears under a final name until every document is written: the
// shards are built in a temporary directory inside opt.Dir and renamed into
// place at the end, then the manifest is written. If the build fails or ctx
// is cancelled, the temporary directory and everything in it is removed and
// opt.Dir is as before (an earlier build in it is untouched). With
// opt.Overwrite, the earlier build's manifest is removed first, then its
// shards are replaced; a manifest present means the shards beside it are
// complete. Only a process killed outright leaves something behind: a
// hidden .golf-build-* directory, never a file under a shard's name; the
// next Build into opt.Dir removes it.
//
// Build holds opt.Dir's lock (internal/outlock) while it runs: a second
// build into the same directory fails at once, naming the first.
func Build(ctx context.Context, opt BuildOptions) (*Manifest, error) {
	if err := checkBuildOptions(&opt); err != nil {
		return nil, err
	}
	created, err := makeDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	// One writer at a time; holding the lock, what a killed build left
	// (its hidden temporary folders) can be removed.
	lock, err := outlock.Acquire(opt.Dir, commandLine())
	if err != nil {
		return nil, fmt.Errorf("data: build: %w", err)
	}
	defer lock.Release()
	for _, name := range staleBuilds(opt.Dir) {
		if err := os.RemoveAll(filepath.Join(opt.Dir, name)); err != nil {
			return nil, fmt.Errorf("data: build: remove a killed build's %s: %w", name, err)
		}
	}
	if !opt.Overwrite {
		if old := earlierBuild(opt.Dir); len(old) > 0 {
			return nil, fmt.Errorf("data: build: %s already holds a build (%s); overwrite it (--force) or choose another directory", opt.Dir, old[0])
		}
	}
	tmp, err := os.MkdirTemp(opt.Dir, buildTempPattern)
	if err != nil {
		return nil, fmt.Errorf("data: build: %w", err)
	}
	m, err := build(ctx, opt, tmp)
	if err == nil {
		err = publish(opt, tmp, m)
	}
	os.RemoveAll(tmp)
	if err != nil {
		if created {
			lock.Release()
			os.Remove(opt.Dir) // only if still empty
		}
		return nil, err
	}
	return m, nil
}

// commandLine names this process for lock files: its command line.
func commandLine() string { return strings.Join(os.Args, " ") }

func checkBuildOptions(opt *BuildOptions) error {
	switch {
	case opt.Dir == "":
		return fmt.Errorf("data: build: no output directory")
	case opt.Encoder == nil:
		return fmt.Errorf("data: build: no encoder")
	case len(opt.Inputs) == 0:
		return fmt.Errorf("data: build: no inputs")
	case opt.ValDocs < 0:
		return fmt.Errorf("data: build: %d validation documents", opt.ValDocs)
	case opt.ShardTokens < 0 || opt.ShardTokens > MaxShardTokens:
		return fmt.Errorf("data: build: shard size %d tokens outside [1, %d]", opt.ShardTokens, MaxShardTokens)
	case opt.Workers < 0 || opt.BatchBytes < 0:
		return fmt.Errorf("data: build: negative workers or batch size")
	}
	if v := opt.Encoder.VocabSize(); v < 1 || v > 1<<16 {
		return fmt.Errorf("data: build: tokenizer %s has %d ids; shards store uint16 ids, at most 65536", opt.Encoder.Name(), v)
	}
	if b := opt.Encoder.BOS(); b < 0 || b >= opt.Encoder.VocabSize() {
		return fmt.Errorf("data: build: tokenizer %s has no BOS id (got %d)", opt.Encoder.Name(), b)
	}
	if opt.CaseOps {
		if c, ok := opt.Encoder.(CaseOpsEncoder); !ok || !c.HasCaseOps() {
			return fmt.Errorf("data: build: tokenizer %s has no CaseOps operators (U+E001..U+E004 as user-defined symbols); train one with `golf tokenizer train --caseops`", opt.Encoder.Name())
		}
	}
	for i, in := range opt.Inputs {
		if in.Name == "" && in.R == nil {
			return fmt.Errorf("data: build: input %d has neither a name nor a reader", i)
		}
	}
	if opt.ShardTokens == 0 {
		opt.ShardTokens = DefaultShardTokens
	}
	if opt.Workers == 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.BatchBytes == 0 {
		opt.BatchBytes = 1 << 20
	}
	return nil
}

// makeDir creates dir if needed and reports whether it did.
func makeDir(dir string) (bool, error) {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return false, fmt.Errorf("data: build: %s is not a directory", dir)
		}
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("data: build: %w", err)
	}
	return true, nil
}

// earlierBuild lists the shards and manifest a previous build left in dir.
func earlierBuild(dir string) []string {
	var old []string
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
		old = append(old, ManifestName)
	}
	for _, split := range []Split{Val, Train} {
		files, _ := splitFiles(dir, split)
		for _, f := range files {
			old = append(old, filepath.Base(f))
		}
	}
	sides, _ := ValidationByteFiles(dir)
	for _, f := range sides {
		old = append(old, filepath.Base(f))
	}
	return old
}

// build runs the pipeline, writing the shards into tmp.
func build(ctx context.Context, opt BuildOptions, tmp string) (*Manifest, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	enc := opt.Encoder
	m := &Manifest{
		Format:      ManifestFormat,
		Tokenizer:   TokenizerInfo{Name: filepath.Base(enc.Name()), VocabSize: enc.VocabSize(), BOS: enc.BOS(), SHA256: opt.TokenizerSHA256},
		ValDocs:     opt.ValDocs,
		ShardTokens: opt.ShardTokens,
		Inputs:      make([]InputInfo, len(opt.Inputs)),
	}
	if h, ok := enc.(interface{ SHA256() string }); ok {
		m.Tokenizer.SHA256 = h.SHA256()
	}
	if st, err := os.Stat(enc.Name()); err == nil && st.Mode().IsRegular() {
		m.Tokenizer.Path, _ = filepath.Abs(enc.Name())
	}
	var bt *tokenizer.ByteTable
	if b, ok := enc.(interface{ ByteTable() *tokenizer.ByteTable }); ok {
		bt = b.ByteTable()
	}
	var total int64
	for _, in := range opt.Inputs {
		if in.R != nil {
			total = 0
			break
		}
		if st, err := os.Stat(in.Name); err == nil {
			total += st.Size()
		}
	}
	meter := progress.New(opt.Progress, "data build", "bytes", total)

	queue := make(chan *docBatch, opt.Workers)
	go readBatches(ctx, opt, m.Inputs, queue)

	splits := [2]*splitWriter{
		{split: Val, dir: tmp, shardTokens: int64(opt.ShardTokens), bytes: bt, prev: -1},
		{split: Train, dir: tmp, shardTokens: int64(opt.ShardTokens), bytes: bt, prev: -1},
	}
	if opt.CaseOps {
		m.Tokenizer.Transform = tokenizer.CaseOpsTransformName
		splits[0].sidecar, splits[0].bytes, splits[1].bytes = true, nil, nil
	}
	defer func() {
		for _, s := range splits {
			s.abort()
		}
	}()
	bos, vocab := enc.BOS(), enc.VocabSize()
	maxID := bos
	var docs int64
	var toks []uint16
	for {
		var b *docBatch
		var ok bool
		select {
		case b, ok = <-queue:
		case <-ctx.Done():
			return nil, fmt.Errorf("data: build: %w", context.Cause(ctx))
		}
		if !ok {
			break
		}
		select {
		case <-b.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("data: build: %w", context.Cause(ctx))
		}
		if b.err != nil {
			return nil, fmt.Errorf("data: build: %w", b.err)
		}
		for i, ids := range b.ids {
			toks = append(toks[:0], uint16(bos))
			for _, id := range ids {
				if id < 0 || id >= vocab {
					return nil, fmt.Errorf("data: build: %s: tokenizer %s returned id %d outside its vocabulary of %d ids",
						docPlace(opt.Inputs[b.input[i]], b.line[i], docs), m.Tokenizer.Name, id, vocab)
				}
				maxID = max(maxID, id)
				toks = append(toks, uint16(id))
			}
			s := splits[1]
			if docs < int64(opt.ValDocs) {
				s = splits[0]
			}
			in := &m.Inputs[b.input[i]]
			in.Docs++
			in.TextBytes += int64(len(b.texts[i]))
			var counts []int
			if b.counts != nil {
				counts = b.counts[i]
			}
			if err := s.writeDoc(toks, counts, int64(len(b.texts[i])), docPlace(opt.Inputs[b.input[i]], b.line[i], docs)); err != nil {
				return nil, fmt.Errorf("data: build: %w", err)
			}
			docs++
		}
		meter.Add(b.rawBytes)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("data: build: %w", context.Cause(ctx))
		}
	}
	if err := ctx.Err(); err != nil { // the reader may have stopped early
		return nil, fmt.Errorf("data: build: %w", context.Cause(ctx))
	}
	for _, s := range splits {
		if err := s.finish(); err != nil {
			return nil, fmt.Errorf("data: build: %w", err)
		}
	}
	meter.Done()
	switch {
	case docs == 0:
		return nil, fmt.Errorf("data: build: the inputs hold no documents")
	case splits[0].info.Tokens+splits[1].info.Tokens == docs:
		// Only the BOS of each: shards a model cannot learn from.
		return nil, fmt.Errorf("data: build: the inputs hold %d document(s), all empty: no text to tokenize", docs)
	case docs < int64(opt.ValDocs):
		return nil, fmt.Errorf("data: build: the inputs hold %d documents, fewer than the %d validation documents asked for", docs, opt.ValDocs)
	}
	m.Val, m.Train = splits[0].info, splits[1].info
	m.Docs = m.Val.Docs + m.Train.Docs
	m.Tokens = m.Val.Tokens + m.Train.Tokens
	m.TextBytes = m.Val.TextBytes + m.Train.TextBytes
	m.MaxTokenID = maxID
	return m, nil
}

// docPlace names a document in errors: input, line, and its index.
func docPlace(in Input, line, index int64) string {
	if line > 0 {
		return fmt.Sprintf("%s: line %d (document %d)", in.Name, line, index)
	}
	return fmt.Sprintf("%s (document %d)", in.Name, index)
}

// readBatches reads every input's documents into batches, starts their
// encoding (at most opt.Workers at once) and queues them in order. It stops
// at the first error (queued as a failed batch) or when ctx is done, and
// closes queue. It describes each input in infos[i] (name, format,
// compression) before queueing any of its documents.
func readBatches(ctx context.Context, opt BuildOptions, infos []InputInfo, queue chan<- *docBatch) {
	defer close(queue)
	jsonl := make([]bool, len(opt.Inputs)) // by input: documents are JSONL lines to decode
	for i, in := range opt.Inputs {
		jsonl[i] = formatFor(opt.Format, in.Name) == FormatJSONL
	}
	sem := make(chan struct{}, opt.Workers)
	send := func(b *docBatch) bool {
		select {
		case queue <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) {
		b := &docBatch{err: err, done: make(chan struct{})}
		close(b.done)
		send(b)
	}
	emit := func(b *docBatch) bool {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		b.done = make(chan struct{})
		go func() {
			defer func() { <-sem }()
			defer close(b.done)
			for j, raw := range b.texts {
				if !jsonl[b.input[j]] {
					continue
				}
				if b.texts[j], b.err = decodeJSONL(opt.Inputs[b.input[j]].Name, b.line[j], raw); b.err != nil {
					return
				}
			}
			if opt.CaseOps {
				b.err = caseOpsEncode(b, opt.Encoder.(CaseOpsEncoder), int64(opt.ValDocs), func(texts []string) ([][]int, error) {
					return opt.Encoder.EncodeAll(ctx, texts)
				})
				return
			}
			b.ids, b.err = opt.Encoder.EncodeAll(ctx, b.texts)
			if b.err == nil && len(b.ids) != len(b.texts) {
				b.err = fmt.Errorf("tokenizer %s returned %d encodings for %d documents", opt.Encoder.Name(), len(b.ids), len(b.texts))
			}
		}()
		return send(b)
	}
	b := &docBatch{}
	var batchText int
	var queued int64 // documents in the batches before b
	for i, in := range opt.Inputs {
		counter, dr, info, closeFn, err := openInput(in, opt)
		if err != nil {
			fail(err)
			return
		}
		// Build counts documents and text as it writes them; the reader
		// only describes the input, before any of its documents is queued.
		infos[i].Name, infos[i].Format, infos[i].Compression = info.Name, info.Format, info.Compression
		var counted int64
		for {
			if ctx.Err() != nil {
				closeFn()
				return
			}
			text, line, err := dr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				closeFn()
				fail(err)
				return
			}
			b.texts = append(b.texts, text)
			b.input = append(b.input, i)
			b.line = append(b.line, line)
			batchText += len(text)
			if batchText >= opt.BatchBytes {
				b.rawBytes = counter.n - counted
				counted = counter.n
				queued += int64(len(b.texts))
				if !emit(b) {
					closeFn()
					return
				}
				b, batchText = &docBatch{first: queued}, 0
			}
		}
		closeFn()
		b.rawBytes += counter.n - counted
	}
	if len(b.texts) > 0 || b.rawBytes > 0 {
		emit(b)
	}
}

// countingReader counts the bytes read through it (for progress).
type countingReader struct {
	r io.Reader
	n int64
}

// Read reads from the underlying reader and counts what it got.
func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openInput opens one input: the file or reader, decompression, and the
// document splitter for its format.
func openInput(in Input, opt BuildOptions) (*countingReader, *docReader, InputInfo, func(), error) {
	info := InputInfo{Name: in.Name}
	var r io.Reader = in.R
	closeFile := func() {}
	if r == nil {
		f, err := os.Open(in.Name)
		if err != nil {
			return nil, nil, info, nil, fmt.Errorf("input: %w", err)
		}
		if st, err := f.Stat(); err == nil && st.IsDir() {
			f.Close()
			return nil, nil, info, nil, fmt.Errorf("input %s is a directory", in.Name)
		}
		r, closeFile = f, func() { f.Close() }
	}
	counter := &countingReader{r: r}
	dr, compression, closeDec, err := decompress(counter)
	if err != nil {
		closeFile()
		return nil, nil, info, nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	info.Compression = compression
	format := formatFor(opt.Format, in.Name)
	switch {
	case format == FormatJSONL:
		info.Format = "jsonl"
	case opt.BlankLineDocs:
		info.Format = "text-blocks"
	default:
		info.Format = "text"
	}
	return counter, newDocReader(in.Name, dr, format, opt.BlankLineDocs), info, func() { closeDec(); closeFile() }, nil
}

// splitWriter writes one split's token stream into shards of at most
// shardTokens tokens, named in order, in dir.
type splitWriter struct {
	split       Split
	dir         string
	shardTokens int64
	bytes       *tokenizer.ByteTable // nil: no target bytes (unless sidecar)
	prev        int                  // last token of the stream so far (-1: none)
	sidecar     bool                 // write the byte sidecar; target bytes come from it

	cur      *ShardWriter
	curBytes *ShardWriter // the current shard's sidecar
	vals     []uint16
	info     SplitInfo
}

// writeDoc appends one document's tokens (BOS first) to the stream, and
// with a sidecar the original bytes of each (counts, without BOS's).
func (s *splitWriter) writeDoc(toks []uint16, counts []int, textBytes int64, place string) error {
	s.info.Docs++
	s.info.TextBytes += textBytes
	s.info.Tokens += int64(len(toks))
	var vals []uint16
	if s.sidecar {
		if len(counts) != len(toks)-1 {
			return fmt.Errorf("%s: %d byte counts for %d tokens", place, len(counts), len(toks)-1)
		}
		var err error
		if s.vals, err = sidecarValues(s.vals, counts, place); err != nil {
			return err
		}
		vals = s.vals
		for i, v := range vals {
			if s.prev >= 0 || i > 0 {
				s.info.TargetBytes += int64(v)
			}
		}
		s.prev = int(toks[len(toks)-1])
	}
	if s.bytes != nil {
		for _, t := range toks {
			if s.prev >= 0 {
				s.info.TargetBytes += int64(s.bytes.TokenBytes(s.prev, int(t)))
			}
			s.prev = int(t)
		}
	}
	first := true
	for len(toks) > 0 {
		if s.cur == nil {
			w, err := CreateShard(filepath.Join(s.dir, ShardName(s.split, len(s.info.Shards))))
			if err != nil {
				return err
			}
			s.cur = w
			s.info.Shards = append(s.info.Shards, ShardInfo{File: filepath.Base(w.Path())})
			if s.sidecar {
				if s.curBytes, err = CreateShard(filepath.Join(s.dir, SidecarName(len(s.info.Shards)-1))); err != nil {
					return err
				}
				s.info.ByteShards = append(s.info.ByteShards, ShardInfo{File: filepath.Base(s.curBytes.Path())})
			}
		}
		n := min(int64(len(toks)), s.shardTokens-s.cur.Len())
		if err := s.cur.Write(toks[:n]); err != nil {
			return err
		}
		if s.sidecar {
			if err := s.curBytes.Write(vals[:n]); err != nil {
				return err
			}
			s.info.ByteShards[len(s.info.ByteShards)-1].Tokens += n
			vals = vals[n:]
		}
		sh := &s.info.Shards[len(s.info.Shards)-1]
		sh.Tokens += n
		if first {
			sh.Docs++
			first = false
		}
		toks = toks[n:]
		if s.cur.Len() == s.shardTokens {
			if err := s.closeShard(); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeShard publishes the current shard (in the temporary directory) and
// records its digest.
func (s *splitWriter) closeShard() error {
	w, wb := s.cur, s.curBytes
	s.cur, s.curBytes = nil, nil
	if err := w.Close(); err != nil {
		if wb != nil {
			wb.Abort()
		}
		return err
	}
	sum, err := fileSHA256(w.Path())
	if err != nil {
		return err
	}
	s.info.Shards[len(s.info.Shards)-1].SHA256 = sum
	if wb != nil {
		if err := wb.Close(); err != nil {
			return err
		}
		if sum, err = fileSHA256(wb.Path()); err != nil {
			return err
		}
		s.info.ByteShards[len(s.info.ByteShards)-1].SHA256 = sum
	}
	return nil
}

func (s *splitWriter) finish() error {
	if s.cur != nil {
		return s.closeShard()
	}
	return nil
}

func (s *splitWriter) abort() {
	if s.cur != nil {
		s.cur.Abort()
		s.cur = nil
	}
	if s.curBytes != nil {
		s.curBytes.Abort()
		s.curBytes = nil
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("data: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// publish moves a finished build from tmp into opt.Dir and writes the
// manifest last. On failure it removes what it had moved.
func publish(opt BuildOptions, tmp string, m *Manifest) error {
	dir := opt.Dir
	if !opt.Overwrite {
		if old := earlierBuild(dir); len(old) > 0 {
			return fmt.Errorf("data: build: %s gained a build (%s) while this one ran", dir, old[0])
		}
	}
	if err := os.Remove(filepath.Join(dir, ManifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data: build: remove the old manifest: %w", err)
	}
	old := earlierBuild(dir)
	var moved []string
	undo := func() {
		for _, p := range moved {
			os.Remove(p)
		}
	}
	var names []string
	for _, sp := range []*SplitInfo{&m.Val, &m.Train} {
		for _, sh := range slices.Concat(sp.Shards, sp.ByteShards) {
			names = append(names, sh.File)
		}
	}
	for _, name := range names {
		dst := filepath.Join(dir, name)
		if err := os.Rename(filepath.Join(tmp, name), dst); err != nil {
			undo()
			return fmt.Errorf("data: build: move %s into place: %w", name, err)
		}
		moved = append(moved, dst)
	}
	for _, name := range old { // shards of the earlier build this one did not replace
		if !slices.Contains(names, name) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				undo()
				return fmt.Errorf("data: build: remove the earlier build's %s: %w", name, err)
			}
		}
	}
	if err := report.SaveJSON(filepath.Join(dir, ManifestName), m); err != nil {
		undo()
		return fmt.Errorf("data: build: %w", err)
	}
	return nil
}
