package spmtrain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/paramgolf/golf/internal/progress"
	"github.com/paramgolf/golf/tokenizer"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// Options are the settings of [Train]. Fields are named after
// spm_train's flags (--vocab_size is VocabSize, and so on) and mean what
// they mean there; [DefaultOptions] returns the settings the
// challenge's export script trained its tokenizers with. Numeric fields
// left at zero take spm_train's defaults where zero is not a valid value.
type Options struct {
	// VocabSize is the number of pieces asked for (--vocab_size), special
	// and byte pieces included. With HardVocabLimit off the model may have
	// fewer, when the text runs out of merges.
	VocabSize int
	// CharacterCoverage is the share of the text's characters that the
	// alphabet must cover (0.98 to 1; 0 means 0.9995, spm_train's default).
	// The most frequent characters are kept until the share is reached;
	// the rest are unknown (byte pieces with ByteFallback).
	CharacterCoverage float64
	// ByteFallback adds the 256 byte pieces <0x00>..<0xFF>.
	ByteFallback bool
	// SplitDigits keeps every digit 0-9 a piece of its own.
	SplitDigits bool
	// SplitByWhitespace trains on words: pieces never cross a space mark
	// except at their start (the reference's default; turn off to let
	// pieces span words).
	SplitByWhitespace bool
	// SplitByNumber keeps digits from merging with other characters.
	SplitByNumber bool
	// SplitByUnicodeScript keeps characters of different Unicode scripts
	// (Latin, Common punctuation, Han, ...) from merging.
	SplitByUnicodeScript bool
	// TreatWhitespaceAsSuffix puts space marks at the end of pieces.
	TreatWhitespaceAsSuffix bool
	// AllowWhitespaceOnlyPieces allows pieces made only of space marks.
	AllowWhitespaceOnlyPieces bool
	// MaxSentencepieceLength is the most characters in a piece (0: 16).
	MaxSentencepieceLength int
	// MaxSentenceLength is the most bytes in a training sentence (0: 4192);
	// longer sentences are skipped, as the reference does.
	MaxSentenceLength int
	// InputSentenceSize, when positive, caps the sentences kept: with
	// ShuffleInputSentence a uniform sample drawn exactly as the reference
	// draws it, otherwise the first ones. The sample is a reservoir over
	// the sentences that pass the filters (not empty, at most
	// MaxSentenceLength bytes, no U+2585): the k-th of them (k = 1, 2, ...)
	// is kept while fewer than N are, else j = uniform(0, k-1) is drawn and
	// it replaces kept sentence j if j < N, where uniform is libstdc++'s
	// std::uniform_int_distribution<uint64_t> over one std::mt19937 seeded
	// with 12345678 (reproduced in train_stdcompat.go), so the same
	// sentences are kept as by spm_train.
	InputSentenceSize    int
	ShuffleInputSentence bool
	// HardVocabLimit makes too few merges an error instead of a smaller
	// vocabulary.
	HardVocabLimit bool
	// NormalizationRuleName names the text normalization: "nmt_nfkc" (the
	// default and the challenge's: NFKC plus whitespace and control
	// character clean-up) or "identity". Another rule can be given by its
	// compiled form in PrecompiledCharsmap (take one from a model with
	// tokenizer.Model.NormalizerSpec).
	NormalizationRuleName string
	PrecompiledCharsmap   []byte
	// AddDummyPrefix puts a space mark before every sentence.
	AddDummyPrefix bool
	// RemoveExtraWhitespaces drops leading and trailing whitespace and
	// collapses runs of it.
	RemoveExtraWhitespaces bool
	// Special pieces: their ids (-1: none; the unknown piece is required)
	// and names (empty: <unk>, <s>, </s>, <pad>).
	UnkID, BOSID, EOSID, PadID             int
	UnkPiece, BOSPiece, EOSPiece, PadPiece string
	// UnkSurface is what decoding writes for the unknown piece (empty:
	// " ⁇ ", unless EmptyUnkSurface).
	UnkSurface string
	// EmptyUnkSurface makes an empty UnkSurface mean empty, as spm_train's
	// --unk_surface= does (the Set flag sets it).
	EmptyUnkSurface bool
	// ControlSymbols and UserDefinedSymbols are extra special pieces, given
	// the lowest free ids in this order (then the byte pieces). Text never
	// merges into or across them: in training their occurrences are cut
	// out, and encoding emits them whole (CaseOps's operators are
	// user-defined symbols).
	ControlSymbols     []string
	UserDefinedSymbols []string
	// RequiredChars are characters the alphabet always includes, whatever
	// their frequency.
	RequiredChars string
	// VocabularyOutputPieceScore writes scores into the .vocab file.
	VocabularyOutputPieceScore bool

	// Recorded in the model's trainer_spec as spm_train records them, and
	// otherwise unused: the input file names, the output prefix (the .model
	// path without ".model") and the thread count (0: 16).
	Input       []string
	ModelPrefix string
	NumThreads  int

	// Name is what the trained model's Name returns (default
	// "trained.model").
	Name string
	// Workers is the number of goroutines that normalize and count the
	// sentences (0: GOMAXPROCS). The merges themselves are sequential.
	Workers int
	// Progress receives progress lines with rate and ETA (nil: none).
	Progress io.Writer
	// Stats, when not nil, is filled with what training saw.
	Stats *Stats
}

