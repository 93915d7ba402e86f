package data

import "fmt"

// LoadValidation reads the validation shards (in the order given; ValFiles
// sorts them) into one token stream and truncates it to
// ((n-1)/seqLen)·seqLen + 1 tokens: whole sequences of seqLen inputs plus
// the one token that serves as the last target, as the challenge's
// load_validation_tokens does. It fails if fewer than seqLen+1 tokens exist.
// The stream is read straight into one slice of the final size.
func LoadValidation(files []string, seqLen int) ([]uint16, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("data: validation: no shards given")
	}
	if seqLen < 1 {
		return nil, fmt.Errorf("data: validation: sequence length %d, want at least 1", seqLen)
	}
	counts := make([]int64, len(files))
	var total int64
	for i, path := range files {
		n, err := ShardTokenCount(path)
		if err != nil {
			return nil, fmt.Errorf("data: validation: %w", err)
		}
		counts[i] = n
		total += n
	}
	usable := (total - 1) / int64(seqLen) * int64(seqLen)
	if total < 1 || usable <= 0 {
		return nil, fmt.Errorf("data: validation: %d tokens in %d shards is too short for sequence length %d (need at least %d)", total, len(files), seqLen, seqLen+1)
	}
	keep := usable + 1
	out := make([]uint16, keep)
	var at int64
	for i, path := range files {
		if at == keep {
			break
		}
		f, n, err := openShardFile(path)
		if err != nil {
			return nil, fmt.Errorf("data: validation: %w", err)
		}
		if n != counts[i] {
			f.Close()
			return nil, fmt.Errorf("data: validation: shard %s changed while being read (%d tokens, then %d)", path, counts[i], n)
		}
		k := min(n, keep-at)
		err = readTokens(path, f, out[at:at+k])
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("data: validation: %w", err)
		}
		at += k
	}
	return out, nil
}
