package jsonltext

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		`{"text": "a", "id": 1}`:        "a",
		`{"text": "x", "text": "last"}`: "last",
		`{"Text": "no", "text": "yes"}`: "yes",
		`{"text": "\u00e9\n"}`:          "\u00e9\n",
	} {
		if got, err := Text([]byte(in)); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		`{"Text": "capitalised"}`: `no "text" field`,
		`{"TEXT": "upper"}`:       `no "text" field`,
		`{"text": 3}`:             "a number",
		`{"text": null}`:          "null",
		`["text"]`:                "not a JSON object",
		`{"text": "a"`:            "not a JSON object",
	} {
		if _, err := Text([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
