package data

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// validShard is an independent statement of the format: the header's magic
// and version, a non-negative count, and a size of exactly 1024 + 2·count.
func validShard(b []byte) bool {
	if len(b) < 1024 {
		return false
	}
	count := int64(int32(binary.LittleEndian.Uint32(b[8:])))
	return binary.LittleEndian.Uint32(b[0:]) == 20240520 && binary.LittleEndian.Uint32(b[4:]) == 1 &&
		count >= 0 && int64(len(b)) == 1024+2*count
}

// FuzzReadShard feeds arbitrary bytes to every shard reader: none panics,
// each accepts exactly the valid files, and all return the same tokens.
// Every execution writes a file, so cap the minimizer when fuzzing:
//
//	go test ./data -run XXX -fuzz FuzzReadShard -fuzzminimizetime 200x
func FuzzReadShard(f *testing.F) {
	// Small seeds: the minimizer rewrites the file on every attempt.
	small, err := EncodeShard([]uint16{1, 300, 65535, 0, 7})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add(small[:1024])
	f.Add(small[:1023])
	f.Add(small[:len(small)-1])
	f.Add([]byte{})
	for _, count := range []int32{0, 1, 3, -1, 1 << 30} {
		f.Add(shardBytes(ShardMagic, 1, count, 2*int(max(count, 0)%7)))
	}
	f.Add(shardBytes(ShardMagic, 2, 0, 0))
	f.Add(shardBytes(0, 1, 0, 0))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.bin")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		valid := validShard(b)
		read, errRead := ReadShard(path)
		decoded, errDecode := DecodeShard(path, b)
		var opened []uint16
		s, errOpen := OpenShard(path)
		if errOpen == nil {
			opened = slices.Clone(s.Tokens())
			s.Close()
		}
		count, errCount := ShardTokenCount(path)
		for _, e := range []error{errRead, errDecode, errOpen, errCount} {
			if (e == nil) != valid {
				t.Fatalf("valid=%v but errors %v / %v / %v / %v", valid, errRead, errDecode, errOpen, errCount)
			}
		}
		if !valid {
			return
		}
		want := make([]uint16, (len(b)-1024)/2)
		for i := range want {
			want[i] = binary.LittleEndian.Uint16(b[1024+2*i:])
		}
		if !slices.Equal(read, want) || !slices.Equal(decoded, want) || !slices.Equal(opened, want) || count != int64(len(want)) {
			t.Fatal("readers disagree on the tokens")
		}
		// A valid shard re-encodes to the same bytes, reserved words aside.
		enc, err := EncodeShard(read)
		if err != nil || !slices.Equal(enc[:12], b[:12]) || !slices.Equal(enc[1024:], b[1024:]) {
			t.Fatal("EncodeShard does not reproduce the shard")
		}
	})
}
