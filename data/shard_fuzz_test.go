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

// FuzzReadShard feeds arbitrary shard files to every shard reader: none
// panics, each accepts exactly the valid files, and all return the same
// tokens. The input is kept small, so that 60 s of fuzzing runs tens of
// thousands of executions and minimizing is quick: the 12 header bytes
// that matter (magic, version, count), one byte repeated over the reserved
// words, the payload, and a length to cut the file to (truncated headers
// and payloads); each file is written to a RAM disk when there is one.
//
//	go test ./data -run XXX -fuzz FuzzReadShard -fuzztime 60s
func FuzzReadShard(f *testing.F) {
	add := func(b []byte, reserved byte, cut int) {
		head := make([]byte, 12)
		copy(head, b)
		var payload []byte
		if len(b) > 1024 {
			payload = b[1024:]
		}
		f.Add(head, reserved, payload, uint16(cut))
	}
	small, err := EncodeShard([]uint16{1, 300, 65535, 0, 7})
	if err != nil {
		f.Fatal(err)
	}
	add(small, 0, len(small))
	add(small, 0xff, len(small))
	add(small, 0, 1024)
	add(small, 0, 1023)
	add(small, 0, 11)
	add(small, 0, len(small)-1)
	add(nil, 0, 0)
	for _, count := range []int32{0, 1, 3, -1, 1 << 30} {
		b := shardBytes(ShardMagic, 1, count, 2*int(max(count, 0)%7))
		add(b, 0, len(b))
	}
	add(shardBytes(ShardMagic, 2, 0, 0), 0, 1024)
	add(shardBytes(0, 1, 0, 0), 0, 1024)
	dir := fuzzDir(f)
	path := filepath.Join(dir, "fuzz.bin")
	f.Fuzz(func(t *testing.T, head []byte, reserved byte, payload []byte, cut uint16) {
		b := make([]byte, 1024, 1024+len(payload))
		copy(b, head[:min(len(head), 12)])
		for i := 12; i < 1024; i++ {
			b[i] = reserved
		}
		b = append(b, payload...)
		b = b[:min(int(cut), len(b))]
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

// fuzzDir is a folder for the fuzz target's file: on /dev/shm when it is a
// RAM disk (a write there is ~100x cheaper than on ext4), else a temporary
// folder of the test.
func fuzzDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "golf-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return f.TempDir()
}
