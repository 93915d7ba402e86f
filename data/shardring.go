package data

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
)

// shardRing is what both training loaders keep of their shards: the files
// in order (read cyclically), the open one (memory-mapped) and its index.
type shardRing struct {
	files   []string
	fileIdx int    // index in files of the open shard
	shard   *Shard // the open shard
	done    *loaderResources
}

// loaderResources is what a loader's cleanup releases when the loader is
// dropped without Close.
type loaderResources struct{ shard *Shard }

// newShardRing checks a loader's arguments; what names the loader in
// errors.
func newShardRing(what string, files []string, rank, worldSize int) (shardRing, error) {
	if len(files) == 0 {
		return shardRing{}, fmt.Errorf("data: %s: no training shards given", what)
	}
	if worldSize < 1 {
		return shardRing{}, fmt.Errorf("data: %s: world size %d, want at least 1", what, worldSize)
	}
	if rank < 0 || rank >= worldSize {
		return shardRing{}, fmt.Errorf("data: %s: rank %d outside [0, %d)", what, rank, worldSize)
	}
	return shardRing{files: slices.Clone(files), done: &loaderResources{}}, nil
}

// releaseOnDrop closes the open shard of r when owner becomes unreachable
// without Close. Loaders hand out copies, never their mapping, so this is
// safe.
func releaseOnDrop[T any](owner *T, r *shardRing) {
	runtime.AddCleanup(owner, func(res *loaderResources) {
		if res.shard != nil {
			res.shard.Close()
		}
	}, r.done)
}

// use makes s, just opened from files[i], the open shard, closing the
// previous one.
func (r *shardRing) use(i int, s *Shard) {
	if r.shard != nil {
		r.shard.Close()
	}
	r.shard, r.done.shard = s, s
	r.fileIdx = i
}

// restore checks a saved position — shard index file, its base name (when
// not empty, or always with requireName) and the offset pos, called posName
// in errors — against the files, opens the shard through open unless it is
// the open one, and returns the offset.
func (r *shardRing) restore(what string, file int, name string, requireName bool, posName string, pos int64, open func(int) error) (int, error) {
	if file < 0 || file >= len(r.files) {
		return 0, fmt.Errorf("data: %s: restore: shard index %d outside the %d training shards", what, file, len(r.files))
	}
	if (name != "" || requireName) && name != filepath.Base(r.files[file]) {
		return 0, fmt.Errorf("data: %s: restore: the state is for shard %q, but shard %d is %s", what, name, file, r.files[file])
	}
	if r.shard == nil || r.fileIdx != file {
		if err := open(file); err != nil {
			return 0, fmt.Errorf("data: %s: restore: %w", what, err)
		}
	}
	if pos < 0 || pos > int64(r.shard.Len()) {
		return 0, fmt.Errorf("data: %s: restore: %s %d outside shard %s of %d tokens", what, posName, pos, r.files[file], r.shard.Len())
	}
	return int(pos), nil
}

// close releases the open shard; the loader cannot read afterwards, except
// after a restore.
func (r *shardRing) close() error {
	if r.shard == nil {
		return nil
	}
	err := r.shard.Close()
	r.shard, r.done.shard = nil, nil
	return err
}
