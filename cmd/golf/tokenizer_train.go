package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/internal/atomicfile"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/tokenizer"
	"github.com/paramgolf/golf/tokenizer/spmtrain"
)

func init() {
	register(&command{
		name:    "tokenizer train",
		summary: "train a SentencePiece BPE tokenizer as spm_train does (the challenge's settings by default)",
		run:     runTokenizerTrain,
	})
}

// spmFlag sets one spm_train option from a golf flag.
type spmFlag struct {
	opts  *spmtrain.Options
	name  string // the spm_train flag name
	value string
	isSet bool
	bool  bool
}

func (f *spmFlag) String() string { return f.value }

func (f *spmFlag) Set(v string) error {
	if err := f.opts.Set(f.name, v); err != nil {
		return err
	}
	f.value, f.isSet = v, true
	return nil
}

func (f *spmFlag) IsBoolFlag() bool { return f.bool }

// golfFlagName is the golf spelling of an spm_train flag: dashes for
// underscores, and the short names for the two most used.
func golfFlagName(spm string) string {
	switch spm {
	case "vocab_size":
		return "vocab"
	case "input_sentence_size":
		return "input-sentences"
	}
	return strings.ReplaceAll(spm, "_", "-")
}

// trainReport is the JSON output of golf tokenizer train.
type trainReport struct {
	Model      string            `json:"model"`
	Vocab      string            `json:"vocab"`
	SHA256     string            `json:"sha256"`
	VocabSize  int               `json:"vocab_size"`
	CaseOps    bool              `json:"caseops"`
	Sentences  string            `json:"sentences"` // "docs" or "lines"
	Stats      spmtrain.Stats    `json:"stats"`
	Normalizer string            `json:"normalizer"`
	Options    map[string]string `json:"options"`
}

