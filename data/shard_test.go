package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goldenTokens are the tokens of testdata/golden_shard.bin, written by the
// numpy writer in testdata/gen_reference.py.
func goldenTokens() []uint16 {
	t := make([]uint16, 1000)
	for i := range t {
		t[i] = uint16((i*7919 + 13) % 65536)
	}
	return t
}

func TestReadShardGolden(t *testing.T) {
	got, err := ReadShard("testdata/golden_shard.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, goldenTokens()) {
		t.Fatal("ReadShard of the numpy-written golden shard differs from its tokens")
	}
	s, err := OpenShard("testdata/golden_shard.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Equal(s.Tokens(), goldenTokens()) || s.Len() != 1000 {
		t.Fatal("OpenShard of the golden shard differs from its tokens")
	}
	if canMap && hostLittleEndian && !s.Mapped() {
		t.Error("OpenShard did not memory-map the file on a platform that can")
	}
}

func TestWriteShardMatchesGoldenBytes(t *testing.T) {
	want, err := os.ReadFile("testdata/golden_shard.bin")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.bin")
	if err := WriteShard(path, goldenTokens()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("WriteShard's bytes differ from the numpy writer's")
	}
	enc, err := EncodeShard(goldenTokens())
	if err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("EncodeShard differs from the numpy writer's bytes (err %v)", err)
	}
}

func TestShardRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, n := range []int{0, 1, 2, 511, 512, 513, 100_003} {
		tokens := make([]uint16, n)
		for i := range tokens {
			tokens[i] = uint16(rng.UintN(65536))
		}
		if n > 2 {
			tokens[0], tokens[1] = 0, 65535
		}
		path := filepath.Join(dir, "shard.bin")
		if err := WriteShard(path, tokens); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != int64(1024+2*n) {
			t.Errorf("n=%d: file size %d, want %d", n, st.Size(), 1024+2*n)
		}
		raw, _ := os.ReadFile(path)
		for i, want := range []uint32{20240520, 1, uint32(n)} {
			if got := binary.LittleEndian.Uint32(raw[4*i:]); got != want {
				t.Errorf("n=%d: header word %d = %d, want %d", n, i, got, want)
			}
		}
		if !bytes.Equal(raw[12:1024], make([]byte, 1012)) {
			t.Errorf("n=%d: reserved header words are not zero", n)
		}
		got, err := ReadShard(path)
		if err != nil || !slices.Equal(got, tokens) {
			t.Fatalf("n=%d: ReadShard round trip failed (err %v)", n, err)
		}
		dec, err := DecodeShard(path, raw)
		if err != nil || !slices.Equal(dec, tokens) {
			t.Fatalf("n=%d: DecodeShard round trip failed (err %v)", n, err)
		}
		s, err := OpenShard(path)
		if err != nil || !slices.Equal(s.Tokens(), tokens) {
			t.Fatalf("n=%d: OpenShard round trip failed (err %v)", n, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if c, err := ShardTokenCount(path); err != nil || c != int64(n) {
			t.Fatalf("ShardTokenCount = %d, %v; want %d", c, err, n)
		}
	}
}

// shardBytes builds a shard file by hand with the given header words and
// payload length, for the validation tests.
func shardBytes(magic, version, count int32, payloadBytes int) []byte {
	b := make([]byte, 1024+payloadBytes)
	binary.LittleEndian.PutUint32(b[0:], uint32(magic))
	binary.LittleEndian.PutUint32(b[4:], uint32(version))
	binary.LittleEndian.PutUint32(b[8:], uint32(count))
	return b
}

func TestShardValidationErrors(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want []string // substrings of the error
	}{
		{"empty file", nil, []string{"truncated header", "0 bytes"}},
		{"short header", shardBytes(ShardMagic, 1, 0, 0)[:1000], []string{"truncated header", "1000 bytes", "1024"}},
		{"wrong magic", shardBytes(12345, 1, 0, 0), []string{"wrong magic number 12345", "20240520"}},
		{"byte-swapped magic", func() []byte {
			b := shardBytes(0, 1, 0, 0)
			binary.BigEndian.PutUint32(b, ShardMagic)
			return b
		}(), []string{"wrong magic number"}},
		{"wrong version", shardBytes(ShardMagic, 2, 0, 0), []string{"unsupported version 2", "want 1"}},
		{"negative count", shardBytes(ShardMagic, 1, -5, 0), []string{"negative token count -5"}},
		{"truncated tokens", shardBytes(ShardMagic, 1, 10, 18), []string{"token count 10", "1044 bytes", "has 1042", "truncated"}},
		{"odd size", shardBytes(ShardMagic, 1, 10, 21), []string{"token count 10", "1044", "1045", "trailing"}},
		{"trailing bytes", shardBytes(ShardMagic, 1, 1, 4), []string{"token count 1", "1026", "1028", "trailing"}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".bin")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s accepted an invalid shard", what)
				}
				if !errors.Is(err, ErrInvalidShard) {
					t.Errorf("%s: error %v is not ErrInvalidShard", what, err)
				}
				var se *ShardError
				if !errors.As(err, &se) || se.Path != path {
					t.Errorf("%s: error %v does not carry the path", what, err)
				}
				msg := err.Error()
				for _, w := range append(c.want, path) {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: error %q lacks %q", what, msg, w)
					}
				}
			}
			_, err := ReadShard(path)
			check("ReadShard", err)
			_, err = OpenShard(path)
			check("OpenShard", err)
			_, err = DecodeShard(path, c.data)
			check("DecodeShard", err)
			_, err = ShardTokenCount(path)
			check("ShardTokenCount", err)
			_, err = LoadValidation([]string{path}, 1)
			check("LoadValidation", err)
			_, err = NewLoader([]string{path}, 0, 1)
			check("NewLoader", err)
		})
	}
}

