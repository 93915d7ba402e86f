// Package tokenizer loads SentencePiece BPE models and encodes text with the
// same ids as the reference C++ implementation (SentencePiece 0.1.97), and
// provides the byte table that the challenge's bits-per-byte metric uses.
//
// A model comes from a .model file ([Load], [Parse]) or is the embedded
// challenge tokenizer sp1024 ([Default]). Encoding runs in the reference's
// order:
//
//	text --Normalize--> "Hello▁world" --split into characters--> H e l l o ▁ w o r l d
//	     --merge the best-scoring adjacent pair, repeatedly--> H ell o ▁wor ld --> ids
//
// Normalization applies the model's precompiled charsmap (NFKC for the
// challenge's models: "ﬁ" -> "fi", "x²" -> "x2"), then drops leading and
// trailing whitespace and collapses runs of it (newlines and tabs included)
// to one space, written as U+2581. Characters outside the vocabulary become
// one byte piece <0xNN> per UTF-8 byte (byte fallback). [Model.Decode]
// inverts encoding up to normalization.
//
// Parity with the reference is tested on both challenge models (sp1024 and
// sp8192) over the embedded corpus, every Unicode code point, a few hundred
// adversarial strings (invalid UTF-8, control characters, whitespace runs,
// piece names in the text) and four small models that use the settings the
// challenge's do not; testdata/gen_reference.py regenerates the reference
// data.
//
// [ByteTable] counts the bytes each token stands for, as the challenge's
// val_bpb does: val_bpb = total nats / (ln 2 × total bytes).
//
// Package spmtrain (tokenizer/spmtrain, tooling) trains BPE vocabularies
// as spm_train 0.1.97 does. [Model.MarshalBinary] and [Model.Save] write a
// model's .model file (the bytes it was read from, or those training
// made), [Model.WriteVocab] the .vocab file that spm_train writes beside
// it.
//
// [CaseOpsEncode] is the record's lossless capitalization transform and
// [CaseOpsDecode] its inverse; [Model.CaseOpsEncode] returns with each token
// the bytes of the original text it stands for, the record's byte sidecar.
//
// The .model format is protobuf (ModelProto in SentencePiece's
// sentencepiece_model.proto); proto.go documents the fields read and the
// wire format. The charsmap is a darts-clone double-array trie, documented at
// dartsTrie in normalize.go.
package tokenizer