// Stats describes a training run.
type Stats struct {
	Sentences       int64   `json:"sentences"`         // read from the input
	SkippedLong     int64   `json:"skipped_long"`      // longer than MaxSentenceLength bytes
	SkippedReserved int64   `json:"skipped_reserved"`  // holding U+2585, the trainer's reserved character
	Loaded          int     `json:"loaded"`            // kept (after sampling), before normalization
	Normalized      int     `json:"normalized"`        // not empty after normalization
	Characters      int64   `json:"characters"`        // characters counted for coverage
	Alphabet        int     `json:"alphabet"`          // characters kept as pieces
	Coverage        float64 `json:"coverage"`          // share of Characters the alphabet covers
	Words           int     `json:"words"`             // distinct words (or sentences) merged over
	Merges          int     `json:"merges"`            // pieces made by merging
	VocabSize       int     `json:"vocab_size"`        // pieces in the model
	Seconds         float64 `json:"seconds"`           // wall-clock time of Train
	TieRisks        int     `json:"tie_risks"`         // merges chosen among candidates equal but for identity (see Train)
	PeakSymbols     int     `json:"peak_symbols"`      // symbols alive at once, at most
	Positions       int64   `json:"initial_positions"` // symbol pairs in the text at the start
}

// DefaultOptions returns the settings of the challenge's tokenizers
// (build_sentencepiece_tokenizer in its download_hf_docs_and_tokenize.py),
// with the rest at spm_train's defaults: BPE, character coverage 0.999,
// byte fallback, digits split, nmt_nfkc normalization, no dummy prefix,
// extra whitespace removed, pad 0 / bos 1 / eos 2 / unk 3, and no hard
// vocabulary limit.
func DefaultOptions(vocabSize int) Options {
	return Options{
		VocabSize:                  vocabSize,
		CharacterCoverage:          0.999,
		ByteFallback:               true,
		SplitDigits:                true,
		SplitByWhitespace:          true,
		SplitByNumber:              true,
		SplitByUnicodeScript:       true,
		MaxSentencepieceLength:     16,
		MaxSentenceLength:          4192,
		ShuffleInputSentence:       true,
		NormalizationRuleName:      "nmt_nfkc",
		RemoveExtraWhitespaces:     true,
		UnkID:                      3,
		BOSID:                      1,
		EOSID:                      2,
		PadID:                      0,
		VocabularyOutputPieceScore: true,
	}
}

// Characters the reference trainer reserves: U+2581 marks spaces, U+2585
// stands for characters outside the alphabet, and a tab replaces special
// pieces found in the text (so nothing merges across them).
const (
	trainWS       = '\u2581'
	trainUnk      = '\u2585'
	trainUnkStr   = "\u2585"
	trainBoundary = '\t'
)