func TestReadShardReservedWordsIgnored(t *testing.T) {
	// The reference reader ignores header words 3..255; so do we.
	b := shardBytes(ShardMagic, 1, 2, 4)
	binary.LittleEndian.PutUint32(b[100:], 77)
	b[1024], b[1026] = 5, 6
	path := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(path, b, 0o644)
	got, err := ReadShard(path)
	if err != nil || !slices.Equal(got, []uint16{5, 6}) {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestReadShardMissingAndDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadShard(filepath.Join(dir, "nope.bin"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.bin") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadShard(dir); !errors.Is(err, ErrInvalidShard) {
		t.Errorf("directory: %v", err)
	}
}

func TestShardWriterStreamsAndPublishesOnClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fineweb_train_000000.bin")
	w, err := CreateShard(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []uint16
	for i := range 50 {
		piece := make([]uint16, i*37)
		for j := range piece {
			piece[j] = uint16(len(all) + j)
		}
		if err := w.Write(piece); err != nil {
			t.Fatal(err)
		}
		all = append(all, piece...)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the final name exists before Close (%v)", err)
		}
	}
	if w.Len() != int64(len(all)) {
		t.Fatalf("Len %d, want %d", w.Len(), len(all))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadShard(path)
	if err != nil || !slices.Equal(got, all) {
		t.Fatalf("streamed shard differs (err %v)", err)
	}
	if err := w.Write([]uint16{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the shard", len(entries))
	}
}

func TestShardWriterAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fineweb_val_000000.bin")
	// An older complete shard must survive an aborted rewrite untouched.
	if err := WriteShard(path, []uint16{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	w, err := CreateShard(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]uint16, 1<<20)) // more than the write buffer: bytes reach the disk
	w.Abort()
	w.Abort()
	got, err := ReadShard(path)
	if err != nil || !slices.Equal(got, []uint16{1, 2, 3}) {
		t.Fatalf("the old shard changed: %v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a temporary file was left behind: %d entries", len(entries))
	}
}

func TestWriteShardToMissingDirectory(t *testing.T) {
	err := WriteShard(filepath.Join(t.TempDir(), "no", "such", "x.bin"), []uint16{1})
	if err == nil || !strings.Contains(err.Error(), "x.bin") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

func TestSplitFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"fineweb_train_000002.bin", "fineweb_train_000000.bin", "fineweb_train_000001.bin",
		"fineweb_val_000000.bin", ".fineweb_train_000003.bin.tmp-123", "fineweb_train_000004.txt",
		"manifest.json",
	} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "fineweb_train_dir.bin"), 0o755)
	tr, err := TrainFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fineweb_train_000000.bin", "fineweb_train_000001.bin", "fineweb_train_000002.bin"}
	for i := range want {
		want[i] = filepath.Join(dir, want[i])
	}
	if !slices.Equal(tr, want) {
		t.Errorf("TrainFiles = %v, want %v", tr, want)
	}
	val, err := ValFiles(dir)
	if err != nil || !slices.Equal(val, []string{filepath.Join(dir, "fineweb_val_000000.bin")}) {
		t.Errorf("ValFiles = %v, %v", val, err)
	}
	empty := t.TempDir()
	if _, err := ValFiles(empty); err == nil || !strings.Contains(err.Error(), "fineweb_val_*.bin") || !strings.Contains(err.Error(), empty) {
		t.Errorf("no val shards: %v", err)
	}
	if _, err := TrainFiles(filepath.Join(empty, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	if ShardName(Val, 3) != "fineweb_val_000003.bin" || ShardName(Train, 1234567) != "fineweb_train_1234567.bin" {
		t.Error("ShardName")
	}
}
