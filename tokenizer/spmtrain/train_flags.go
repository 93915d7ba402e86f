package spmtrain

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SPMOptions returns spm_train's own defaults (a unigram model's settings
// aside): what Options holds when spm_train is run with --model_type=bpe and
// no other flag. DefaultOptions is the challenge's settings instead.
func SPMOptions() Options {
	return Options{
		VocabSize:                  8000,
		CharacterCoverage:          0.9995,
		SplitByWhitespace:          true,
		SplitByNumber:              true,
		SplitByUnicodeScript:       true,
		MaxSentencepieceLength:     16,
		MaxSentenceLength:          4192,
		ShuffleInputSentence:       true,
		HardVocabLimit:             true,
		NormalizationRuleName:      "nmt_nfkc",
		AddDummyPrefix:             true,
		RemoveExtraWhitespaces:     true,
		UnkID:                      0,
		BOSID:                      1,
		EOSID:                      2,
		PadID:                      -1,
		VocabularyOutputPieceScore: true,
		NumThreads:                 16,
	}
}

// trainFlag is one spm_train flag that Options.Set understands.
type trainFlag struct {
	usage string
	set   func(o *Options, v string) error
	get   func(o *Options) string
}

func boolFlag(usage string, f func(o *Options) *bool) trainFlag {
	return trainFlag{usage: usage, get: func(o *Options) string { return strconv.FormatBool(*f(o)) }, set: func(o *Options, v string) error {
		if v == "" {
			v = "true"
		}
		// gflags' spellings besides Go's: yes/no, y/n, any case.
		lv := strings.ToLower(v)
		switch lv {
		case "yes", "y":
			lv = "true"
		case "no", "n":
			lv = "false"
		}
		b, err := strconv.ParseBool(lv)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", v)
		}
		*f(o) = b
		return nil
	}}
}

func intFlag(usage string, f func(o *Options) *int) trainFlag {
	return trainFlag{usage: usage, get: func(o *Options) string { return strconv.Itoa(*f(o)) }, set: func(o *Options, v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a 32-bit integer", v)
		}
		*f(o) = int(n)
		return nil
	}}
}

func stringFlag(usage string, f func(o *Options) *string) trainFlag {
	return trainFlag{usage: usage, get: func(o *Options) string { return *f(o) },
		set: func(o *Options, v string) error { *f(o) = v; return nil }}
}

func listFlag(usage string, f func(o *Options) *[]string) trainFlag {
	return trainFlag{usage: usage, get: func(o *Options) string { return strings.Join(*f(o), ",") },
		set: func(o *Options, v string) error { *f(o) = splitCSV(v); return nil }}
}

