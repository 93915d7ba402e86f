package data

import (
	"fmt"
	"os"
	"path/filepath"
)

// Split names a part of a dataset: "train" or "val", as in the challenge's
// file names fineweb_train_000000.bin and fineweb_val_000000.bin.
type Split string

// The two splits of a dataset.
const (
	Train Split = "train"
	Val   Split = "val"
)

// ShardName returns the file name of shard index of a split, e.g.
// ShardName(Val, 0) = "fineweb_val_000000.bin". Indexes have at least six
// digits, so the names sort in index order up to a million shards.
func ShardName(split Split, index int) string {
	return fmt.Sprintf("fineweb_%s_%06d.bin", split, index)
}

// shardPattern is the glob that matches a split's shards.
func shardPattern(split Split) string { return "fineweb_" + string(split) + "_*.bin" }

// TrainFiles returns the training shards in dir (fineweb_train_*.bin),
// sorted by name, or an error if there are none.
func TrainFiles(dir string) ([]string, error) { return splitFiles(dir, Train) }

// ValFiles returns the validation shards in dir (fineweb_val_*.bin, not
// the byte sidecar's fineweb_val_bytes_*.bin), sorted by name, or an error
// if there are none.
func ValFiles(dir string) ([]string, error) { return splitFiles(dir, Val) }

func splitFiles(dir string, split Split) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %s shards: %w", split, err)
	}
	var files []string
	for _, e := range entries { // ReadDir sorts by name
		if ok, _ := filepath.Match(shardPattern(split), e.Name()); ok && !e.IsDir() && !isSidecar(e.Name()) {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("data: no %s shards (%s) in %s", split, shardPattern(split), dir)
	}
	return files, nil
}
