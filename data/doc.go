// Package data reads and writes the challenge's token shard files, builds
// shards from text, and streams training and validation batches from them.
package data
