package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/paramgolf/golf/quant/codec"
)

// External is a codec that runs an installed compressor on each stream
// through temporary files: the reference implementations (zstd, brotli, xz,
// lrzip, zpaq) measured on exactly the bytes golf's own codecs get. An
// artifact using one can only be read by a process that registered it
// (Register), so these are for benchmarks, never for golf pack.
type External struct {
	name string
	tool string // executable
	// compress and decompress build the argument lists for input file in
	// and output file out (both in a scratch directory that is also the
	// working directory).
	compress, decompress func(in, out string) []string
	// stdout: the tool writes its result to stdout instead of out.
	stdout bool
}

// Name returns the codec's name, e.g. "lrzip-z9".
func (e External) Name() string { return e.name }

// Tool returns the executable the codec runs.
func (e External) Tool() string { return e.tool }

// Externals returns the external reference compressors golf compares
// against, with the settings the challenge's records and the issue name:
//
//	zstd-22     zstd --ultra -22
//	brotli-q11  brotli -q 11 --lgwin 24
//	xz-9e       xz -9e (.xz container)
//	lrzip-z9    lrzip -z -L 9 (its ZPAQ back end, as the record PR #2135)
//	zpaq-m5     zpaq a -m5 (maximum context mixing; the archive format)
//
// Each tool's container adds a few dozen bytes per stream.
func Externals() []External {
	return []External{
		{name: "zstd-22", tool: "zstd",
			compress:   func(in, out string) []string { return []string{"-q", "-f", "--ultra", "-22", "-o", out, in} },
			decompress: func(in, out string) []string { return []string{"-q", "-f", "-d", "-o", out, in} }},
		{name: "brotli-q11", tool: "brotli",
			compress:   func(in, out string) []string { return []string{"-f", "-q", "11", "--lgwin=24", "-o", out, in} },
			decompress: func(in, out string) []string { return []string{"-f", "-d", "-o", out, in} }},
		{name: "xz-9e", tool: "xz", stdout: true,
			compress:   func(in, _ string) []string { return []string{"-9e", "-c", "-k", in} },
			decompress: func(in, _ string) []string { return []string{"-d", "-c", "-k", in} }},
		{name: "lrzip-z9", tool: "lrzip",
			compress:   func(in, out string) []string { return []string{"-q", "-f", "-z", "-L", "9", "-o", out, in} },
			decompress: func(in, out string) []string { return []string{"-q", "-f", "-d", "-o", out, in} }},
		{name: "zpaq-m5", tool: "zpaq",
			compress:   func(in, out string) []string { return []string{"a", out, in, "-m5"} },
			decompress: func(in, out string) []string { return []string{"x", in, "-to", out} }},
	}
}

// Available reports whether the tool is installed.
func (e External) Available() bool {
	_, err := exec.LookPath(e.tool)
	return err == nil
}

// run executes the tool on data and returns what it wrote.
func (e External) run(data []byte, args func(in, out string) []string, decompress bool) ([]byte, error) {
	dir, err := os.MkdirTemp("", "golf-"+e.name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in, out := "in.bin", "out.bin"
	if e.tool == "zpaq" {
		if decompress {
			in, out = "in.zpaq", "x"
		} else {
			in, out = "data", "out.zpaq"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, in), data, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(e.tool, args(in, out)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", e.name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if e.stdout {
		return stdout.Bytes(), nil
	}
	if e.tool == "zpaq" && decompress {
		out = filepath.Join(out, "data")
	}
	return os.ReadFile(filepath.Join(dir, out))
}

// Compress runs the tool's compressor on src.
func (e External) Compress(src []byte, _ codec.Hint) ([]byte, error) {
	return e.run(src, e.compress, false)
}

// Decompress runs the tool's decompressor and checks the length.
func (e External) Decompress(src []byte, rawLen int, _ codec.Hint) ([]byte, error) {
	out, err := e.run(src, e.decompress, true)
	if err != nil {
		return nil, err
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("%s: %w: %d bytes, want %d", e.name, codec.ErrCorrupt, len(out), rawLen)
	}
	return out, nil
}

// RegisterExternals registers every installed external codec (once per
// process) and returns their names and a note for each tool that is not
// installed.
func RegisterExternals() (names, notes []string) {
	for _, e := range Externals() {
		if !e.Available() {
			notes = append(notes, fmt.Sprintf("%s not installed: column %s skipped", e.tool, e.name))
			continue
		}
		if _, err := codec.ByName(e.name); err != nil {
			if err := codec.Register(e); err != nil {
				notes = append(notes, err.Error())
				continue
			}
		}
		names = append(names, e.name)
	}
	if len(names) > 0 {
		// lrzip and zpaq spend most of a small stream's time starting up
		// (lrzip sizes its buffers from the machine's memory), so their
		// MB/s on a tiny model's dozens of streams are far below their
		// rate on one large file.
		notes = append(notes, "external codecs' MB/s are wall time per stream including starting the tool and its temporary files")
	}
	return names, notes
}
