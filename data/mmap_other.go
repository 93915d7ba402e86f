//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package data

import (
	"errors"
	"os"
)

// canMap is false where syscall.Mmap is not available: OpenShard reads the
// tokens into memory instead.
const canMap = false

func mapFile(*os.File, int64) ([]byte, error) { return nil, errors.New("memory mapping not supported") }

func unmapFile([]byte) error { return nil }
