package tokenizer

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/paramgolf/golf/tokenizer/internal/spm"
)

// PieceType is the kind of a vocabulary entry, as stored in the .model file.
type PieceType int32

// The piece types of SentencePiece's ModelProto. Control pieces (<s>, </s>,
// <pad>) and the unknown piece are never produced from text by merging; byte
// pieces (<0x00>..<0xFF>) stand for raw UTF-8 bytes of characters outside the
// vocabulary when the model has byte fallback.
const (
	Normal      PieceType = 1
	Unknown     PieceType = 2
	Control     PieceType = 3
	UserDefined PieceType = 4
	Unused      PieceType = 5
	Byte        PieceType = 6
)

// String returns the type's name as in sentencepiece_model.proto.
func (t PieceType) String() string {
	switch t {
	case Normal:
		return "NORMAL"
	case Unknown:
		return "UNKNOWN"
	case Control:
		return "CONTROL"
	case UserDefined:
		return "USER_DEFINED"
	case Unused:
		return "UNUSED"
	case Byte:
		return "BYTE"
	}
	return fmt.Sprintf("PieceType(%d)", int32(t))
}

// ModelType is the segmentation algorithm a model was trained for.
type ModelType int32

// The model types of SentencePiece's TrainerSpec. Only BPE is supported.
const (
	Unigram ModelType = 1
	BPE     ModelType = 2
	Word    ModelType = 3
	Char    ModelType = 4
)

// String returns the type's name as in sentencepiece_model.proto.
func (t ModelType) String() string {
	switch t {
	case Unigram:
		return "UNIGRAM"
	case BPE:
		return "BPE"
	case Word:
		return "WORD"
	case Char:
		return "CHAR"
	}
	return fmt.Sprintf("ModelType(%d)", int32(t))
}

// TrainerSpec holds the training settings stored in a .model file that
// matter when encoding, decoding or describing a model. Empty special-piece
// names are replaced by the reference's defaults (<unk>, <s>, </s>, <pad>).
type TrainerSpec struct {
	ModelType ModelType
	VocabSize int // as requested at training; the real size is Model.VocabSize

	// ByteFallback encodes characters outside the vocabulary as one byte
	// piece per UTF-8 byte instead of the unknown piece.
	ByteFallback bool
	// TreatWhitespaceAsSuffix puts the dummy space mark after the text.
	TreatWhitespaceAsSuffix bool

	// Pre-tokenization settings: they shaped training and so the vocabulary,
	// but do not change how a trained BPE model encodes.
	SplitDigits               bool
	SplitByWhitespace         bool
	SplitByNumber             bool
	AllowWhitespaceOnlyPieces bool

	// Special ids the trainer was asked for. The ids in use are those of the
	// pieces named below (Model.BOS and friends).
	UnkID, BOSID, EOSID, PADID int

	UnkPiece, BOSPiece, EOSPiece, PADPiece string
	// UnkSurface is the text that Decode writes for the unknown piece.
	UnkSurface string
}

// NormalizerSpec is the text normalization a model applies before
// segmentation.
type NormalizerSpec struct {
	Name string // rule set name, e.g. "nmt_nfkc"
	// PrecompiledCharsmap holds the rewriting rules compiled into a trie; it
	// is what normalization actually uses.
	PrecompiledCharsmap []byte
	// AddDummyPrefix puts a space mark before the text, so that the first word
	// is segmented like the others.
	AddDummyPrefix bool
	// RemoveExtraWhitespaces drops leading and trailing whitespace and
	// collapses runs of it to one space.
	RemoveExtraWhitespaces bool
	// EscapeWhitespaces writes spaces as U+2581.
	EscapeWhitespaces bool
	// NormalizationRuleTSV is the source of custom rules, if any
	// (informational: the charsmap is authoritative).
	NormalizationRuleTSV string
}

