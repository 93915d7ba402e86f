// Package jsonltext reads the document of one JSONL record: the one rule
// golf data build and golf tokenize --jsonl share (FineWeb's
// docs_selected.jsonl holds one {"text": ...} object per line).
package jsonltext

import (
	"encoding/json"
	"fmt"
)

// Text returns the "text" string of one JSONL record. The key must be
// exactly "text" (encoding/json would also match "Text" or "TEXT" into a
// struct field); the last one wins if repeated, as in Python's json.loads;
// other fields are ignored. A record that is not an object, has no "text"
// field or has a non-string one is an error saying so.
func Text(line []byte) (string, error) {
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	raw, ok := rec["text"]
	if !ok {
		return "", fmt.Errorf(`the record has no "text" field`)
	}
	var text string
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf(`the "text" field is %s, not a string`, kind(raw))
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", fmt.Errorf(`the "text" field: %w`, err)
	}
	return text, nil
}

func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