func runTokenizerTrain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "tokenizer train", "INPUT...   (--vocab N is required)\n\n"+
		"Trains a SentencePiece BPE model on INPUTs (plain text, JSONL with a \"text\" field,\n"+
		"gzip or zstd), with the same pieces, order and scores as spm_train 0.1.97 given the\n"+
		"same settings. The defaults are the challenge's (bpe, character coverage 0.999,\n"+
		"byte fallback, split digits, nmt_nfkc, no dummy prefix, pad 0 / bos 1 / eos 2 /\n"+
		"unk 3, no hard vocabulary limit); spm_train's BPE settings have flags of the same\n"+
		"name with dashes (--byte-fallback=false, --max-sentence-length 100000, ...); not\n"+
		"there: the unigram-only ones, random_seed, self-test samples, differential\n"+
		"privacy, rule TSVs and the *_file forms (--charsmap-from takes a model's rule).\n"+
		"Sentences: with --sentences docs (the default for JSONL) each document is one\n"+
		"sentence, NULs turned to spaces and the ends stripped, as the challenge's export\n"+
		"fed them; with --sentences lines (the default for plain text) each line is one, as\n"+
		"spm_train reads a file. The reference skips sentences longer than\n"+
		"--max-sentence-length bytes (4192). Writes F.model and F.vocab.\n")
	opts := spmtrain.DefaultOptions(0)
	// --spm-defaults changes the defaults the other flags override, so it
	// is read first.
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-spm-defaults" || a == "--spm-defaults" || a == "-spm-defaults=true" || a == "--spm-defaults=true" {
			opts = spmtrain.SPMOptions()
			opts.VocabSize = 0
		}
	}
	spmFlags := map[string]*spmFlag{}
	for _, name := range spmtrain.FlagNames() {
		if name == "input" || name == "model_prefix" {
			continue
		}
		f := &spmFlag{opts: &opts, name: name, value: opts.Get(name)}
		switch name {
		case "byte_fallback", "split_digits", "split_by_whitespace", "split_by_number", "split_by_unicode_script",
			"treat_whitespace_as_suffix", "allow_whitespace_only_pieces", "shuffle_input_sentence", "hard_vocab_limit",
			"add_dummy_prefix", "remove_extra_whitespaces", "vocabulary_output_piece_score":
			f.bool = true
		}
		spmFlags[name] = f
		fs.Var(f, golfFlagName(name), spmtrain.FlagUsage(name)+" (spm_train --"+name+")")
	}
	fs.Bool("spm-defaults", false, "start from spm_train's own defaults (no byte fallback, unk 0, pad none, dummy prefix, hard limit, ...) instead of the challenge's")
	out := fs.String("out", "", "output .model file (default fineweb_<vocab>_bpe.model, with _caseops for --caseops); the .vocab goes beside it")
	caseops := fs.Bool("caseops", false, "apply the CaseOps transform to the text and add its four operators as user-defined symbols (ids 4-7)")
	sentences := fs.String("sentences", "auto", "docs, lines, or auto (lines for plain text, docs for JSONL)")
	raw := fs.Bool("raw", false, "with --sentences docs: feed documents as they are, without the export's NUL and whitespace clean-up")
	jsonl := fs.Bool("jsonl", false, `every input is JSONL (documents in the "text" field)`)
	blankLineDocs := fs.Bool("blank-line-docs", false, "plain-text inputs hold one document per run of non-blank lines (with --sentences docs)")
	charsmapFrom := fs.String("charsmap-from", "", "take the normalization rule from this .model file (e.g. the challenge's sp1024, whose nmt_nfkc is a later SentencePiece's)")
	recordInput := fs.String("record-input", "", "input names to record in the model, comma-separated (default: the INPUT arguments)")
	modelPrefix := fs.String("model-prefix", "", "model prefix to record in the model (default: --out without .model)")
	force := fs.Bool("force", false, "replace existing output files")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !spmFlags["vocab_size"].isSet || opts.VocabSize <= 0 {
		return fmt.Errorf("%w: --vocab N (the number of pieces) is required", errUsage)
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no INPUT files given", errUsage)
	}
	mode := *sentences
	switch mode {
	case "auto", "docs", "lines":
	default:
		return fmt.Errorf("%w: --sentences %q: want docs, lines or auto", errUsage, mode)
	}
	if *charsmapFrom != "" {
		src, err := tokenizer.Load(*charsmapFrom)
		if err != nil {
			return err
		}
		ns := src.NormalizerSpec()
		opts.NormalizationRuleName, opts.PrecompiledCharsmap = ns.Name, ns.PrecompiledCharsmap
	}
	if *caseops {
		opts.UserDefinedSymbols = append(append([]string(nil), tokenizer.CaseOpsSymbols...), opts.UserDefinedSymbols...)
	}
	if *out == "" {
		*out = fmt.Sprintf("fineweb_%d_bpe.model", opts.VocabSize)
		if *caseops {
			*out = fmt.Sprintf("fineweb_%d_bpe_%s.model", opts.VocabSize, tokenizer.CaseOpsTransformName)
		}
	}
	vocabPath := strings.TrimSuffix(*out, ".model") + ".vocab"
	if !*force {
		for _, p := range []string{*out, vocabPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%s exists; replace it with --force", p)
			}
		}
	}
	opts.ModelPrefix = strings.TrimSuffix(*out, ".model")
	if *modelPrefix != "" {
		opts.ModelPrefix = *modelPrefix
	}
	opts.Input = fs.Args()
	if *recordInput != "" {
		opts.Input = strings.Split(*recordInput, ",")
	}
	opts.Name = filepath.Base(*out)
	opts.Progress = outf.progress(env)
	var st spmtrain.Stats
	opts.Stats = &st

	inputs := make([]data.Input, 0, fs.NArg())
	stdinUsed := false
	for _, arg := range fs.Args() {
		if arg == "-" {
			if stdinUsed {
				return fmt.Errorf("%w: standard input (-) given twice", errUsage)
			}
			stdinUsed = true
			inputs = append(inputs, data.Input{Name: "-", R: env.stdin})
			continue
		}
		inputs = append(inputs, data.Input{Name: arg})
	}
	ropt := data.ReadOptions{BlankLineDocs: *blankLineDocs}
	if *jsonl {
		ropt.Format = data.FormatJSONL
	}
	if mode == "auto" {
		mode = "lines"
		if *jsonl || allJSONL(fs.Args()) {
			mode = "docs"
		}
	}
	ropt.Lines = mode == "lines"
	seq := trainSentences(data.ReadDocuments(inputs, ropt), mode == "docs" && !*raw, *caseops)
	m, err := spmtrain.TrainSeq(ctx, seq, opts)
	if err != nil {
		return err
	}
	var vocab bytes.Buffer
	if err := m.WriteVocab(&vocab, opts.VocabularyOutputPieceScore); err != nil {
		return err
	}
	if err := m.Save(*out); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(vocabPath, vocab.Bytes()); err != nil {
		return err
	}
	rep := trainReport{Model: *out, Vocab: vocabPath, SHA256: m.SHA256(), VocabSize: m.VocabSize(), CaseOps: *caseops,
		Sentences: mode, Stats: st, Normalizer: opts.NormalizationRuleName, Options: map[string]string{}}
	fs.Visit(func(f *flag.Flag) { rep.Options[f.Name] = f.Value.String() })
	if err := outf.save(rep); err != nil {
		return err
	}
	if outf.json {
		return report.WriteJSON(env.stdout, rep)
	}
	t := report.NewTable(fmt.Sprintf("tokenizer train: %s (%d pieces)", *out, m.VocabSize()), "what", "value")
	t.Add("sentences read", st.Sentences)
	if st.SkippedLong > 0 {
		t.Add(fmt.Sprintf("skipped: longer than %d bytes", opts.MaxSentenceLength), st.SkippedLong)
	}
	if st.SkippedReserved > 0 {
		t.Add("skipped: hold U+2585", st.SkippedReserved)
	}
	t.Add("sentences trained on", st.Normalized)
	t.Add("distinct words", st.Words)
	t.Add("characters", st.Characters)
	t.Add("alphabet", st.Alphabet)
	t.Add("character coverage", fmt.Sprintf("%.6f", st.Coverage))
	t.Add("merges", st.Merges)
	t.Add("seconds", fmt.Sprintf("%.2f", st.Seconds))
	t.Add("sha256", m.SHA256())
	if err := t.Print(env.stdout); err != nil {
		return err
	}
	if st.SkippedLong > 0 && st.SkippedLong*2 > st.Sentences {
		fmt.Fprintf(env.stderr, "golf tokenizer train: note: %d of %d sentences were longer than %d bytes and skipped, as spm_train does (--max-sentence-length)\n",
			st.SkippedLong, st.Sentences, opts.MaxSentenceLength)
	}
	return nil
}

