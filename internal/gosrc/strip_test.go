package gosrc

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestStripCommentsByHand(t *testing.T) {
	src := `//go:build linux

// Package x says what it is.
package x // trailing

/*
#include <stdio.h>
*/
import "C"

import (
	"embed" // for the files
)

// The files below: a doc line the directive sits under.
//
//go:embed a.txt b.txt
var files embed.FS

// T is a type.
type T struct {
	// A is a field.
	A int /* inline */ // and a trailing one
}

//export Exported
func Exported() int {
	x := 1 /* gone */ + 2
	// a statement comment

	return x // done
}
`
	want := `//go:build linux

package x

/*
#include <stdio.h>
*/
import "C"

import (
	"embed"
)

//go:embed a.txt b.txt
var files embed.FS

type T struct {
	A int
}

//export Exported
func Exported() int {
	x := 1 + 2

	return x
}
`
	got, err := StripComments("x.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestStripCommentsBadInput(t *testing.T) {
	_, err := StripComments("broken.go", []byte("package x\nfunc {"))
	if err == nil || !strings.Contains(err.Error(), "broken.go") {
		t.Fatalf("err = %v, want a parse error naming broken.go", err)
	}
}

// Every Go file of this module, tests included: the stripped file is the
// same program, keeps its directives, has no other comment, is gofmt-clean
// and strips to itself.
func TestStripCommentsModule(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checkStripped(t, p, src)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("checked %d files; the walk missed the module", n)
	}
}

func FuzzStripComments(f *testing.F) {
	f.Add([]byte("package x\n// c\nfunc f() { /* b */ }\n"))
	f.Add([]byte("//go:build !x\n\npackage y\n\n//go:embed z\nvar v string\n"))
	f.Add([]byte("package z\n\nvar a = []int{1, // one\n2}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := parser.ParseFile(token.NewFileSet(), "f.go", src, parser.ParseComments|parser.SkipObjectResolution); err != nil {
			t.Skip()
		}
		checkStripped(t, "f.go", src)
	})
}

func checkStripped(t *testing.T, name string, src []byte) {
	t.Helper()
	out, err := StripComments(name, src)
	if err != nil {
		// The printer refuses a few ASTs the parser accepts (e.g. some
		// malformed programs); the fuzzer only needs no panic then.
		if _, ok := strictParse(src); ok {
			t.Fatalf("%s: %v", name, err)
		}
		return
	}
	if a, b := program(t, name, src), program(t, name+" (stripped)", out); a != b {
		t.Fatalf("%s: stripping changed the program", name)
	}
	if a, b := directives(t, src), directives(t, out); !reflect.DeepEqual(a, b) {
		t.Fatalf("%s: directives %q, after stripping %q", name, a, b)
	}
	if c := commentLines(t, out); len(c) > len(directives(t, out)) && !hasPreamble(src) {
		t.Fatalf("%s: %d comment lines left after stripping, %d of them directives", name, len(c), len(directives(t, out)))
	}
	again, err := StripComments(name, out)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("%s: stripping again changed it (%v)", name, err)
	}
	if gofmt, err := format.Source(out); err == nil && !bytes.Equal(gofmt, out) && !hasPreamble(src) {
		t.Fatalf("%s: stripped file is not gofmt-clean", name)
	}
}

func strictParse(src []byte) (*ast.File, bool) {
	f, err := parser.ParseFile(token.NewFileSet(), "f.go", src, parser.AllErrors|parser.SkipObjectResolution)
	return f, err == nil
}

// program dumps the file's syntax tree without comments and positions.
func program(t *testing.T, name string, src []byte) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, src)
	}
	posType := reflect.TypeOf(token.Pos(0))
	var b strings.Builder
	err = ast.Fprint(&b, nil, f, func(field string, v reflect.Value) bool {
		return v.Type() != posType && ast.NotNilFilter(field, v)
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// commentLines lists every comment line of src.
func commentLines(t *testing.T, src []byte) []*ast.Comment {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "f.go", src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var c []*ast.Comment
	for _, g := range f.Comments {
		c = append(c, g.List...)
	}
	return c
}

func directives(t *testing.T, src []byte) []string {
	t.Helper()
	var d []string
	for _, l := range commentLines(t, src) {
		if isDirective(l) {
			// gofmt drops trailing blanks; tools parse the rest.
			d = append(d, strings.TrimRight(l.Text, " \t"))
		}
	}
	return d
}

func hasPreamble(src []byte) bool { return bytes.Contains(src, []byte(`import "C"`)) }