// Model is a loaded SentencePiece BPE model. It is safe for concurrent use.
type Model struct {
	name   string
	sha256 string // hex digest of the .model bytes
	raw    []byte // the .model bytes
	pieces []string
	scores []float32
	types  []PieceType

	mergeable map[string]int32 // NORMAL, USER_DEFINED and UNUSED pieces: what merges may produce
	reserved  map[string]int32 // CONTROL, UNKNOWN and BYTE pieces

	unk, bos, eos, pad int
	byteIDs            [256]int32 // id of <0xNN>, when ByteFallback

	trainer    TrainerSpec
	normSpec   NormalizerSpec
	norm       *normalizer
	denorm     *normalizer // nil unless the model has a denormalizer charsmap
	hasUnused  bool
	matcher    *spm.PrefixMatcher // user-defined pieces; nil if none
	split      wordSplit
	scanLimit  int // segments of up to this many symbols merge by scanning
	cache      *wordCache
	byteTable  *ByteTable
	scratchSet sync.Pool // *encodeState
}

//go:embed models/fineweb_1024_bpe.model
var defaultModelData []byte

// DefaultModelName is the file name of the embedded default model, the
// challenge's official 1024-piece FineWeb tokenizer (sp1024).
const DefaultModelName = "fineweb_1024_bpe.model"

var defaultModel = sync.OnceValue(func() *Model {
	m, err := Parse(DefaultModelName, defaultModelData)
	if err != nil {
		// The embedded file is part of the package and its tests load it.
		panic("tokenizer: embedded default model is corrupt: " + err.Error())
	}
	return m
})

// Default returns the embedded sp1024 model (vocabulary 1024: pad 0, bos 1,
// eos 2, unk 3, 256 byte pieces, 764 merges). The same *Model is returned on
// every call.
func Default() *Model { return defaultModel() }

// Load reads and parses a SentencePiece .model file.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a serialized SentencePiece ModelProto. name identifies the
// data in errors (usually the file name). It accepts what the reference C++
// library 0.1.97 accepts for BPE models and rejects, with an error naming the
// fault, corrupt files, other model types, duplicate pieces, a missing or
// repeated unknown piece, malformed byte pieces, byte fallback without all
// 256 byte pieces, a broken charsmap, and models that fail their own
// embedded self-test samples.
func Parse(name string, data []byte) (*Model, error) {
	m, err := parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	m.sha256 = fmt.Sprintf("%x", sha256.Sum256(data))
	m.raw = bytes.Clone(data)
	return m, nil
}

// SHA256 returns the hex SHA-256 digest of the .model file the model was
// parsed from: the identity that shard manifests and run logs record.
func (m *Model) SHA256() string { return m.sha256 }

