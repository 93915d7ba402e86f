// Package spmtrain trains SentencePiece BPE tokenizers as spm_train 0.1.97
// does: [Train] (or [TrainSeq] over a stream) returns a [tokenizer.Model]
// with the same pieces in the same order with the same scores, whose .model
// file ([tokenizer.Model.MarshalBinary]) is spm_train's byte for byte (the
// .vocab with [tokenizer.Model.WriteVocab]). [Options] holds the settings,
// named after spm_train's flags ([Options.Set], [Options.Get]);
// [DefaultOptions] are the challenge's, [SPMOptions] spm_train's own.
//
// Where the reference's result depends on libstdc++ (which of the pairs
// tied at the 5% cut of its "active" set it keeps, and how it samples
// sentences) train_stdcompat.go reproduces the library;
// testdata/gen_train_reference.py produces the reference outputs
// (testdata/train/). The built-in nmt_nfkc rule is SentencePiece 0.1.97's
// (charsmaps/SOURCE.md).
//
// Training is tooling: a submission loads its tokenizer with package
// tokenizer and does not need this package to train, pack or evaluate a
// model, so it is not counted in the code size (golf.Tooling).
package spmtrain
