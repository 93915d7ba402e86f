package golf

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/paramgolf/golf/internal/gosrc"
)

const module = "github.com/paramgolf/golf"

// buildFiles lists the module-relative .go files (tests excluded, every
// build constraint included) of the module's packages that cmd/golf is
// built from.
func buildFiles(t *testing.T) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{.Module.Path}}{{end}}", "./cmd/golf").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] != module {
			continue
		}
		dir := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if dir == "" {
			dir = "."
		}
		ents, err := os.ReadDir(filepath.FromSlash(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				files = append(files, path.Join(dir, n))
			}
		}
	}
	sort.Strings(files)
	return files
}

// The embedded files are exactly what Counted selects from the build.
func TestSourceIsTheCountedBuild(t *testing.T) {
	want := map[string]bool{"go.mod": true, "go.sum": true}
	for _, f := range buildFiles(t) {
		if Counted(f) {
			want[f] = true
		}
	}
	got := map[string]bool{}
	err := fs.WalkDir(Source(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		got[p] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for f := range want {
		if !got[f] {
			missing = append(missing, f)
		}
	}
	for f := range got {
		if !want[f] {
			extra = append(extra, f)
		}
	}
	if len(missing)+len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		t.Fatalf("embedded source differs from the counted build: missing %v, extra %v; embed\n%s", missing, extra, embedDirective(want))
	}
}

// embedDirective writes the go:embed lines for a file set: whole
// directories where every .go file counts, single files otherwise.
func embedDirective(files map[string]bool) string {
	byDir := map[string][]string{}
	for f := range files {
		if f != "go.mod" && f != "go.sum" {
			byDir[path.Dir(f)] = append(byDir[path.Dir(f)], f)
		}
	}
	var dirs, single []string
	for d, fs := range byDir {
		ents, _ := os.ReadDir(filepath.FromSlash(d))
		all := true
		for _, e := range ents {
			p := path.Join(d, e.Name())
			if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !files[p] {
				all = false
			}
		}
		if all && d != "." {
			dirs = append(dirs, d+"/*.go")
		} else if d != "." {
			single = append(single, fs...)
		}
	}
	sort.Strings(dirs)
	sort.Strings(single)
	return "//go:embed go.mod go.sum *.go\n//go:embed " + strings.Join(single, " ") + "\n//go:embed " + strings.Join(dirs, " ")
}

// The counted files alone, stripped of comments as quant.MeasureCode counts
// them (with the data files their packages embed), build the golf command:
// what is counted does not lean on uncounted tooling, and the stripped
// archive is a source tree a submission could ship.
func TestCountedSourceBuildsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the golf command from a copy of the counted files")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	dir := t.TempDir()
	dirs := map[string]bool{}
	err = fs.WalkDir(Source(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		dirs[path.Dir(p)] = true
		b, err := fs.ReadFile(Source(), p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".go") {
			if b, err = gosrc.StripComments(p, b); err != nil {
				return err
			}
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Data the counted packages embed: every non-Go file below their
	// directories except test data.
	for d := range dirs {
		if d == "." {
			continue
		}
		err := filepath.WalkDir(filepath.FromSlash(d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if e.Name() == "testdata" || (p != filepath.FromSlash(d) && dirs[filepath.ToSlash(p)]) {
					return fs.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(p, ".go") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(gobin, "build", "-o", os.DevNull, "./cmd/golf")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the counted files alone, stripped of comments, do not build cmd/golf: %v\n%s", err, out)
	}
}

func TestCountedRule(t *testing.T) {
	for p, want := range map[string]bool{
		"go.mod": true, "go.sum": true, "source.go": true, "quant/pack.go": true, "cmd/golf/pack.go": true,
		"quant/pack_test.go": false, "quant/bench/bench.go": false, "quant/synthetic/synthetic.go": false,
		"cmd/golf/bench_compress.go": false, "cmd/golf/data.go": false, "cmd/golf/pack_synthetic.go": false,
		"train/run.go": true, "train/ablate/ablate.go": false, "train/lossplot/lossplot.go": false, "cmd/golf/train_plot.go": false,
		"README.md": false, "benchmarks/quant_test.go": false, "tokenizer/models/x.model": false,
	} {
		if got := Counted(p); got != want {
			t.Errorf("Counted(%q) = %v, want %v", p, got, want)
		}
	}
}
