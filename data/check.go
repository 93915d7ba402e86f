package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/paramgolf/golf/internal/outlock"
	"github.com/paramgolf/golf/internal/strictjson"
	"github.com/paramgolf/golf/tokenizer"
)

// DirCheck is what CheckDir found in a shard folder.
type DirCheck struct {
	Dir        string
	Manifest   *Manifest // nil when the folder has no manifest.json
	Train, Val []string  // the shard files, sorted
	// Note is one line for a log: what was checked, and how.
	Note string
}

// CheckDir checks a shard folder before a run or an evaluation reads it,
// so that a folder a killed or concurrent build left half-replaced is
// refused instead of silently used:
//
//   - a folder that a golf data build is writing now (it holds the
//     folder's lock) is refused;
//   - with golf's manifest.json, the shards must be exactly the ones it
//     lists (no missing and no extra fineweb_* files), each with the
//     header token count and file size it records, and, when tok is given
//     and the manifest records a digest, built with that tokenizer (same
//     SHA-256 and vocabulary);
//   - without one (the challenge's downloaded folders), every shard's
//     header and size are checked, and Note says no manifest was found.
//
// File contents are not hashed (that would read every byte); the header
// checks catch what an interrupted build leaves.
func CheckDir(dir string, tok *tokenizer.Model) (*DirCheck, error) {
	if h, held := outlock.Held(dir); held {
		return nil, fmt.Errorf("data: %s is being written by %v: wait for it to finish", dir, h)
	}
	c := &DirCheck{Dir: dir}
	var err error
	if c.Train, err = TrainFiles(dir); err != nil {
		return nil, err
	}
	if c.Val, err = ValFiles(dir); err != nil {
		return nil, err
	}
	stale := staleBuilds(dir)
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		for _, f := range append(slices.Clone(c.Val), c.Train...) {
			if _, err := ShardTokenCount(f); err != nil {
				return nil, fmt.Errorf("data: %w", err)
			}
		}
		c.Note = fmt.Sprintf("no %s in %s: checked the headers and sizes of its %d shards only", ManifestName, dir, len(c.Val)+len(c.Train))
	case err != nil:
		return nil, err
	default:
		if err := checkAgainstManifest(dir, m, c, tok); err != nil {
			return nil, err
		}
		c.Manifest = m
		c.Note = fmt.Sprintf("%s checked: %d shards, %d tokens, tokenizer %s", ManifestName, len(c.Val)+len(c.Train), m.Tokens, m.Tokenizer.Name)
	}
	if len(stale) > 0 {
		c.Note += fmt.Sprintf("; %d hidden folder(s) of a killed build (%s), removed by the next golf data build into %s", len(stale), stale[0], dir)
	}
	return c, nil
}

func checkAgainstManifest(dir string, m *Manifest, c *DirCheck, tok *tokenizer.Model) error {
	where := filepath.Join(dir, ManifestName)
	for _, sp := range []struct {
		name   string
		info   SplitInfo
		actual []string
	}{{"validation", m.Val, c.Val}, {"training", m.Train, c.Train}} {
		listed := map[string]ShardInfo{}
		for _, sh := range sp.info.Shards {
			listed[sh.File] = sh
		}
		for _, f := range sp.actual {
			if _, ok := listed[filepath.Base(f)]; !ok {
				return fmt.Errorf("data: %s holds %s, which its %s does not list: shards of two builds are mixed (a killed or concurrent build?); rebuild with golf data build --force", dir, filepath.Base(f), ManifestName)
			}
		}
		if len(sp.actual) != len(sp.info.Shards) {
			for _, sh := range sp.info.Shards {
				if _, err := os.Stat(filepath.Join(dir, sh.File)); err != nil {
					return fmt.Errorf("data: %s lists %s shard %s, which is missing from %s", where, sp.name, sh.File, dir)
				}
			}
		}
		for _, f := range sp.actual {
			sh := listed[filepath.Base(f)]
			n, err := ShardTokenCount(f)
			if err != nil {
				return fmt.Errorf("data: %w", err)
			}
			if n != sh.Tokens {
				return fmt.Errorf("data: shard %s holds %d tokens, its %s says %d (%d bytes): not the shard that build wrote", f, n, where, sh.Tokens, ShardFileSize(sh.Tokens))
			}
		}
	}
	if tok == nil {
		return nil
	}
	if m.Tokenizer.VocabSize != 0 && m.Tokenizer.VocabSize != tok.VocabSize() {
		return fmt.Errorf("data: %s says its shards were built with tokenizer %s of %d ids, not %s of %d ids: pass the shards' tokenizer", where, m.Tokenizer.Name, m.Tokenizer.VocabSize, tok.Name(), tok.VocabSize())
	}
	if m.Tokenizer.SHA256 != "" && tok.SHA256() != m.Tokenizer.SHA256 {
		return fmt.Errorf("data: %s says its shards were built with tokenizer %s (sha256 %.12s), not %s (sha256 %.12s): pass the shards' tokenizer", where, m.Tokenizer.Name, m.Tokenizer.SHA256, tok.Name(), tok.SHA256())
	}
	return nil
}

