// Package quant quantizes and compresses trained weights into the challenge's
// 16,000,000-byte artifact, and measures how schemes trade bytes for val_bpb.
package quant
