package golden

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// file writes a golden file of header and data (gzip of magic, length,
// header, data) and returns its path.
func file(t *testing.T, magic, header string, data []byte) string {
	t.Helper()
	var raw bytes.Buffer
	raw.WriteString(magic)
	binary.Write(&raw, binary.LittleEndian, uint32(len(header)))
	raw.WriteString(header)
	raw.Write(data)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw.Bytes())
	w.Close()
	path := filepath.Join(t.TempDir(), "case.golden.gz")
	if err := os.WriteFile(path, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func le(vals ...uint32) []byte {
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return out
}

func TestReadValues(t *testing.T) {
	header := `{"case":"c","seq":3,"tensors":{"x":{"dtype":"float32","shape":[2],"offset":0},"ids":{"dtype":"int32","shape":[1,2],"offset":8}}}`
	data := le(math.Float32bits(1.5), math.Float32bits(-2), 7, uint32(0xFFFFFFFF))
	var h struct {
		Case string `json:"case"`
		Seq  int    `json:"seq"`
	}
	ts, err := Read(file(t, Magic, header, data), &h)
	if err != nil {
		t.Fatal(err)
	}
	if h.Case != "c" || h.Seq != 3 {
		t.Errorf("header %+v", h)
	}
	x, err := ts.Float32s("x")
	if err != nil || !slices.Equal(x, []float32{1.5, -2}) {
		t.Errorf("x = %v, %v", x, err)
	}
	ids, err := ts.Int32s("ids")
	if err != nil || !slices.Equal(ids, []int32{7, -1}) {
		t.Errorf("ids = %v, %v", ids, err)
	}
	if !ts.Has("x") || ts.Has("y") || !slices.Equal(ts.Shape("ids"), []int{1, 2}) || !slices.Equal(ts.Names(), []string{"ids", "x"}) {
		t.Errorf("index: has x %v, y %v, shape %v, names %v", ts.Has("x"), ts.Has("y"), ts.Shape("ids"), ts.Names())
	}
	if _, err := ts.Int32s("x"); err == nil || !strings.Contains(err.Error(), "is float32, want int32") {
		t.Errorf("x as int32: %v", err)
	}
	if _, err := ts.Float32s("y"); err == nil || !strings.Contains(err.Error(), `no tensor "y"`) {
		t.Errorf("missing tensor: %v", err)
	}
}

func TestReadRejects(t *testing.T) {
	ok := `{"tensors":{"x":{"dtype":"float32","shape":[2],"offset":0}}}`
	for _, c := range []struct {
		name, magic, header string
		data                []byte
		want                string
	}{
		{"magic", "GOLFXXX1", ok, le(0, 0), "not a golden file"},
		{"header json", Magic, `{"tensors":`, nil, "header"},
		{"beyond the data", Magic, ok, le(0), "beyond the data"},
		{"negative offset", Magic, `{"tensors":{"x":{"dtype":"float32","shape":[1],"offset":-4}}}`, le(0), "beyond the data"},
		{"dtype", Magic, `{"tensors":{"x":{"dtype":"float64","shape":[1],"offset":0}}}`, le(0, 0), "dtype"},
		{"shape", Magic, `{"tensors":{"x":{"dtype":"int32","shape":[-1],"offset":0}}}`, le(0), "shape"},
	} {
		_, err := Read(file(t, c.magic, c.header, c.data), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// Not gzip at all, and a header length past the end.
	path := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(path, []byte("GOLFGLD1"), 0o644)
	if _, err := Read(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("plain file: %v", err)
	}
	var raw bytes.Buffer
	w := gzip.NewWriter(&raw)
	w.Write(append([]byte(Magic), le(1000)...))
	w.Close()
	os.WriteFile(path, raw.Bytes(), 0o644)
	if _, err := Read(path, nil); err == nil || !strings.Contains(err.Error(), "beyond the file") {
		t.Errorf("header length: %v", err)
	}
}
