// Package quant quantizes and compresses trained weights into the challenge's
// 16,000,000-byte artifact, and measures how schemes trade bytes for val_bpb.
//
// The pipeline:
//
//	w (model.Weights) --Quantize(Scheme)--> Quantized --Pack(codec)--> artifact bytes
//	artifact file --ReadArtifact--> Artifact --Weights()--> dequantized model.Weights
//
// A Scheme routes each tensor to a Rule by its parameter class (model.Class,
// attached to every weight by the model's registry: attention, mlp,
// embedding, head, table, control, frozen) and size: keep as fp16/fp32, or store signed integer
// symbols of 2..8 bits times a per-row fp16 scale (per-tensor fp32 for
// tensors that are not 2-D). A rule's clip decides the scale: a torch-exact
// percentile (the reference), k times the row's standard deviation, the
// MSE-optimal clip from a grid, or max |w|. GPTQ (with input Hessians from
// calibration) re-rounds a matrix column by column with error feedback.
// Reference() reproduces the challenge's int8 scheme bit for bit (tested
// against PyTorch); Schemes() lists it and the recipes the records use.
//
// Pack lays out each int tensor's symbols (row-major, column-major or
// bit-packed), gathers scales and float tensors into byte-planar streams,
// and compresses every stream with one codec or, with AutoCodec, the
// smallest of all (package quant/codec). The artifact format, with its byte
// layout, is documented in artifact.go; it carries a CRC-32C over the whole
// file and ReadArtifact validates everything before it returns weights.
//
// Size accounting (size.go) follows the challenge: model bytes (the artifact
// file) plus code bytes (MeasureCode over the module's own source, embedded
// by the root package golf) must not exceed Budget.
//
// Bench runs schemes x codecs x layouts and reports bytes, bits per
// parameter, the ratio to the order-0 entropy bound, speeds, the weight
// error and, given an EvalFunc, the val_bpb cost of the round trip.
package quant
