//go:build linux

package atomicfile

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Exchange swaps the entries at paths a and b in one atomic step
// (renameat2 with RENAME_EXCHANGE): a reader sees either the old or the new
// entry under each name, never neither. ok is false, with a nil error, where
// the file system or kernel cannot do it; the caller then falls back to two
// renames.
func Exchange(a, b string) (ok bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EXDEV):
		return false, nil
	}
	return false, err
}
