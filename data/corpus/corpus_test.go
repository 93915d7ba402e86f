package corpus

import (
	"strings"
	"testing"
)

func TestDocumentsAndSplit(t *testing.T) {
	docs, err := Documents()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 233 {
		t.Fatalf("got %d documents, want the 233 addresses", len(docs))
	}
	seen := map[string]bool{}
	total := 0
	for _, d := range docs {
		if d.ID == "" || d.Year < 1790 || d.Year > 2021 || len(d.Text) < 1000 {
			t.Errorf("implausible document %+v", d.ID)
		}
		if seen[d.ID] {
			t.Errorf("duplicate id %s", d.ID)
		}
		seen[d.ID] = true
		total += len(d.Text)
	}
	if total < 10_000_000 || total > 11_000_000 {
		t.Errorf("corpus has %d bytes of text, want about 10.8 MB", total)
	}
	// The frozen order is part of the contract: the split must never move.
	if docs[0].ID != "1909_william_h_taft_r" || docs[ValDocs-1].ID != "1823_james_monroe_dr" {
		t.Errorf("frozen order changed: first %s, last validation %s", docs[0].ID, docs[ValDocs-1].ID)
	}
	val, train, err := Split()
	if err != nil {
		t.Fatal(err)
	}
	if len(val) != ValDocs || len(train) != 233-ValDocs {
		t.Fatalf("split %d/%d", len(val), len(train))
	}
	if !strings.HasPrefix(docs[0].Text, val[0].Text[:20]) {
		t.Error("validation split does not start the frozen order")
	}
}
