package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// This file reads the parts of SentencePiece's ModelProto (protobuf, proto2
// syntax; the schema is sentencepiece_model.proto in the SentencePiece
// sources) that encoding and decoding need. The wire format, in brief: a
// message is a sequence of fields, each a varint key (field number << 3 | wire
// type) followed by a value: wire type 0 is a varint, 1 eight bytes, 2 a
// varint length and that many bytes (strings and nested messages), 5 four
// bytes (float), 3/4 start and end a (deprecated) group. Integers are
// little-endian. As the C++ protobuf runtime does, a field with an
// unexpected wire type or number is skipped as unknown, the last value of a
// scalar field wins, occurrences of a nested message field merge, and an enum
// value outside the enum leaves the field unchanged.
//
// Field numbers read here:
//
//	ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec,
//	                3 normalizer_spec, 4 self_test_data, 5 denormalizer_spec
//	SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
//	TrainerSpec     3 model_type (default UNIGRAM), 4 vocab_size, 22 split_by_whitespace,
//	                23 split_by_number, 24 treat_whitespace_as_suffix,
//	                25 split_digits, 26 allow_whitespace_only_pieces, 35 byte_fallback,
//	                40-43 unk/bos/eos/pad_id, 44 unk_surface, 45-48 unk/bos/eos/pad_piece
//	NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix,
//	                4 remove_extra_whitespaces, 5 escape_whitespaces,
//	                6 normalization_rule_tsv
//	SelfTestData    1 samples (repeated Sample: 1 input, 2 expected)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireStart   = 3
	wireEnd     = 4
	wireFixed32 = 5
)

// maxGroupDepth bounds the nesting of (deprecated) protobuf groups that the
// reader skips, so a hostile file cannot exhaust the stack.
const maxGroupDepth = 64

// wireField is one decoded field of a protobuf message.
type wireField struct {
	num  uint64 // field number
	typ  int    // wire type
	u    uint64 // value of a varint, fixed32 or fixed64 field
	data []byte // payload of a length-delimited field
}

