package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/data/corpus"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/tokenizer"
)

func init() {
	register(&command{
		name:    "data build",
		summary: "tokenize text or JSONL documents into the challenge's shard files and a manifest",
		run:     runDataBuild,
	})
	register(&command{
		name:    "data inspect",
		summary: "count tokens, documents, max id and target bytes of shard files",
		run:     runDataInspect,
	})
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runDataBuild(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "data build", "--out DIR [INPUT...]\n\n"+
		"INPUTs are plain-text files (one document each, or one per blank-line-separated\n"+
		"block with --blank-line-docs) or JSONL files with a \"text\" field (--jsonl, or\n"+
		"by the .jsonl extension); gzip and zstd inputs are decompressed. \"-\" reads\n"+
		"standard input. With no INPUT the embedded corpus (233 State of the Union\n"+
		"addresses, the first 24 for validation) is built.\n")
	modelPath := fs.String("model", "", "SentencePiece BPE .model file (default: the embedded sp1024)")
	out := fs.String("out", "", "output directory (required)")
	valDocs := fs.Int("val-docs", data.ChallengeValDocs, "leading documents that form the validation split; 24 when building the embedded corpus")
	shardTokens := fs.Int("shard-tokens", data.DefaultShardTokens, "most tokens per shard")
	jsonl := fs.Bool("jsonl", false, `every input is JSONL (documents in the "text" field)`)
	blankLineDocs := fs.Bool("blank-line-docs", false, "plain-text inputs hold one document per run of non-blank lines")
	force := fs.Bool("force", false, "replace the shards and manifest of an earlier build in --out")
	workers := fs.Int("workers", 0, "document batches encoded at once (default: GOMAXPROCS)")
	outf := addOutputFlags(fs)
	caseops := fs.Bool("caseops", false, "apply the CaseOps transform before encoding and write the validation byte sidecar (fineweb_val_bytes_*.bin); needs a CaseOps --model")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return fmt.Errorf("%w: --out DIR is required", errUsage)
	case *valDocs < 0:
		return fmt.Errorf("%w: --val-docs %d is negative", errUsage, *valDocs)
	case *shardTokens < 1 || *shardTokens > data.MaxShardTokens:
		return fmt.Errorf("%w: --shard-tokens %d outside [1, %d]", errUsage, *shardTokens, data.MaxShardTokens)
	case *workers < 0:
		return fmt.Errorf("%w: --workers %d is negative", errUsage, *workers)
	}
	m, err := loadTokenizer(*modelPath)
	if err != nil {
		return err
	}
	opt := data.BuildOptions{
		Dir: *out, Encoder: m, ValDocs: *valDocs, ShardTokens: *shardTokens,
		BlankLineDocs: *blankLineDocs, Overwrite: *force, Workers: *workers, CaseOps: *caseops,
	}
	if *jsonl {
		opt.Format = data.FormatJSONL
	}
	opt.Progress = outf.progress(env)
	if *modelPath != "" {
		if opt.TokenizerSHA256, err = fileDigest(*modelPath); err != nil {
			return err
		}
	}
	stdinUsed := false
	for _, arg := range fs.Args() {
		if arg == "-" {
			if stdinUsed {
				return fmt.Errorf("%w: standard input (-) given twice", errUsage)
			}
			stdinUsed = true
			opt.Inputs = append(opt.Inputs, data.Input{Name: "-", R: env.stdin})
			continue
		}
		opt.Inputs = append(opt.Inputs, data.Input{Name: arg})
	}
	if len(opt.Inputs) == 0 {
		raw, err := corpus.JSONL()
		if err != nil {
			return err
		}
		opt.Inputs = []data.Input{{Name: corpus.Name + ".jsonl", R: bytes.NewReader(raw)}}
		opt.Format = data.FormatJSONL
		if !flagSet(fs, "val-docs") {
			opt.ValDocs = corpus.ValDocs
		}
	}
	man, err := data.Build(ctx, opt)
	if err != nil {
		return err
	}
	return outf.emit(env, man, func(w io.Writer) error { return printManifest(w, *out, man) })
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// fileDigest returns the hex SHA-256 of a file.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func printManifest(w io.Writer, dir string, m *data.Manifest) error {
	t := report.NewTable(fmt.Sprintf("data build: %s (tokenizer %s, vocabulary %d)", dir, m.Tokenizer.Name, m.Tokenizer.VocabSize),
		"split", "docs", "tokens", "shards", "text bytes", "target bytes", "bytes/token")
	// bytes/token is per target token: each split's tokens but its first.
	row := func(name string, docs, tokens int64, shards int, text, target, targets int64) {
		perToken := "-"
		if targets > 0 {
			perToken = fmt.Sprintf("%.4f", float64(target)/float64(targets))
		}
		t.Add(name, docs, tokens, shards, text, target, perToken)
	}
	valTargets, trainTargets := max(m.Val.Tokens-1, 0), max(m.Train.Tokens-1, 0)
	row("val", m.Val.Docs, m.Val.Tokens, len(m.Val.Shards), m.Val.TextBytes, m.Val.TargetBytes, valTargets)
	row("train", m.Train.Docs, m.Train.Tokens, len(m.Train.Shards), m.Train.TextBytes, m.Train.TargetBytes, trainTargets)
	row("total", m.Docs, m.Tokens, len(m.Val.Shards)+len(m.Train.Shards), m.TextBytes, m.Val.TargetBytes+m.Train.TargetBytes, valTargets+trainTargets)
	return t.Print(w)
}