// Train trains a SentencePiece BPE model on sentences, exactly as
// SentencePiece 0.1.97's spm_train does with the same settings: the same
// pieces in the same order with the same scores. Each string is one
// sentence, as one line of an spm_train input file or one item of the
// Python trainer's sentence_iterator (the challenge fed whole documents).
//
// The algorithm is the reference's (bpe_model_trainer.cc), including its
// approximations: sentences are normalized and split into words, the
// alphabet is the most frequent characters up to CharacterCoverage (the
// rest become unknown and never merge), and then the most frequent
// adjacent pair of symbols is merged, repeatedly, ties going to the shorter
// and then the byte-wise smaller piece. Frequencies are searched among an
// "active" 5% of the pairs, re-chosen every 100 merges; which pairs tied at
// that cut are active follows libstdc++'s hash-map order and partial_sort,
// both reproduced here. The one thing not reproducible is a tie between
// two candidates that spell the same piece with the same frequency (e.g.
// "ab"+"c" and "a"+"bc"), which the reference breaks by memory address;
// Train takes the one created first and counts such merges in
// Stats.TieRisks. Merge i gets score -i; the alphabet follows the merges,
// most frequent character first.
//
// The model is usable at once (Encode, ByteTable) and its
// [tokenizer.Model.MarshalBinary] is the .model file, loadable by the
// reference C++ and Python libraries.
func Train(ctx context.Context, sentences []string, opts Options) (*tokenizer.Model, error) {
	return TrainSeq(ctx, func(yield func(string, error) bool) {
		for _, s := range sentences {
			if !yield(s, nil) {
				return
			}
		}
	}, opts)
}

// TrainSeq is [Train] over a stream of sentences, so that a large corpus
// need not be in memory at once: with InputSentenceSize set, only the
// sample is kept. An error from the stream stops training and is returned.
func TrainSeq(ctx context.Context, sentences iter.Seq2[string, error], opts Options) (*tokenizer.Model, error) {
	start := time.Now()
	if err := opts.fill(); err != nil {
		return nil, fmt.Errorf("tokenizer: train: %w", err)
	}
	var st Stats
	t := &trainer{opts: &opts, stats: &st, ctx: ctx}
	m, err := t.run(sentences)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: train: %w", err)
	}
	st.VocabSize = m.VocabSize()
	st.Seconds = time.Since(start).Seconds()
	if opts.Stats != nil {
		*opts.Stats = st
	}
	return m, nil
}

