// Package corpus embeds the default training corpus: the 233 State of the Union
// addresses (1790-2021), real public-domain English prose used wherever FineWeb
// is not at hand (tests, benchmarks, the README's main job).
//
// The addresses are stored as zstd-compressed JSONL (one object per address with
// the fields id, year, name, party and text) in a frozen shuffled order, the
// way the challenge freezes FineWeb's document list: the first [ValDocs]
// documents are the validation split and the rest are the training split. The
// split is fixed by the file itself, so every build of the default shards sees
// the same documents on each side. See SOURCE.md for the origin and licence.
package corpus

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

//go:embed sotu.jsonl.zst
var compressed []byte

// Name identifies the embedded corpus in manifests and logs.
const Name = "sotu-1790-2021"

// ValDocs is the number of leading documents that form the validation split
// (24 of 233 addresses, about 10 % of the text).
const ValDocs = 24

// Document is one State of the Union address.
type Document struct {
	ID    string `json:"id"`    // file stem in the source dataset, e.g. "1790_george_washington_n"
	Year  int    `json:"year"`  // year the address was delivered
	Name  string `json:"name"`  // the president's name
	Party string `json:"party"` // party label as given by the source
	Text  string `json:"text"`  // the address itself
}

// JSONL returns the corpus as uncompressed JSONL bytes in its frozen order,
// one document per line with a "text" field, the format `golf data build --jsonl`
// and [Documents] read.
func JSONL() ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("corpus: zstd decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(compressed, nil)
	if err != nil {
		return nil, fmt.Errorf("corpus: decompress embedded sotu.jsonl.zst: %w", err)
	}
	return out, nil
}

// Documents returns every document in the frozen order: validation first
// (the first ValDocs), then training.
func Documents() ([]Document, error) {
	raw, err := JSONL()
	if err != nil {
		return nil, err
	}
	var docs []Document
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var d Document
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("corpus: embedded sotu.jsonl line %d: %w", line, err)
		}
		docs = append(docs, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus: reading embedded sotu.jsonl: %w", err)
	}
	return docs, nil
}

// Split returns the validation and training documents.
func Split() (val, train []Document, err error) {
	docs, err := Documents()
	if err != nil {
		return nil, nil, err
	}
	if len(docs) <= ValDocs {
		return nil, nil, fmt.Errorf("corpus: %d documents, need more than %d", len(docs), ValDocs)
	}
	return docs[:ValDocs], docs[ValDocs:], nil
}