// inspectReport is the JSON output of golf data inspect.
type inspectReport struct {
	Tokenizer string            `json:"tokenizer"`
	VocabSize int               `json:"vocab_size"`
	Shards    []data.ShardStats `json:"shards"`
	Total     data.ShardStats   `json:"total"`
	Documents []shownDoc        `json:"documents,omitempty"` // with --show
}

// shownDoc is one document --show decodes.
type shownDoc struct {
	Shard string `json:"shard"`
	Index int    `json:"index"` // 0-based, among the documents starting in the shard
	// Continued marks the tail of a document that began in the shard before.
	Continued bool   `json:"continued,omitempty"`
	Tokens    int    `json:"tokens"` // BOS included
	Text      string `json:"text"`
}

// firstDocs decodes the first n documents of a shard: runs of tokens that
// start with BOS (the tail of a document begun in an earlier shard first,
// marked continued).
func firstDocs(path string, tok *tokenizer.Model, n int) ([]shownDoc, error) {
	toks, err := data.ReadShard(path)
	if err != nil {
		return nil, err
	}
	bos := uint16(tok.BOS())
	var docs []shownDoc
	for start := 0; start < len(toks) && len(docs) < n; {
		end := start + 1
		for end < len(toks) && toks[end] != bos {
			end++
		}
		ids := make([]int, 0, end-start)
		for _, t := range toks[start:end] {
			if t != bos {
				ids = append(ids, int(t))
			}
		}
		d := shownDoc{Shard: filepath.Base(path), Index: len(docs), Continued: toks[start] != bos, Tokens: end - start, Text: tok.Decode(ids)}
		if d.Continued {
			d.Index = -1
		}
		docs = append(docs, d)
		start = end
	}
	return docs, nil
}