// buildTempPattern matches the hidden folders Build works in.
const buildTempPattern = ".golf-build-*"

// staleBuilds lists the hidden build folders in dir.
func staleBuilds(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, buildTempPattern))
	var out []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			out = append(out, filepath.Base(m))
		}
	}
	return out
}

// challengeFolder matches the challenge's dataset folder names,
// fineweb10B_sp1024 and the like: the vocabulary size after "sp".
var challengeFolder = regexp.MustCompile(`_sp(\d+)$`)

// FolderTokenizer returns the tokenizer of a shard folder when the folder
// says which it is, and how it knew (for the log); nil and "" when it does
// not say. In order:
//
//  1. golf's manifest.json: the tokenizer with its recorded SHA-256, found
//     at its recorded path, next to the shards, or embedded (sp1024). A
//     manifest naming a tokenizer that cannot be found is an error;
//  2. the challenge's layout (data/datasets/fineweb10B_spN/ beside
//     data/tokenizers/fineweb_N_bpe.model): that file, or the embedded
//     model for sp1024.
func FolderTokenizer(dir string) (*tokenizer.Model, string, error) {
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	switch {
	case err == nil:
		return manifestTokenizer(dir, m)
	case !errors.Is(err, os.ErrNotExist):
		return nil, "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", nil
	}
	sub := challengeFolder.FindStringSubmatch(filepath.Base(abs))
	if sub == nil {
		return nil, "", nil
	}
	name := fmt.Sprintf("fineweb_%s_bpe.model", sub[1])
	for _, p := range []string{filepath.Join(abs, "..", "..", "tokenizers", name), filepath.Join(abs, name)} {
		if _, err := os.Stat(p); err == nil {
			tok, err := tokenizer.Load(p)
			if err != nil {
				return nil, "", err
			}
			return tok, fmt.Sprintf("%s (the challenge's layout: %s)", p, filepath.Base(abs)), nil
		}
	}
	if def := tokenizer.Default(); sub[1] == fmt.Sprint(def.VocabSize()) {
		return def, fmt.Sprintf("the embedded %s (the challenge's layout: %s)", def.Name(), filepath.Base(abs)), nil
	}
	return nil, "", nil
}

func manifestTokenizer(dir string, m *Manifest) (*tokenizer.Model, string, error) {
	info := m.Tokenizer
	where := filepath.Join(dir, ManifestName)
	match := func(tok *tokenizer.Model) bool {
		return (info.SHA256 == "" || tok.SHA256() == info.SHA256) && (info.VocabSize == 0 || tok.VocabSize() == info.VocabSize)
	}
	if def := tokenizer.Default(); info.SHA256 == def.SHA256() || (info.SHA256 == "" && info.Name == filepath.Base(def.Name()) && match(def)) {
		return def, fmt.Sprintf("the embedded %s (%s)", def.Name(), where), nil
	}
	var tried []string
	for _, p := range []string{info.Path, filepath.Join(dir, info.Name)} {
		if p == "" || slices.Contains(tried, p) {
			continue
		}
		tried = append(tried, p)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		tok, err := tokenizer.Load(p)
		if err != nil {
			return nil, "", fmt.Errorf("data: %s names tokenizer %s: %w", where, p, err)
		}
		if !match(tok) {
			return nil, "", fmt.Errorf("data: %s names tokenizer %s (sha256 %.12s), but %s is another model (sha256 %.12s): pass the shards' tokenizer", where, info.Name, info.SHA256, p, tok.SHA256())
		}
		return tok, fmt.Sprintf("%s (%s)", p, where), nil
	}
	return nil, "", fmt.Errorf("data: %s names tokenizer %s (sha256 %.12s), not found at %s: pass the shards' tokenizer", where, info.Name, info.SHA256, strings.Join(tried, " or "))
}

