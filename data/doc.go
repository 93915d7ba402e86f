// Package data reads and writes the challenge's token shard files, builds
// shards from text, and streams training and validation batches from them.
//
// # Shard files
//
// A shard is the challenge's binary format (write_datafile in the export
// script, load_data_shard in train_gpt.py), all little-endian:
//
//	offset  size      content
//	0       4         int32 magic   = 20240520 (ShardMagic)
//	4       4         int32 version = 1        (ShardVersion)
//	8       4         int32 count   = number of tokens, 0 <= count < 2^31
//	12      1012      int32 × 253 reserved, written as zero
//	1024    2·count   uint16 token ids
//
// so the file is exactly 1024 + 2·count bytes. Readers (ReadShard,
// OpenShard, LoadValidation, NewLoader) check the header size, magic,
// version, the sign of count and the exact file size, and report a fault as
// a *ShardError naming the file (errors.Is(err, ErrInvalidShard)); the
// reserved words are not checked, as the reference does not check them.
// Writers (WriteShard, ShardWriter) publish a shard under its final name only
// when it is complete.
//
// A dataset is a directory of shards named fineweb_val_NNNNNN.bin (the
// validation split) and fineweb_train_NNNNNN.bin (training), read in name
// order (ValFiles, TrainFiles). Each split is one token stream: documents,
// each a BOS token (id 1) followed by its text's ids, no EOS, concatenated;
// a document may straddle two shards.
//
// # Building shards
//
// Build tokenizes documents into such a directory, as the challenge's
// export script does: the first ValDocs documents (50,000 for the
// challenge) become the validation split, the rest the training split, in
// shards of at most ShardTokens tokens (100,000,000). Inputs are plain text
// (one document per file, or per blank-line-separated block), JSONL with a
// "text" field, or either compressed with gzip or zstd, from files or any
// io.Reader. The inputs are streamed and encoded in parallel batches, so
// memory does not grow with the corpus. The shards appear under their final
// names only when the whole build has succeeded, followed by manifest.json
// (Manifest): tokenizer, inputs, and the documents, tokens, text bytes and
// val_bpb target bytes of each split and shard, with each shard's SHA-256.
// BuildDefault builds the embedded corpus (package corpus).
//
// # Batches
//
// NewLoader streams training batches with the semantics of the reference's
// DistributedTokenLoader (see Loader), and LoadValidation returns the whole
// validation stream cut to whole sequences plus one token. InspectShard
// counts a shard's tokens, documents and target bytes.
package data
