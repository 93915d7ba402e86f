package quant

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/paramgolf/golf/internal/gosrc"
	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/quant/codec"
)

// Budget is the challenge's artifact limit: model bytes plus code bytes must
// not exceed 16,000,000 bytes (decimal, not 16 MiB).
const Budget = 16_000_000

// CodeSize is the code part of the size accounting.
type CodeSize struct {
	Files int `json:"files"`
	// SourceBytes is the files' length as written, comments included;
	// RawBytes the length of the archive of the stripped files (see
	// MeasureCode); Bytes its brotli-11 compressed length, which is what
	// counts.
	SourceBytes int    `json:"source_bytes"`
	RawBytes    int    `json:"raw_bytes"`
	Bytes       int    `json:"bytes"`
	Codec       string `json:"codec"`
	// Packages breaks the archive down by directory (package).
	Packages []PackageCode `json:"packages,omitempty"`
}

// PackageCode is one directory's share of the counted code: its files,
// their bytes in the archive, and those bytes compressed alone (a
// package's own size; the packages compress a little better together, so
// these add up to more than CodeSize.Bytes).
type PackageCode struct {
	Dir      string `json:"dir"`
	Files    int    `json:"files"`
	RawBytes int    `json:"raw_bytes"`
	Bytes    int    `json:"bytes_alone"`
}

// Table lists the counted code per package.
func (c CodeSize) Table() *report.Table {
	t := report.NewTable(fmt.Sprintf("counted code: %d files, %d bytes as written, %d without comments, %d bytes %s", c.Files, c.SourceBytes, c.RawBytes, c.Bytes, c.Codec),
		"package", "files", "bytes without comments", "compressed alone")
	for _, p := range c.Packages {
		t.Add(p.Dir, p.Files, p.RawBytes, p.Bytes)
	}
	return t
}

// MeasureCode counts the code bytes of a source tree (golf.Source()):
//
//  1. take every file of fsys except *_test.go files: the .go sources and
//     go.mod, go.sum;
//  2. strip the comments of each .go file, keeping directives such as
//     //go:embed (gosrc.StripComments; the files' length before this step
//     is SourceBytes);
//  3. sort the files by slash-separated path (byte order);
//  4. concatenate, for each file, its path, "\n", its length in decimal,
//     "\n", and its bytes: the archive (RawBytes);
//  5. compress the archive with brotli at quality 11, window 2^24 (Bytes).
//
// The order and encoding are fixed, so the count is reproducible: a
// submission could ship exactly this archive, unpack it with brotli and
// build the golf command from it (the stripped files are the same program,
// gofmt-formatted). Stripping comments and compressing is what the
// challenge's records do to train_gpt.py (pyminify without renaming, then
// LZMA and base85), so it is the fair comparison.
func MeasureCode(fsys fs.FS) (CodeSize, error) {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, "_test.go") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return CodeSize{}, fmt.Errorf("code size: %w", err)
	}
	sort.Strings(paths)
	var archive bytes.Buffer
	sourceBytes := 0
	pkgs := map[string]*bytes.Buffer{}
	var dirs []string
	for _, p := range paths {
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return CodeSize{}, fmt.Errorf("code size: %w", err)
		}
		sourceBytes += len(data)
		if strings.HasSuffix(p, ".go") {
			if data, err = gosrc.StripComments(p, data); err != nil {
				return CodeSize{}, fmt.Errorf("code size: %w", err)
			}
		}
		entry := p + "\n" + strconv.Itoa(len(data)) + "\n" + string(data)
		archive.WriteString(entry)
		dir := path.Dir(p)
		if pkgs[dir] == nil {
			pkgs[dir] = &bytes.Buffer{}
			dirs = append(dirs, dir)
		}
		pkgs[dir].WriteString(entry)
	}
	c := codec.Brotli{}
	z, err := c.Compress(archive.Bytes(), codec.Hint{})
	if err != nil {
		return CodeSize{}, fmt.Errorf("code size: %w", err)
	}
	size := CodeSize{Files: len(paths), SourceBytes: sourceBytes, RawBytes: archive.Len(), Bytes: len(z), Codec: c.Name()}
	sort.Strings(dirs)
	for _, d := range dirs {
		zp, err := c.Compress(pkgs[d].Bytes(), codec.Hint{})
		if err != nil {
			return CodeSize{}, fmt.Errorf("code size: %w", err)
		}
		n := 0
		for _, p := range paths {
			if path.Dir(p) == d {
				n++
			}
		}
		size.Packages = append(size.Packages, PackageCode{Dir: d, Files: n, RawBytes: pkgs[d].Len(), Bytes: len(zp)})
	}
	return size, nil
}

// SizeReport is the challenge's size accounting of one artifact.
type SizeReport struct {
	ModelBytes int      `json:"model_bytes"`
	Code       CodeSize `json:"code"`
	TotalBytes int      `json:"total_bytes"`
	Budget     int      `json:"budget_bytes"`
	// Margin is Budget - TotalBytes: negative when over budget.
	Margin int `json:"margin_bytes"`
}

// NewSizeReport adds up model and code bytes against Budget.
func NewSizeReport(modelBytes int, code CodeSize) SizeReport {
	total := modelBytes + code.Bytes
	return SizeReport{ModelBytes: modelBytes, Code: code, TotalBytes: total, Budget: Budget, Margin: Budget - total}
}

// OverBudget reports whether the artifact breaks the limit.
func (s SizeReport) OverBudget() bool { return s.Margin < 0 }

// Table renders the accounting for people.
func (s SizeReport) Table() *report.Table {
	t := report.NewTable("size accounting (decimal bytes)", "part", "bytes")
	t.Add("model (artifact file)", s.ModelBytes)
	t.Add(fmt.Sprintf("code (%d files, %d without comments, %s)", s.Code.Files, s.Code.RawBytes, s.Code.Codec), s.Code.Bytes)
	t.Add("total", s.TotalBytes)
	t.Add("budget", s.Budget)
	t.Add("margin", s.Margin)
	return t
}