// allJSONL reports whether every input is named like JSONL.
func allJSONL(names []string) bool {
	for _, n := range names {
		n = strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(n), ".gz"), ".zst")
		if !strings.HasSuffix(n, ".jsonl") {
			return false
		}
	}
	return len(names) > 0
}

// trainSentences prepares documents for training: with clean, as the
// challenge's export did (text.replace("\x00", " ").strip(), empty ones
// dropped); with caseops, transformed.
func trainSentences(docs iter.Seq2[string, error], clean, caseops bool) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for d, err := range docs {
			if err != nil {
				yield("", err)
				return
			}
			if clean {
				d = pythonStrip(strings.ReplaceAll(d, "\x00", " "))
				if d == "" {
					continue
				}
			}
			if caseops {
				d = tokenizer.CaseOpsEncode(d)
			}
			if !yield(d, nil) {
				return
			}
		}
	}
}

// pythonStrip is Python's str.strip(): it removes the characters for which
// str.isspace() is true from both ends.
func pythonStrip(s string) string {
	isSpace := func(r rune) bool {
		switch {
		case r >= '\t' && r <= '\r', r == ' ', r >= 0x1c && r <= 0x1f, r == 0x85, r == 0xa0, r == 0x1680,
			r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
			return true
		}
		return false
	}
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !isSpace(r) {
			break
		}
		s = s[n:]
	}
	for len(s) > 0 {
		r, n := utf8.DecodeLastRuneInString(s)
		if !isSpace(r) {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}