func runDataInspect(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "data inspect", "SHARD|DIR...\n\n"+
		"A DIR stands for its fineweb_val_* then fineweb_train_* shards. bytes counts each\n"+
		"shard's target tokens (all but its first) by the val_bpb byte rule: from the shard's\n"+
		"byte sidecar (fineweb_val_bytes_*.bin, CaseOps data) when it has one, else from the\n"+
		"tokenizer's byte table.\n")
	modelPath := fs.String("model", "", "SentencePiece BPE .model file (default: the one the shards' manifest.json names, else the embedded sp1024)")
	show := fs.Int("show", 0, "also print the first N documents of each shard, decoded")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no shard files given", errUsage)
	}
	if *show < 0 {
		return fmt.Errorf("%w: --show %d is negative", errUsage, *show)
	}
	m, err := inspectTokenizer(*modelPath, fs.Args())
	if err != nil {
		return err
	}
	var files []string
	for _, arg := range fs.Args() {
		st, err := os.Stat(arg)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		val, errVal := data.ValFiles(arg)
		train, errTrain := data.TrainFiles(arg)
		if errVal != nil && errTrain != nil {
			return fmt.Errorf("%s holds no fineweb_val_*.bin or fineweb_train_*.bin shards", arg)
		}
		files = append(append(files, val...), train...)
	}
	rep := inspectReport{Tokenizer: filepath.Base(m.Name()), VocabSize: m.VocabSize(), Total: data.ShardStats{File: "total", MaxID: -1}}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		var st data.ShardStats
		if side := data.SidecarFor(f); side != "" && fileExists(side) {
			st, err = data.InspectShardBytes(f, side, m)
		} else {
			st, err = data.InspectShard(f, m)
		}
		if err != nil {
			return err
		}
		rep.Shards = append(rep.Shards, st)
		rep.Total.Add(st)
		if *show > 0 {
			docs, err := firstDocs(f, m, *show)
			if err != nil {
				return err
			}
			rep.Documents = append(rep.Documents, docs...)
		}
	}
	sources := map[string]bool{}
	for _, st := range rep.Shards {
		sources[st.ByteSource] = true
	}
	rep.Total.ByteSource = "table"
	if sources["sidecar"] {
		rep.Total.ByteSource = "sidecar"
		if sources["table"] {
			rep.Total.ByteSource = "mixed"
		}
	}
	return outf.emit(env, rep, func(w io.Writer) error { return printInspect(w, rep, sources["sidecar"]) })
}

// printInspect prints golf data inspect's table and --show's documents.
func printInspect(w io.Writer, rep inspectReport, sidecar bool) error {
	defer printDocs(w, rep.Documents)
	t := report.NewTable(fmt.Sprintf("data inspect (tokenizer %s, vocabulary %d)", rep.Tokenizer, rep.VocabSize),
		"shard", "tokens", "docs", "max id", "bytes", "bytes/token", "bytes from")
	// bytes/token is per target: each shard's tokens but its first.
	var targets int64
	row := func(st data.ShardStats, targets int64) {
		perToken := "-"
		if targets > 0 {
			perToken = fmt.Sprintf("%.4f", float64(st.Bytes)/float64(targets))
		}
		t.Add(st.File, st.Tokens, st.Docs, st.MaxID, st.Bytes, perToken, st.ByteSource)
	}
	for _, st := range rep.Shards {
		row(st, max(st.Tokens-1, 0))
		targets += max(st.Tokens-1, 0)
	}
	row(rep.Total, targets)
	if err := t.Print(w); err != nil {
		return err
	}
	if sidecar {
		fmt.Fprintln(w, "bytes of shards with a byte sidecar (fineweb_val_bytes_*.bin) come from it: the original text's bytes (CaseOps)")
	}
	return nil
}

// printDocs prints --show's documents after the table.
func printDocs(w io.Writer, docs []shownDoc) {
	for _, d := range docs {
		head := fmt.Sprintf("%s, document %d (%d tokens)", d.Shard, d.Index, d.Tokens)
		if d.Continued {
			head = fmt.Sprintf("%s, the end of a document begun in an earlier shard (%d tokens)", d.Shard, d.Tokens)
		}
		fmt.Fprintf(w, "\n--- %s\n%s\n", head, d.Text)
	}
}

// inspectTokenizer picks data inspect's tokenizer: --model's; else the one
// the shards' folder names (data.FolderTokenizer), which must be the same
// for every folder given; else the embedded sp1024.
func inspectTokenizer(path string, args []string) (*tokenizer.Model, error) {
	if path != "" {
		return tokenizer.Load(path)
	}
	var found *tokenizer.Model
	for _, arg := range args {
		dir := arg
		if st, err := os.Stat(arg); err == nil && !st.IsDir() {
			dir = filepath.Dir(arg)
		}
		tok, _, err := data.FolderTokenizer(dir)
		if err != nil {
			return nil, err
		}
		if tok == nil {
			continue
		}
		if found != nil && found.SHA256() != tok.SHA256() {
			return nil, fmt.Errorf("%w: the shards name two tokenizers (%s and %s): inspect them apart, or pass --model", errUsage, found.Name(), tok.Name())
		}
		found = tok
	}
	if found == nil {
		found = tokenizer.Default()
	}
	return found, nil
}
