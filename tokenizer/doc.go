// Package tokenizer loads SentencePiece BPE models and encodes text with the
// same ids as the reference C++ implementation, and provides the byte table
// that the challenge's bits-per-byte metric uses.
package tokenizer
