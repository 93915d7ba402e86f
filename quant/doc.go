// Package quant quantizes and compresses trained weights into the challenge's
// 16,000,000-byte artifact and reads artifacts back.
//
// The pipeline:
//
//	w (model.Weights) --Quantize(Scheme)--> Quantized --Pack(Meta, codec)--> artifact bytes
//	artifact file --ReadArtifact--> Artifact --Model()--> model.Config + dequantized model.Weights
//
// PackModel does the first line in one call (golf pack's path).
//
// A Scheme routes each tensor to a Rule by its parameter class (model.Class,
// attached to every weight by the model's registry: attention, mlp,
// embedding, head, table, control, frozen) and size: keep as fp16/fp32, or
// store signed integer symbols of 2..8 bits times a per-row fp16 scale
// (per-tensor fp32 for tensors that are not 2-D). A rule's clip decides the
// scale: a torch-exact percentile (the reference), k times the row's
// standard deviation (SD clip), the MSE-optimal clip from a grid, or
// max |w|. GPTQ (with input Hessians from calibration, CollectHessians or
// Calibrate) re-rounds a matrix column by column with error feedback;
// AWQ-lite keeps the most salient input-column groups on a finer grid;
// LQER adds low-rank corrections of the largest errors. Reference()
// reproduces the challenge's int8 scheme bit for bit (tested against
// PyTorch) and Record() the final record's (PR #2135; tested against its
// own code, testdata/gen_record_reference.py); Schemes() lists them and the
// recipes in between.
//
// Pack lays out each int tensor's symbols (row-major, transposed or
// bit-packed; optionally rows in similarity order, the order stored in
// log2(rows!) bits), one stream per tensor or per class, gathers scales and
// float tensors into byte-shuffled fp16/fp32 remainders, and compresses
// every stream with one codec or, with AutoCodec, the smallest of the
// built-in ones (package quant/codec; its cm coder is a context-mixing
// model of weight symbols). The artifact format, with its byte layout, is
// documented in artifact.go; it carries typed metadata (Meta: the model
// config and evaluation settings), each tensor's class and initialiser, and
// a CRC-32C over the whole file; ReadArtifact validates everything before
// it returns weights.
//
// Size accounting (size.go) follows the challenge: model bytes (the artifact
// file) plus code bytes (MeasureCode over golf.Source(), the counted source
// embedded by the root package, stripped of comments and compressed) must
// not exceed Budget.
//
// Benchmarks (quant/bench) and synthetic weights (quant/synthetic) are
// tooling in their own packages, outside the counted code.
package quant
