package golf

import (
	"io/fs"
	"os/exec"
	"path"
	"sort"
	"strings"
	"testing"
)

// The embedded package directories must be exactly the module's packages
// that cmd/golf is built from, so the code-byte count follows the build.
func TestSourceMatchesDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{.Module.Path}}{{end}}", "./cmd/golf").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/paramgolf/golf"
	want := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == module {
			dir := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
			if dir == "" {
				dir = "."
			}
			want[dir] = true
		}
	}
	got := map[string]bool{}
	err = fs.WalkDir(Source(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		got[path.Dir(p)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra, dirs []string
	for d := range want {
		if !got[d] {
			missing = append(missing, d)
		}
		if d != "." {
			dirs = append(dirs, d+"/*.go")
		}
	}
	for d := range got {
		if !want[d] {
			extra = append(extra, d)
		}
	}
	if len(missing)+len(extra) > 0 {
		sort.Strings(dirs)
		t.Fatalf("embedded source differs from cmd/golf's dependencies: missing %v, extra %v; use\n//go:embed %s", missing, extra, strings.Join(dirs, " "))
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := fs.Stat(Source(), f); err != nil {
			t.Errorf("%s not embedded: %v", f, err)
		}
	}
}