// CapValidation returns the first whole sequences of a validation stream
// (as LoadValidation returns it: k*seqLen+1 tokens) holding at most
// maxTokens targets, at least one sequence; maxTokens <= 0, or a stream
// already within the cap, returns val itself. It is how periodic
// validation is kept cheap (Settings.ValTokens); a run's final evaluation
// uses the whole split.
func CapValidation(val []uint16, seqLen, maxTokens int) []uint16 {
	if maxTokens <= 0 || seqLen <= 0 || len(val)-1 <= maxTokens {
		return val
	}
	return val[:max(maxTokens/seqLen, 1)*seqLen+1]
}

// EnsureDefault builds the embedded corpus's shards (BuildDefault) into
// dir with enc, unless dir already holds a complete build of them: a
// manifest whose tokenizer digest is enc's (when enc has one) and whose
// shards are all there. Repeated runs so tokenize the corpus once. While
// another process builds into dir (two runs started together), it waits
// for that build, until ctx ends, and uses it. A line goes to log (nil:
// none) when it builds or waits.
func EnsureDefault(ctx context.Context, dir string, enc Encoder, log io.Writer) error {
	waiting := false
	for {
		if defaultReady(dir, enc) {
			return nil
		}
		if log != nil && !waiting {
			fmt.Fprintf(log, "data: building the embedded corpus into %s\n", dir)
		}
		_, err := BuildDefault(ctx, dir, enc)
		if err == nil {
			return nil
		}
		if !errors.Is(err, outlock.ErrBusy) {
			return fmt.Errorf("build the embedded corpus into %s: %w", dir, err)
		}
		// Another process is building the same cache (two runs started
		// together): wait for it, then use its build.
		if log != nil && !waiting {
			fmt.Fprintf(log, "data: waiting: %v\n", err)
		}
		waiting = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("build the embedded corpus into %s: waiting for another build: %w", dir, ctx.Err())
		case <-time.After(defaultBuildPoll):
		}
	}
}

// defaultBuildPoll is how often EnsureDefault looks again while another
// process builds the cache.
const defaultBuildPoll = 200 * time.Millisecond

// defaultReady reports whether dir holds a complete build for enc.
func defaultReady(dir string, enc Encoder) bool {
	m, err := ReadManifest(filepath.Join(dir, ManifestName))
	if err != nil || !sameEncoder(m, enc) {
		return false
	}
	if tok, ok := enc.(*tokenizer.Model); ok {
		_, err = CheckDir(dir, tok)
	} else {
		_, err = CheckDir(dir, nil)
	}
	return err == nil
}

func sameEncoder(m *Manifest, enc Encoder) bool {
	if m.Tokenizer.VocabSize != enc.VocabSize() {
		return false
	}
	if h, ok := enc.(interface{ SHA256() string }); ok {
		return m.Tokenizer.SHA256 == h.SHA256()
	}
	return true
}

// ParseLoaderState decodes a LoaderState saved as JSON (a checkpoint's
// "loader" field) strictly: an unknown field, a missing "file" or "pos",
// or trailing data is an error, never a silent restart of the stream.
func ParseLoaderState(b []byte) (LoaderState, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return LoaderState{}, fmt.Errorf("data: loader state: %w", err)
	}
	for _, k := range []string{"file", "pos"} {
		if _, ok := raw[k]; !ok {
			return LoaderState{}, fmt.Errorf("data: loader state: no %q field", k)
		}
	}
	var st LoaderState
	if err := strictjson.Decode(b, &st); err != nil {
		return LoaderState{}, fmt.Errorf("data: loader state: %w", err)
	}
	return st, nil
}
