package data

import (
	"fmt"
	"unsafe"
)

// Shard is an open shard file whose tokens can be read without copying.
// On Linux, macOS and the BSDs the file is memory-mapped read-only, so
// opening even a 200 MB shard costs almost nothing and pages are read from
// the page cache as they are touched; elsewhere (and on big-endian hosts,
// where the bytes must be reordered) the tokens are read into memory once.
//
// The slice from Tokens is valid until Close and must not be written to
// (a mapped page is read-only: a write faults). Truncating the file while it
// is mapped makes later reads fault, as with any memory-mapped file.
type Shard struct {
	path    string
	tokens  []uint16
	mapping []byte // the whole mapped file; nil when the tokens were read
	closed  bool
}

// OpenShard opens a shard for reading, validating its header and size as
// ReadShard does.
func OpenShard(path string) (*Shard, error) {
	f, count, err := openShardFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() // a mapping outlives its descriptor
	s := &Shard{path: path}
	if canMap && hostLittleEndian {
		m, err := mapFile(f, ShardFileSize(count))
		if err == nil {
			s.mapping = m
			if count > 0 {
				s.tokens = unsafe.Slice((*uint16)(unsafe.Pointer(&m[ShardHeaderBytes])), count)
			}
			return s, nil
		}
		// Some file systems cannot be mapped: read the file instead.
	}
	s.tokens = make([]uint16, count)
	if err := readTokens(path, f, s.tokens); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the file name the shard was opened from.
func (s *Shard) Path() string { return s.path }

// Len returns the number of tokens.
func (s *Shard) Len() int { return len(s.tokens) }

// Tokens returns the shard's tokens (read-only; valid until Close).
func (s *Shard) Tokens() []uint16 { return s.tokens }

// Mapped reports whether the tokens are memory-mapped rather than read.
func (s *Shard) Mapped() bool { return s.mapping != nil }

// Close releases the mapping or the buffer. Calling it again does nothing.
func (s *Shard) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.tokens = nil
	if s.mapping != nil {
		m := s.mapping
		s.mapping = nil
		if err := unmapFile(m); err != nil {
			return fmt.Errorf("data: unmap shard %s: %w", s.path, err)
		}
	}
	return nil
}
