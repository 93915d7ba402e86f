// Package download fetches the challenge's data ([Fetch]), as its
// data/cached_challenge_fineweb.py does: from a Hugging Face dataset
// repository whose root folder (default "datasets") holds
//
//	manifest.json                              what the export produced (see below)
//	datasets/<dataset>/fineweb_val_NNNNNN.bin  validation shards
//	datasets/<dataset>/fineweb_train_NNNNNN.bin training shards
//	tokenizers/<file>                          each tokenizer's model_path, vocab_path or path
//	docs_selected.jsonl                        the frozen documents (--with-docs)
//	docs_selected.source_manifest.json
//
// and the same layout locally under Options.Out with the root folder dropped
// (Out/manifest.json, Out/datasets/fineweb10B_sp1024/..., Out/tokenizers/...).
// The manifest names the datasets ("fineweb10B_sp1024" for --variant
// sp1024), each with its tokenizer_name and stats (files_val, files_train,
// tokens_val, tokens_train), the tokenizers with their artifact paths, and
// shard_size: every shard but a split's last holds shard_size tokens, which
// gives each shard's exact size.
//
// Shards are checked with package data's readers; the shard format is
// documented there. Downloading is tooling: a submission trains and
// evaluates on data already present, so this package is not counted in
// the code size (golf.Tooling).
package download
