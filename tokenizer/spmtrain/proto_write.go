package spmtrain

import (
	"encoding/binary"
	"math"

	"github.com/paramgolf/golf/tokenizer"
)

// Protobuf wire types (tokenizer's proto.go reads the same format).
const (
	wireVarint  = 0
	wireBytes   = 2
	wireFixed32 = 5
)

// pieceProto is one ModelProto.SentencePiece: a piece, its score and type.
type pieceProto struct {
	piece string
	score float32
	typ   tokenizer.PieceType
}

// protoWriter appends protobuf fields (proto2 wire format; see tokenizer's
// proto.go). Fields are written in the order of their numbers, as the C++
// runtime serializes them, so that a model written here is byte-identical to the
// reference's for the same content.
type protoWriter struct{ b []byte }

func (w *protoWriter) key(num, typ int) { w.b = binary.AppendUvarint(w.b, uint64(num)<<3|uint64(typ)) }

func (w *protoWriter) varint(num int, v uint64) {
	w.key(num, wireVarint)
	w.b = binary.AppendUvarint(w.b, v)
}

// int32 writes a proto int32: negative values as ten-byte varints.
func (w *protoWriter) int32(num int, v int) { w.varint(num, uint64(int64(int32(v)))) }

func (w *protoWriter) bool(num int, v bool) {
	var u uint64
	if v {
		u = 1
	}
	w.varint(num, u)
}

func (w *protoWriter) float(num int, v float32) {
	w.key(num, wireFixed32)
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v))
}

func (w *protoWriter) bytes(num int, v []byte) {
	w.key(num, wireBytes)
	w.b = binary.AppendUvarint(w.b, uint64(len(v)))
	w.b = append(w.b, v...)
}

func (w *protoWriter) string(num int, v string) { w.bytes(num, []byte(v)) }

// Settings of the reference's unigram trainer and others that BPE does
// not use; spm_train records them with these default values.
const (
	specSelfTestSampleSize  = 0
	specSeedSentencepieces  = 1000000
	specShrinkingFactor     = float32(0.75)
	specNumSubIterations    = 2
	specTrainExtremelyLarge = false
)

// marshalTrainedModel serializes a trained model as spm_train does: every
// TrainerSpec field set from its flags (so every field is written), the
// normalizer spec with its compiled charsmap, then the pieces. vocabSize
// is the size recorded in the trainer spec.
func marshalTrainedModel(pieces []pieceProto, o *Options, vocabSize int) []byte {
	var top protoWriter
	for _, p := range pieces {
		var pw protoWriter
		pw.string(1, p.piece)
		pw.float(2, p.score)
		if p.typ != tokenizer.Normal {
			pw.varint(3, uint64(p.typ))
		}
		top.bytes(1, pw.b)
	}
	var ts protoWriter
	for _, in := range o.Input {
		ts.string(1, in)
	}
	ts.string(2, o.ModelPrefix)
	ts.varint(3, uint64(tokenizer.BPE))
	ts.int32(4, vocabSize)
	ts.int32(6, specSelfTestSampleSize)
	ts.string(7, "") // input_format
	ts.float(10, float32(o.CharacterCoverage))
	ts.varint(11, uint64(o.InputSentenceSize))
	ts.int32(14, specSeedSentencepieces)
	ts.float(15, specShrinkingFactor)
	ts.int32(16, o.NumThreads)
	ts.int32(17, specNumSubIterations)
	ts.int32(18, o.MaxSentenceLength)
	ts.bool(19, o.ShuffleInputSentence)
	ts.int32(20, o.MaxSentencepieceLength)
	ts.bool(21, o.SplitByUnicodeScript)
	ts.bool(22, o.SplitByWhitespace)
	ts.bool(23, o.SplitByNumber)
	ts.bool(24, o.TreatWhitespaceAsSuffix)
	ts.bool(25, o.SplitDigits)
	ts.bool(26, o.AllowWhitespaceOnlyPieces)
	for _, s := range o.ControlSymbols {
		ts.string(30, s)
	}
	for _, s := range o.UserDefinedSymbols {
		ts.string(31, s)
	}
	ts.bool(32, o.VocabularyOutputPieceScore)
	ts.bool(33, o.HardVocabLimit)
	ts.bool(34, false) // use_all_vocab
	ts.bool(35, o.ByteFallback)
	ts.string(36, o.RequiredChars)
	ts.int32(40, o.UnkID)
	ts.int32(41, o.BOSID)
	ts.int32(42, o.EOSID)
	ts.int32(43, o.PadID)
	ts.string(44, o.UnkSurface)
	ts.string(45, o.UnkPiece)
	ts.string(46, o.BOSPiece)
	ts.string(47, o.EOSPiece)
	ts.string(48, o.PadPiece)
	ts.bool(49, specTrainExtremelyLarge)
	ts.bool(50, false) // enable_differential_privacy
	ts.float(51, 0)    // differential_privacy_noise_level
	ts.varint(52, 0)   // differential_privacy_clipping_threshold
	top.bytes(2, ts.b)
	var ns protoWriter
	ns.string(1, o.NormalizationRuleName)
	ns.bytes(2, o.PrecompiledCharsmap)
	ns.bool(3, o.AddDummyPrefix)
	ns.bool(4, o.RemoveExtraWhitespaces)
	ns.string(6, "") // normalization_rule_tsv
	top.bytes(3, ns.b)
	return top.b
}