// trainFlags are the spm_train flags by name.
var trainFlags = map[string]trainFlag{
	"vocab_size":                   intFlag("vocabulary size", func(o *Options) *int { return &o.VocabSize }),
	"max_sentencepiece_length":     intFlag("most characters in a piece", func(o *Options) *int { return &o.MaxSentencepieceLength }),
	"max_sentence_length":          intFlag("most bytes in a training sentence; longer ones are skipped", func(o *Options) *int { return &o.MaxSentenceLength }),
	"input_sentence_size":          intFlag("sentences to sample (0: all)", func(o *Options) *int { return &o.InputSentenceSize }),
	"unk_id":                       intFlag("id of the unknown piece", func(o *Options) *int { return &o.UnkID }),
	"bos_id":                       intFlag("id of <s> (-1: none)", func(o *Options) *int { return &o.BOSID }),
	"eos_id":                       intFlag("id of </s> (-1: none)", func(o *Options) *int { return &o.EOSID }),
	"pad_id":                       intFlag("id of <pad> (-1: none)", func(o *Options) *int { return &o.PadID }),
	"num_threads":                  intFlag("thread count recorded in the model (training uses GOMAXPROCS)", func(o *Options) *int { return &o.NumThreads }),
	"byte_fallback":                boolFlag("add the 256 byte pieces", func(o *Options) *bool { return &o.ByteFallback }),
	"split_digits":                 boolFlag("every digit a piece of its own", func(o *Options) *bool { return &o.SplitDigits }),
	"split_by_whitespace":          boolFlag("pieces never span words", func(o *Options) *bool { return &o.SplitByWhitespace }),
	"split_by_number":              boolFlag("digits never merge with other characters", func(o *Options) *bool { return &o.SplitByNumber }),
	"split_by_unicode_script":      boolFlag("characters of different scripts never merge", func(o *Options) *bool { return &o.SplitByUnicodeScript }),
	"treat_whitespace_as_suffix":   boolFlag("space marks end pieces", func(o *Options) *bool { return &o.TreatWhitespaceAsSuffix }),
	"allow_whitespace_only_pieces": boolFlag("allow pieces of space marks only", func(o *Options) *bool { return &o.AllowWhitespaceOnlyPieces }),
	"shuffle_input_sentence":       boolFlag("sample sentences at random (else the first ones)", func(o *Options) *bool { return &o.ShuffleInputSentence }),
	"hard_vocab_limit":             boolFlag("fewer pieces than asked is an error", func(o *Options) *bool { return &o.HardVocabLimit }),
	"add_dummy_prefix":             boolFlag("a space mark before every sentence", func(o *Options) *bool { return &o.AddDummyPrefix }),
	"remove_extra_whitespaces":     boolFlag("drop leading, trailing and repeated whitespace", func(o *Options) *bool { return &o.RemoveExtraWhitespaces }),
	"vocabulary_output_piece_score": boolFlag("scores in the .vocab file", func(o *Options) *bool {
		return &o.VocabularyOutputPieceScore
	}),
	"normalization_rule_name": stringFlag("nmt_nfkc or identity", func(o *Options) *string { return &o.NormalizationRuleName }),
	"unk_piece":               stringFlag("name of the unknown piece", func(o *Options) *string { return &o.UnkPiece }),
	"bos_piece":               stringFlag("name of the beginning-of-sentence piece", func(o *Options) *string { return &o.BOSPiece }),
	"eos_piece":               stringFlag("name of the end-of-sentence piece", func(o *Options) *string { return &o.EOSPiece }),
	"pad_piece":               stringFlag("name of the padding piece", func(o *Options) *string { return &o.PadPiece }),
	"unk_surface": {usage: "what the unknown piece decodes to (may be empty)", get: func(o *Options) string { return o.UnkSurface },
		set: func(o *Options, v string) error { o.UnkSurface, o.EmptyUnkSurface = v, v == ""; return nil }},
	"required_chars":       stringFlag("characters always in the alphabet", func(o *Options) *string { return &o.RequiredChars }),
	"model_prefix":         stringFlag("output prefix recorded in the model", func(o *Options) *string { return &o.ModelPrefix }),
	"control_symbols":      listFlag("comma-separated control symbols", func(o *Options) *[]string { return &o.ControlSymbols }),
	"user_defined_symbols": listFlag("comma-separated user-defined symbols", func(o *Options) *[]string { return &o.UserDefinedSymbols }),
	"input":                listFlag("comma-separated input names recorded in the model", func(o *Options) *[]string { return &o.Input }),
	"character_coverage": {usage: "share of characters the alphabet covers", set: func(o *Options, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		o.CharacterCoverage = f
		return nil
	}, get: func(o *Options) string { return strconv.FormatFloat(o.CharacterCoverage, 'g', -1, 64) }},
	"model_type": {usage: "bpe (the only type supported)", set: func(o *Options, v string) error {
		if !strings.EqualFold(v, "bpe") {
			return fmt.Errorf("model type %q: only bpe is supported", v)
		}
		return nil
	}, get: func(*Options) string { return "bpe" }},
}

// FlagNames lists the spm_train flags that Set understands, sorted.
func FlagNames() []string {
	names := make([]string, 0, len(trainFlags))
	for n := range trainFlags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FlagUsage returns a one-line description of an spm_train flag.
func FlagUsage(name string) string { return trainFlags[name].usage }

// Get returns the value of the option that the spm_train flag name stands
// for, as Set would take it ("" for an unknown name).
func (o *Options) Get(name string) string {
	if f, ok := trainFlags[name]; ok {
		return f.get(o)
	}
	return ""
}

// Set sets the option that the spm_train flag name (e.g. "vocab_size",
// "byte_fallback", "user_defined_symbols") stands for from its value as
// spm_train parses it (booleans as "true"/"false", lists comma-separated
// with CSV quoting).
func (o *Options) Set(name, value string) error {
	f, ok := trainFlags[name]
	if !ok {
		return fmt.Errorf("tokenizer: unknown training flag %q", name)
	}
	if err := f.set(o, value); err != nil {
		return fmt.Errorf("tokenizer: flag %s: %w", name, err)
	}
	// Options take a zero or empty value as the default; spm_train takes a
	// given one as given and rejects these.
	if r, ok := zeroRejected[name]; ok {
		if got := f.get(o); got == "0" || got == "" {
			return fmt.Errorf("tokenizer: flag %s: %q outside %s", name, value, r)
		}
	}
	return nil
}

// zeroRejected are the flags whose zero or empty value spm_train rejects,
// with the range it wants.
var zeroRejected = map[string]string{
	"max_sentencepiece_length": "[1, 512]",
	"max_sentence_length":      "[10, 1073741824]",
	"num_threads":              "[1, 128]",
	"character_coverage":       "[0.98, 1]",
	"unk_piece":                "non-empty names",
	"bos_piece":                "non-empty names",
	"eos_piece":                "non-empty names",
	"pad_piece":                "non-empty names",
}

// splitCSV splits a flag value as the reference's StrSplitAsCSV: at
// commas, with double-quoted fields in which "" stands for a quote.
func splitCSV(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			var b strings.Builder
			i++
			for ; i < len(s); i++ {
				if s[i] == '"' {
					i++
					if i >= len(s) || s[i] != '"' {
						break
					}
				}
				b.WriteByte(s[i])
			}
			for i < len(s) && s[i] != ',' {
				i++
			}
			out = append(out, b.String())
			continue
		}
		j := strings.IndexByte(s[i:], ',')
		if j < 0 {
			j = len(s) - i
		}
		out = append(out, s[i:i+j])
		i += j
	}
	return out
}