// forEachField calls fn for every top-level field of msg, skipping groups.
// It fails on truncated or malformed input, naming the byte offset.
func forEachField(msg []byte, fn func(f wireField) error) error {
	off := 0
	for off < len(msg) {
		f, n, err := readField(msg, off, 0)
		if err != nil {
			return err
		}
		off = n
		if f.typ == wireStart {
			continue // a skipped group
		}
		if f.typ == wireEnd {
			return fmt.Errorf("unexpected end-group for field %d at byte %d", f.num, off)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// readField decodes the field starting at off and returns it with the offset
// just past it. A group (wire type 3) is skipped whole, up to its end marker.
func readField(msg []byte, off, depth int) (wireField, int, error) {
	var f wireField
	key, n := binary.Uvarint(msg[off:])
	if n <= 0 {
		return f, 0, fmt.Errorf("bad field key at byte %d", off)
	}
	off += n
	f.num, f.typ = key>>3, int(key&7)
	if f.num == 0 || f.num > math.MaxInt32 {
		return f, 0, fmt.Errorf("invalid field number %d at byte %d", f.num, off-n)
	}
	switch f.typ {
	case wireVarint:
		v, n := binary.Uvarint(msg[off:])
		if n <= 0 {
			return f, 0, fmt.Errorf("field %d: bad varint at byte %d", f.num, off)
		}
		f.u, off = v, off+n
	case wireFixed64:
		if len(msg)-off < 8 {
			return f, 0, fmt.Errorf("field %d: truncated 8-byte value at byte %d", f.num, off)
		}
		f.u, off = binary.LittleEndian.Uint64(msg[off:]), off+8
	case wireFixed32:
		if len(msg)-off < 4 {
			return f, 0, fmt.Errorf("field %d: truncated 4-byte value at byte %d", f.num, off)
		}
		f.u, off = uint64(binary.LittleEndian.Uint32(msg[off:])), off+4
	case wireBytes:
		l, n := binary.Uvarint(msg[off:])
		if n <= 0 {
			return f, 0, fmt.Errorf("field %d: bad length at byte %d", f.num, off)
		}
		off += n
		if l > uint64(len(msg)-off) {
			return f, 0, fmt.Errorf("field %d: length %d at byte %d runs past the end (%d bytes left)", f.num, l, off, len(msg)-off)
		}
		f.data, off = msg[off:off+int(l)], off+int(l)
	case wireStart:
		if depth >= maxGroupDepth {
			return f, 0, fmt.Errorf("groups nested deeper than %d at byte %d", maxGroupDepth, off)
		}
		for {
			if off >= len(msg) {
				return f, 0, fmt.Errorf("group %d is not closed", f.num)
			}
			g, n, err := readField(msg, off, depth+1)
			if err != nil {
				return f, 0, err
			}
			off = n
			if g.typ == wireEnd {
				if g.num != f.num {
					return f, 0, fmt.Errorf("group %d closed by end-group %d", f.num, g.num)
				}
				break
			}
		}
	case wireEnd:
	default:
		return f, 0, fmt.Errorf("field %d: invalid wire type %d at byte %d", f.num, f.typ, off)
	}
	return f, off, nil
}

// modelProto is the decoded content of a .model file.
type modelProto struct {
	pieces        []pieceProto
	trainer       TrainerSpec
	normalizer    NormalizerSpec
	denormalizer  NormalizerSpec
	hasDenorm     bool
	hasUnkSurface bool
	selfTests     []selfTestSample
}

type pieceProto struct {
	piece string
	score float32
	typ   PieceType
}

type selfTestSample struct{ input, expected string }

// parseModelProto decodes a serialized ModelProto, applying proto2 defaults.
func parseModelProto(data []byte) (*modelProto, error) {
	mp := &modelProto{
		trainer:      defaultTrainerSpec(),
		normalizer:   defaultNormalizerSpec(),
		denormalizer: defaultNormalizerSpec(),
	}
	err := forEachField(data, func(f wireField) error {
		if f.typ != wireBytes {
			return nil // no scalar fields at the top level: unknown, skipped
		}
		switch f.num {
		case 1:
			p, err := parsePiece(f.data)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(mp.pieces), err)
			}
			mp.pieces = append(mp.pieces, p)
		case 2:
			if err := mp.parseTrainerSpec(f.data); err != nil {
				return fmt.Errorf("trainer_spec: %w", err)
			}
		case 3:
			if err := parseNormalizerSpec(f.data, &mp.normalizer); err != nil {
				return fmt.Errorf("normalizer_spec: %w", err)
			}
		case 4:
			if err := mp.parseSelfTestData(f.data); err != nil {
				return fmt.Errorf("self_test_data: %w", err)
			}
		case 5:
			mp.hasDenorm = true
			if err := parseNormalizerSpec(f.data, &mp.denormalizer); err != nil {
				return fmt.Errorf("denormalizer_spec: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mp, nil
}

func parsePiece(msg []byte) (pieceProto, error) {
	p := pieceProto{typ: Normal}
	err := forEachField(msg, func(f wireField) error {
		switch {
		case f.num == 1 && f.typ == wireBytes:
			p.piece = string(f.data)
		case f.num == 2 && f.typ == wireFixed32:
			p.score = math.Float32frombits(uint32(f.u))
		case f.num == 3 && f.typ == wireVarint:
			if t := PieceType(int32(f.u)); t >= Normal && t <= Byte {
				p.typ = t
			}
		}
		return nil
	})
	return p, err
}

func defaultTrainerSpec() TrainerSpec {
	return TrainerSpec{
		ModelType:         Unigram,
		VocabSize:         8000,
		SplitByWhitespace: true,
		SplitByNumber:     true,
		BOSID:             1,
		EOSID:             2,
		PADID:             -1,
		UnkSurface:        spm.DefaultUnkSurface,
	}
}

func (mp *modelProto) parseTrainerSpec(msg []byte) error {
	t := &mp.trainer
	return forEachField(msg, func(f wireField) error {
		if f.typ == wireBytes {
			s := string(f.data)
			switch f.num {
			case 44:
				t.UnkSurface, mp.hasUnkSurface = s, true
			case 45:
				t.UnkPiece = s
			case 46:
				t.BOSPiece = s
			case 47:
				t.EOSPiece = s
			case 48:
				t.PADPiece = s
			}
			return nil
		}
		if f.typ != wireVarint {
			return nil
		}
		b := f.u != 0
		i := int(int32(f.u)) // proto int32: the low 32 bits, sign-extended
		switch f.num {
		case 3:
			if m := ModelType(int32(f.u)); m >= Unigram && m <= Char {
				t.ModelType = m
			}
		case 4:
			t.VocabSize = i
		case 22:
			t.SplitByWhitespace = b
		case 23:
			t.SplitByNumber = b
		case 24:
			t.TreatWhitespaceAsSuffix = b
		case 25:
			t.SplitDigits = b
		case 26:
			t.AllowWhitespaceOnlyPieces = b
		case 35:
			t.ByteFallback = b
		case 40:
			t.UnkID = i
		case 41:
			t.BOSID = i
		case 42:
			t.EOSID = i
		case 43:
			t.PADID = i
		}
		return nil
	})
}

func defaultNormalizerSpec() NormalizerSpec {
	return NormalizerSpec{AddDummyPrefix: true, RemoveExtraWhitespaces: true, EscapeWhitespaces: true}
}

func parseNormalizerSpec(msg []byte, n *NormalizerSpec) error {
	return forEachField(msg, func(f wireField) error {
		switch {
		case f.num == 1 && f.typ == wireBytes:
			n.Name = string(f.data)
		case f.num == 2 && f.typ == wireBytes:
			n.PrecompiledCharsmap = append([]byte(nil), f.data...)
		case f.num == 3 && f.typ == wireVarint:
			n.AddDummyPrefix = f.u != 0
		case f.num == 4 && f.typ == wireVarint:
			n.RemoveExtraWhitespaces = f.u != 0
		case f.num == 5 && f.typ == wireVarint:
			n.EscapeWhitespaces = f.u != 0
		case f.num == 6 && f.typ == wireBytes:
			n.NormalizationRuleTSV = string(f.data)
		}
		return nil
	})
}

func (mp *modelProto) parseSelfTestData(msg []byte) error {
	return forEachField(msg, func(f wireField) error {
		if f.num != 1 || f.typ != wireBytes {
			return nil
		}
		var s selfTestSample
		err := forEachField(f.data, func(g wireField) error {
			switch {
			case g.num == 1 && g.typ == wireBytes:
				s.input = string(g.data)
			case g.num == 2 && g.typ == wireBytes:
				s.expected = string(g.data)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sample %d: %w", len(mp.selfTests), err)
		}
		mp.selfTests = append(mp.selfTests, s)
		return nil
	})
}
