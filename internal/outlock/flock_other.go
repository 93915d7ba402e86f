//go:build !unix

package outlock

import (
	"errors"
	"os"
)

// Without flock the lock is the holder record alone: a record of this
// host's live process is honoured (see Holder.stale), one of a process
// that ended is taken over.
var errWouldBlock = errors.New("lock held")

func tryLock(*os.File) error { return nil }

func unlock(*os.File) {}

func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, nil
	}
	return os.SameFile(a, b), nil
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p != nil
}

const flockWorks = false
