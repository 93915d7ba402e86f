//go:build !linux

package atomicfile

// Exchange reports ok false: only Linux has an atomic exchange of two
// directory entries (renameat2 with RENAME_EXCHANGE) here; callers fall
// back to two renames.
func Exchange(a, b string) (ok bool, err error) { return false, nil }