func parse(name string, data []byte) (*Model, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("the file is empty (0 bytes), not a SentencePiece model")
	}
	mp, err := parseModelProto(data)
	if err != nil {
		return nil, fmt.Errorf("not a valid SentencePiece model file: %w", err)
	}
	// No pieces first: bytes that decode as an empty message say nothing
	// of a model type (protobuf's default, UNIGRAM, would be reported).
	if len(mp.pieces) == 0 {
		return nil, fmt.Errorf("no pieces: the vocabulary is empty (is it a SentencePiece model file?)")
	}
	t := mp.trainer
	if t.ModelType != BPE {
		return nil, fmt.Errorf("model type is %v; only BPE models are supported", t.ModelType)
	}
	if len(mp.pieces) > 1<<30 {
		return nil, fmt.Errorf("%d pieces is more than supported", len(mp.pieces))
	}
	m := &Model{
		name:      name,
		pieces:    make([]string, len(mp.pieces)),
		scores:    make([]float32, len(mp.pieces)),
		types:     make([]PieceType, len(mp.pieces)),
		mergeable: make(map[string]int32, len(mp.pieces)),
		reserved:  map[string]int32{},
		unk:       -1,
		trainer:   t,
		normSpec:  mp.normalizer,
	}
	var userDefined []string
	var byteFound [256]bool
	for i, p := range mp.pieces {
		if p.piece == "" {
			return nil, fmt.Errorf("piece %d is empty", i)
		}
		m.pieces[i], m.scores[i], m.types[i] = p.piece, p.score, p.typ
		// The reference keeps two maps and looks pieces up in the reserved
		// one first; a piece in both would encode to an id it cannot account
		// for, so such a model is rejected.
		if j, dup := m.mergeable[p.piece]; dup {
			return nil, fmt.Errorf("piece %d %q (%v) is already defined as piece %d", i, p.piece, p.typ, j)
		}
		if j, dup := m.reserved[p.piece]; dup {
			return nil, fmt.Errorf("piece %d %q (%v) is already defined as piece %d", i, p.piece, p.typ, j)
		}
		switch p.typ {
		case Normal, UserDefined, Unused:
			m.mergeable[p.piece] = int32(i)
		default:
			m.reserved[p.piece] = int32(i)
		}
		switch p.typ {
		case UserDefined:
			userDefined = append(userDefined, p.piece)
		case Unused:
			m.hasUnused = true
		case Unknown:
			if m.unk >= 0 {
				return nil, fmt.Errorf("piece %d %q: a second unknown piece (the first is %d)", i, p.piece, m.unk)
			}
			m.unk = i
		case Byte:
			if !t.ByteFallback {
				return nil, fmt.Errorf("piece %d: byte piece %q although byte_fallback is off", i, p.piece)
			}
			b, ok := pieceByte(p.piece)
			if !ok {
				return nil, fmt.Errorf("piece %d: byte piece %q is not of the form <0xNN>", i, p.piece)
			}
			byteFound[b] = true
			m.byteIDs[b] = int32(i)
		}
	}
	if m.unk < 0 {
		return nil, fmt.Errorf("no unknown piece (type UNKNOWN) is defined")
	}
	if t.ByteFallback {
		for b, ok := range byteFound {
			if !ok {
				return nil, fmt.Errorf("byte_fallback is on but the byte piece %s is missing", spm.BytePiece(byte(b)))
			}
		}
	}

	// Special pieces: empty names mean the defaults; an id counts only if
	// that piece has the expected type (as the reference's bos_id() etc.).
	m.trainer.UnkPiece = spm.OrDefault(t.UnkPiece, "<unk>")
	m.trainer.BOSPiece = spm.OrDefault(t.BOSPiece, "<s>")
	m.trainer.EOSPiece = spm.OrDefault(t.EOSPiece, "</s>")
	m.trainer.PADPiece = spm.OrDefault(t.PADPiece, "<pad>")
	if !mp.hasUnkSurface {
		m.trainer.UnkSurface = spm.DefaultUnkSurface
	}
	m.bos = m.specialID(m.trainer.BOSPiece, Control)
	m.eos = m.specialID(m.trainer.EOSPiece, Control)
	m.pad = m.specialID(m.trainer.PADPiece, Control)

	m.matcher = spm.NewPrefixMatcher(userDefined)
	if m.norm, err = newNormalizer(mp.normalizer, t.TreatWhitespaceAsSuffix, m.matcher); err != nil {
		return nil, fmt.Errorf("normalizer_spec: %w", err)
	}
	if mp.hasDenorm && len(mp.denormalizer.PrecompiledCharsmap) > 0 {
		if m.denorm, err = newNormalizer(mp.denormalizer, false, nil); err != nil {
			return nil, fmt.Errorf("denormalizer_spec: %w", err)
		}
	}
	m.split = m.chooseWordSplit()
	m.scanLimit = smallSegment
	m.cache = newWordCache()
	m.byteTable = newByteTable(m)
	m.scratchSet.New = func() any { return new(encodeState) }

	for i, s := range mp.selfTests {
		got := strings.Join(m.EncodePieces(s.input), " ")
		if got != s.expected {
			return nil, fmt.Errorf("self-test sample %d: %q encodes to %q, the model expects %q", i, s.input, got, s.expected)
		}
	}
	return m, nil
}