// fill applies defaults and checks the settings as the reference's
// VerifySpec does.
func (o *Options) fill() error {
	if o.CharacterCoverage == 0 {
		o.CharacterCoverage = 0.9995
	}
	if o.MaxSentencepieceLength == 0 {
		o.MaxSentencepieceLength = 16
	}
	if o.MaxSentenceLength == 0 {
		o.MaxSentenceLength = 4192
	}
	if o.NumThreads == 0 {
		o.NumThreads = 16
	}
	if o.NormalizationRuleName == "" {
		o.NormalizationRuleName = "nmt_nfkc"
	}
	o.UnkPiece = spm.OrDefault(o.UnkPiece, "<unk>")
	o.BOSPiece = spm.OrDefault(o.BOSPiece, "<s>")
	o.EOSPiece = spm.OrDefault(o.EOSPiece, "</s>")
	o.PadPiece = spm.OrDefault(o.PadPiece, "<pad>")
	if o.UnkSurface == "" && !o.EmptyUnkSurface {
		o.UnkSurface = spm.DefaultUnkSurface
	}
	if o.Name == "" {
		o.Name = "trained.model"
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	f32 := float32(o.CharacterCoverage)
	switch {
	case o.VocabSize <= 0:
		return fmt.Errorf("vocabulary size %d, want at least 1", o.VocabSize)
	case f32 < 0.98 || f32 > 1:
		return fmt.Errorf("character coverage %g outside [0.98, 1]", o.CharacterCoverage)
	case o.MaxSentencepieceLength < 1 || o.MaxSentencepieceLength > 512:
		return fmt.Errorf("max sentencepiece length %d outside [1, 512]", o.MaxSentencepieceLength)
	case o.MaxSentenceLength < 10 || o.MaxSentenceLength > 1<<30:
		return fmt.Errorf("max sentence length %d outside [10, %d]", o.MaxSentenceLength, 1<<30)
	case o.NumThreads < 1 || o.NumThreads > 128:
		return fmt.Errorf("thread count %d outside [1, 128]", o.NumThreads)
	case o.InputSentenceSize < 0 || (o.InputSentenceSize > 0 && o.InputSentenceSize <= 100):
		return fmt.Errorf("input sentence size %d: the reference wants 0 (all) or more than 100", o.InputSentenceSize)
	}
	if o.PrecompiledCharsmap == nil {
		cm, err := builtinCharsmap(o.NormalizationRuleName)
		if err != nil {
			return err
		}
		o.PrecompiledCharsmap = cm
	}
	return nil
}

// sentence is a training sentence (or, after splitting, a word) with its
// frequency.
type sentence struct {
	text string
	freq int64
}

// metaPiece is a special piece at a fixed id.
type metaPiece struct {
	piece string
	typ   tokenizer.PieceType
}

// trainer holds the state of one training run.
type trainer struct {
	opts     *Options
	stats    *Stats
	ctx      context.Context
	meta     map[int]metaPiece
	required map[rune]int64
	norm     *tokenizer.Normalizer
}

func (t *trainer) run(seq iter.Seq2[string, error]) (*tokenizer.Model, error) {
	if err := t.initMetaPieces(); err != nil {
		return nil, err
	}
	sentences, err := t.loadSentences(seq)
	if err != nil {
		return nil, err
	}
	sentences, err = t.normalize(sentences)
	if err != nil {
		return nil, err
	}
	if err := t.chooseAlphabet(sentences); err != nil {
		return nil, err
	}
	words := t.words(sentences)
	t.stats.Words = len(words)
	b := newBPE(t, words)
	pieces, err := b.train()
	if err != nil {
		return nil, err
	}
	t.stats.Merges = len(pieces) - len(t.required)
	return t.serialize(pieces)
}

// initMetaPieces assigns the special pieces their ids (InitMetaPieces).
func (t *trainer) initMetaPieces() error {
	o := t.opts
	t.meta = map[int]metaPiece{}
	hasUnk := false
	insertID := func(id int, w string) error {
		if id < 0 {
			return nil
		}
		if id >= o.VocabSize {
			return fmt.Errorf("special piece %s has id %d, outside the vocabulary of %d", w, id, o.VocabSize)
		}
		if old, dup := t.meta[id]; dup {
			return fmt.Errorf("special pieces %s and %s both have id %d", old.piece, w, id)
		}
		if hasUnk && w == o.UnkPiece {
			return fmt.Errorf("%s is defined twice", w)
		}
		typ := tokenizer.Control
		if w == o.UnkPiece {
			hasUnk, typ = true, tokenizer.Unknown
		}
		t.meta[id] = metaPiece{w, typ}
		return nil
	}
	for _, s := range []struct {
		id    int
		piece string
	}{{o.UnkID, o.UnkPiece}, {o.BOSID, o.BOSPiece}, {o.EOSID, o.EOSPiece}, {o.PadID, o.PadPiece}} {
		if err := insertID(s.id, s.piece); err != nil {
			return err
		}
	}
	if !hasUnk {
		return fmt.Errorf("the unknown piece %s must have an id", o.UnkPiece)
	}
	dup := map[string]bool{}
	id := 0
	insertSymbol := func(w string, typ tokenizer.PieceType) error {
		if w == "" {
			return fmt.Errorf("an empty %v symbol", typ)
		}
		if dup[w] {
			return fmt.Errorf("%s is defined twice", w)
		}
		dup[w] = true
		switch {
		case w == o.UnkPiece:
			return fmt.Errorf("%s must not be a control or user-defined symbol", w)
		case w == o.BOSPiece && o.BOSID >= 0:
			t.meta[o.BOSID] = metaPiece{w, typ}
		case w == o.EOSPiece && o.EOSID >= 0:
			t.meta[o.EOSID] = metaPiece{w, typ}
		case w == o.PadPiece && o.PadID >= 0:
			t.meta[o.PadID] = metaPiece{w, typ}
		default:
			for {
				if _, used := t.meta[id]; !used {
					break
				}
				id++
			}
			t.meta[id] = metaPiece{w, typ}
		}
		return nil
	}
	for _, w := range o.ControlSymbols {
		if err := insertSymbol(w, tokenizer.Control); err != nil {
			return err
		}
	}
	for _, w := range o.UserDefinedSymbols {
		if err := insertSymbol(w, tokenizer.UserDefined); err != nil {
			return err
		}
	}
	if o.ByteFallback {
		for b := range 256 {
			if err := insertSymbol(spm.BytePiece(byte(b)), tokenizer.Byte); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadSentences reads the sentences, skipping the empty, the too long and
// those holding U+2585, and samples them as the reference's
// SentenceSelector does.
func (t *trainer) loadSentences(seq iter.Seq2[string, error]) ([]sentence, error) {
	o := t.opts
	var out []sentence
	var rng *mt19937
	sampling := o.InputSentenceSize > 0 && o.ShuffleInputSentence
	if sampling {
		rng = newMT19937(12345678)
	}
	var total uint64 // sentences offered to the sampler
	meter := progress.New(o.Progress, "tokenizer train: read", "sentences", 0)
	for s, err := range seq {
		if err != nil {
			return nil, err
		}
		t.stats.Sentences++
		if t.stats.Sentences%(1<<16) == 0 {
			if err := t.ctx.Err(); err != nil {
				return nil, err
			}
			meter.Add(1 << 16)
		}
		switch {
		case s == "":
			continue
		case len(s) > o.MaxSentenceLength:
			t.stats.SkippedLong++
			continue
		case strings.Contains(s, trainUnkStr):
			t.stats.SkippedReserved++
			continue
		}
		switch {
		case o.InputSentenceSize == 0:
			out = append(out, sentence{s, 1})
		case sampling:
			total++
			if len(out) < o.InputSentenceSize {
				out = append(out, sentence{s, 1})
			} else if n := rng.uniform(total - 1); n < uint64(len(out)) {
				out[n] = sentence{s, 1}
			}
		default:
			out = append(out, sentence{s, 1})
			if len(out) >= o.InputSentenceSize {
				t.stats.Loaded = len(out)
				return out, nil
			}
		}
	}
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	t.stats.Loaded = len(out)
	if len(out) == 0 {
		msg := "no sentences to train on"
		if t.stats.SkippedLong > 0 {
			msg += fmt.Sprintf(" (%d were longer than the maximum sentence length of %d bytes and skipped)", t.stats.SkippedLong, o.MaxSentenceLength)
		}
		return nil, errors.New(msg)
	}
	return out, nil
}

// parallel runs fn over [0, n) in chunks on the trainer's workers.
func (t *trainer) parallel(n int, fn func(lo, hi int)) {
	w := min(t.opts.Workers, max(1, n/256))
	var wg sync.WaitGroup
	for k := range w {
		lo, hi := n*k/w, n*(k+1)/w
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// normalize normalizes every sentence, replaces special pieces found in it
// by a tab, and drops those left empty (by the reference's swap with the
// last, whose order later steps see when sentences are not split into
// words).
func (t *trainer) normalize(sentences []sentence) ([]sentence, error) {
	o := t.opts
	spec := tokenizer.NormalizerSpec{
		Name:                   o.NormalizationRuleName,
		PrecompiledCharsmap:    o.PrecompiledCharsmap,
		AddDummyPrefix:         o.AddDummyPrefix,
		RemoveExtraWhitespaces: o.RemoveExtraWhitespaces,
		EscapeWhitespaces:      true,
	}
	n, err := tokenizer.NewNormalizer(spec, o.TreatWhitespaceAsSuffix)
	if err != nil {
		return nil, fmt.Errorf("normalization rule %s: %w", o.NormalizationRuleName, err)
	}
	t.norm = n
	var metaPieces []string
	for _, p := range t.meta {
		metaPieces = append(metaPieces, p.piece)
	}
	matcher := spm.NewPrefixMatcher(metaPieces)
	meter := progress.New(o.Progress, "tokenizer train: normalize", "sentences", int64(len(sentences)))
	t.parallel(len(sentences), func(lo, hi int) {
		var buf []byte
		for i := lo; i < hi; i++ {
			buf = n.AppendNormalized(buf[:0], sentences[i].text)
			sentences[i].text = globalReplace(matcher, buf, "\t")
			if (i-lo)%4096 == 4095 {
				meter.Add(4096)
			}
		}
	})
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	for i := 0; i < len(sentences); i++ {
		if sentences[i].text == "" {
			sentences[i] = sentences[len(sentences)-1]
			sentences = sentences[:len(sentences)-1]
		}
	}
	t.stats.Normalized = len(sentences)
	if len(sentences) == 0 {
		return nil, errors.New("every sentence is empty after normalization")
	}
	return sentences, nil
}

// globalReplace replaces every occurrence of the matcher's pieces in s,
// longest first, by out (PrefixMatcher::GlobalReplace).
func globalReplace(m *spm.PrefixMatcher, s []byte, out string) string {
	if m == nil {
		return string(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	str := string(s)
	for len(str) > 0 {
		if n := m.Match(str); n > 0 {
			b.WriteString(out)
			str = str[n:]
			continue
		}
		n := min(len(str), spm.OneCharLen(str[0]))
		b.WriteString(str[:n])
		str = str[n:]
	}
	return b.String()
}

// charCount is a character's standing in the coverage ranking.
type charCount struct {
	c        rune
	required bool
	count    int64
}

// chooseAlphabet counts characters and keeps the most frequent up to the
// coverage (required characters first), then replaces the others by
// U+2585 in every sentence.
func (t *trainer) chooseAlphabet(sentences []sentence) error {
	o := t.opts
	counts := map[rune]*charCount{}
	for _, c := range o.RequiredChars {
		if c == 0 {
			continue
		}
		if counts[c] == nil {
			counts[c] = &charCount{c: c}
		}
		counts[c].required = true
	}
	// Count in parallel, one map per worker, then merge.
	var mu sync.Mutex
	var all int64
	var errSpace error
	t.parallel(len(sentences), func(lo, hi int) {
		local := map[rune]int64{}
		var n int64
		for _, s := range sentences[lo:hi] {
			for _, c := range s.text {
				switch c {
				case 0:
					continue
				case ' ':
					mu.Lock()
					errSpace = errors.New("a normalized sentence holds a space")
					mu.Unlock()
					continue
				}
				local[c] += s.freq
				n += s.freq
			}
		}
		mu.Lock()
		for c, k := range local {
			if counts[c] == nil {
				counts[c] = &charCount{c: c}
			}
			counts[c].count += k
		}
		all += n
		mu.Unlock()
	})
	if errSpace != nil {
		return errSpace
	}
	ranked := make([]charCount, 0, len(counts))
	for _, c := range counts {
		ranked = append(ranked, *c)
	}
	slices.SortFunc(ranked, func(a, b charCount) int {
		if a.required != b.required {
			if a.required {
				return -1
			}
			return 1
		}
		if a.count != b.count {
			return cmp.Compare(b.count, a.count)
		}
		return cmp.Compare(a.c, b.c)
	})
	t.required = map[rune]int64{}
	var acc int64
	limit := float32(o.CharacterCoverage)
	for _, w := range ranked {
		// The reference computes the share in double and compares it as float.
		if coverage := float32(float64(acc) / float64(all)); coverage >= limit {
			break
		}
		acc += w.count
		if w.c == trainBoundary {
			continue
		}
		t.required[w.c] = w.count
	}
	t.stats.Characters = all
	t.stats.Alphabet = len(t.required)
	t.stats.Coverage = float64(acc) / float64(all)
	if _, ok := t.required[trainUnk]; ok {
		return errors.New("the alphabet holds U+2585, which the trainer reserves")
	}
	if len(t.required)+len(t.meta) > o.VocabSize {
		return fmt.Errorf("the vocabulary size %d is smaller than the alphabet plus the special pieces (%d + %d); raise the vocabulary size or lower the character coverage",
			o.VocabSize, len(t.required), len(t.meta))
	}
	t.parallel(len(sentences), func(lo, hi int) {
		var buf []byte
		for i := lo; i < hi; i++ {
			s := sentences[i].text
			rare := false
			for _, c := range s {
				if _, ok := t.required[c]; !ok {
					rare = true
					break
				}
			}
			if !rare {
				continue
			}
			buf = buf[:0]
			for _, c := range s {
				if _, ok := t.required[c]; !ok {
					c = trainUnk
				}
				buf = utf8.AppendRune(buf, c)
			}
			sentences[i].text = string(buf)
		}
	})
	return nil
}

// words splits the sentences into words and counts them, most frequent
// first, ties in byte order (SplitSentencesByWhitespace); without
// SplitByWhitespace the sentences stay as they are.
func (t *trainer) words(sentences []sentence) []sentence {
	o := t.opts
	if !o.SplitByWhitespace {
		return sentences
	}
	const shards = 64
	var locals [][shards]map[string]int64
	var mu sync.Mutex
	t.parallel(len(sentences), func(lo, hi int) {
		var local [shards]map[string]int64
		for i := range local {
			local[i] = map[string]int64{}
		}
		for _, s := range sentences[lo:hi] {
			for _, w := range splitIntoWords(s.text, o.TreatWhitespaceAsSuffix, o.AllowWhitespaceOnlyPieces) {
				local[shardOf(w, shards)][w] += s.freq
			}
		}
		mu.Lock()
		locals = append(locals, local)
		mu.Unlock()
	})
	parts := make([][]sentence, shards)
	var wg sync.WaitGroup
	for k := range shards {
		wg.Go(func() {
			merged := map[string]int64{}
			for _, l := range locals {
				for w, n := range l[k] {
					merged[w] += n
				}
			}
			part := make([]sentence, 0, len(merged))
			for w, n := range merged {
				part = append(part, sentence{w, n})
			}
			parts[k] = part
		})
	}
	wg.Wait()
	out := slices.Concat(parts...)
	slices.SortFunc(out, func(a, b sentence) int {
		if a.freq != b.freq {
			return cmp.Compare(b.freq, a.freq)
		}
		return strings.Compare(a.text, b.text)
	})
	return out
}

// shardOf spreads words over n maps by a cheap hash.
func shardOf(w string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint32(w[i])) * 16777619
	}
	return int(h % uint32(n))
}

// splitIntoWords is the reference's SplitIntoWords: a word starts at every
// space mark (or, with the marks as suffixes, ends after one; runs of marks
// stay together when whitespace-only pieces are allowed).
func splitIntoWords(text string, suffix, allowWSOnly bool) []string {
	var out []string
	ws := string(trainWS)
	begin, start := 0, 0
	if suffix {
		if len(text) == 0 {
			return nil
		}
		inWS := false
		for begin < len(text) {
			n := min(spm.OneCharLen(text[begin]), len(text)-begin)
			isWS := text[begin:begin+n] == ws
			if isWS {
				inWS = true
			} else if inWS {
				if allowWSOnly {
					out = append(out, text[start:begin])
					start = begin
				}
				inWS = false
			}
			begin += n
			if begin < len(text) && isWS && !allowWSOnly {
				out = append(out, text[start:begin])
				start = begin
			}
		}
		return append(out, text[start:])
	}
	inWS := false
	for begin < len(text) {
		n := min(spm.OneCharLen(text[begin]), len(text)-begin)
		isWS := text[begin:begin+n] == ws
		if begin == 0 || (isWS && (!inWS || !allowWSOnly)) {
			if begin > 0 {
				out = append(out, text[start:begin])
			}
			start = begin
			inWS = true
		}
		if inWS && !isWS {
			inWS = false
		}
		begin += n
	}
	if len(text) > 0 {
		out = append(out, text[start:])
	}
	return out
}

// finalPiece is a trained piece with its score.
type finalPiece struct {
	piece string
	score float32
}

// serialize builds the ModelProto as the reference's Serialize does and
// loads it as a tokenizer.Model.
func (t *trainer) serialize(pieces []finalPiece) (*tokenizer.Model, error) {
	o := t.opts
	var all []pieceProto
	fid := 0
	seen := map[string]bool{}
	for id := 0; id < o.VocabSize; id++ {
		var p pieceProto
		if mp, ok := t.meta[id]; ok {
			if len(all) != id {
				return nil, fmt.Errorf("special piece %s has id %d but the vocabulary ends at %d pieces", mp.piece, id, len(all))
			}
			p = pieceProto{piece: mp.piece, typ: mp.typ}
		} else if fid < len(pieces) {
			p = pieceProto{piece: pieces[fid].piece, score: pieces[fid].score, typ: tokenizer.Normal}
			fid++
		} else {
			continue
		}
		if !utf8.ValidString(p.piece) {
			return nil, fmt.Errorf("piece %q is not valid UTF-8", p.piece)
		}
		if seen[p.piece] {
			return nil, fmt.Errorf("piece %s is defined twice", p.piece)
		}
		seen[p.piece] = true
		all = append(all, p)
	}
	if fid != len(pieces) {
		return nil, fmt.Errorf("%d trained pieces do not fit the vocabulary of %d", len(pieces)-fid, o.VocabSize)
	}
	if o.HardVocabLimit && len(all) != o.VocabSize {
		return nil, fmt.Errorf("vocabulary size too high (%d); the text allows at most %d pieces (or turn off the hard vocabulary limit)", o.VocabSize, len(all))
	}
	data := marshalTrainedModel(all, o, len(all))
	return tokenizer.Parse(o.Name, data)
}