func (m *Model) specialID(piece string, want PieceType) int {
	if id := m.PieceID(piece); m.types[id] == want {
		return id
	}
	return -1
}

// pieceByte parses a byte piece name; only the exact form <0xNN> with
// upper-case hex digits is accepted, as in the reference.
func pieceByte(piece string) (byte, bool) {
	if len(piece) != 6 || piece[:3] != "<0x" || piece[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range piece[3:5] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | byte(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | byte(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// Name returns the name the model was loaded under (its file name).
func (m *Model) Name() string { return m.name }

// VocabSize returns the number of pieces; ids run from 0 to VocabSize()-1.
func (m *Model) VocabSize() int { return len(m.pieces) }

// Piece returns the text of piece id ("" for an id outside the vocabulary).
func (m *Model) Piece(id int) string {
	if id < 0 || id >= len(m.pieces) {
		return ""
	}
	return m.pieces[id]
}

// Score returns the merge score of piece id: BPE merges the adjacent pair
// whose merged piece has the highest score first (0 outside the vocabulary).
func (m *Model) Score(id int) float32 {
	if id < 0 || id >= len(m.pieces) {
		return 0
	}
	return m.scores[id]
}

// PieceType returns the type of piece id, or 0 for an id outside the
// vocabulary.
func (m *Model) PieceType(id int) PieceType {
	if id < 0 || id >= len(m.types) {
		return 0
	}
	return m.types[id]
}

// IsControl reports whether id is a control piece such as <s> or <pad>.
func (m *Model) IsControl(id int) bool { return m.PieceType(id) == Control }

// IsUnknown reports whether id is the unknown piece.
func (m *Model) IsUnknown(id int) bool { return m.PieceType(id) == Unknown }

// IsUnused reports whether id is an unused piece.
func (m *Model) IsUnused(id int) bool { return m.PieceType(id) == Unused }

// IsByte reports whether id is a byte-fallback piece <0xNN>.
func (m *Model) IsByte(id int) bool { return m.PieceType(id) == Byte }

// PieceID returns the id of a piece's text, or UNK() when the vocabulary has
// no such piece (the reference's PieceToId).
func (m *Model) PieceID(piece string) int {
	if id, ok := m.reserved[piece]; ok {
		return int(id)
	}
	if id, ok := m.mergeable[piece]; ok {
		return int(id)
	}
	return m.unk
}

// UNK returns the id of the unknown piece, the one encoding emits for text
// outside the vocabulary without byte fallback (3 for the challenge's models).
func (m *Model) UNK() int { return m.unk }

// BOS returns the id of the beginning-of-sequence control piece, or -1 if the
// model has none (1 for the challenge's models).
func (m *Model) BOS() int { return m.bos }

// EOS returns the id of the end-of-sequence control piece, or -1 (2 for the
// challenge's models).
func (m *Model) EOS() int { return m.eos }

// PAD returns the id of the padding control piece, or -1 (0 for the
// challenge's models).
func (m *Model) PAD() int { return m.pad }

// TrainerSpec returns the model's training settings.
func (m *Model) TrainerSpec() TrainerSpec { return m.trainer }

// NormalizerSpec returns the model's normalization settings (the charsmap is
// shared: do not modify it).
func (m *Model) NormalizerSpec() NormalizerSpec { return m.normSpec }

// Normalize returns text as the model sees it before segmentation: the
// charsmap rules applied (NFKC for the challenge's models), whitespace
// handled per the NormalizerSpec, spaces written as U+2581. Malformed UTF-8
// becomes U+FFFD, one per byte.
func (m *Model) Normalize(text string) string {
	return string(m.norm.appendNormalized(nil, text))
}
