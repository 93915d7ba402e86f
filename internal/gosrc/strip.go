// Package gosrc strips Go source files down to what the compiler reads: the
// analogue, for the counted code, of the pyminify pass the challenge's
// records run over train_gpt.py before they count its bytes.
package gosrc

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"strings"
)

// StripComments returns the Go file src (named filename in errors) without
// its comments, printed as gofmt prints it. It keeps what changes the build:
// directives (//go:embed, //go:build and every other //tool:name line,
// //line, //export, //extern, // +build) and the cgo preamble (the comment
// above import "C"). Everything else the compiler sees is unchanged, so the
// stripped file compiles to the same program; the result is gofmt-clean and
// StripComments of it is itself.
func StripComments(filename string, src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("strip comments: %w", err)
	}
	preamble := map[*ast.CommentGroup]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT && g.Doc != nil && importsC(g) {
			preamble[g.Doc] = true
		}
	}
	var kept []*ast.CommentGroup
	for _, g := range f.Comments {
		if preamble[g] {
			kept = append(kept, g)
			continue
		}
		var lines []*ast.Comment
		for _, c := range g.List {
			if isDirective(c) {
				lines = append(lines, c)
			}
		}
		if len(lines) > 0 {
			kept = append(kept, &ast.CommentGroup{List: lines})
		}
	}
	f.Comments = kept
	// The printer also prints the Doc and Comment groups of nodes when the
	// file keeps no comments at all, so clear them (the kept ones print
	// from f.Comments, by position).
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.File:
			x.Doc = nil
		case *ast.GenDecl:
			x.Doc = nil
		case *ast.FuncDecl:
			x.Doc = nil
		case *ast.Field:
			x.Doc, x.Comment = nil, nil
		case *ast.ImportSpec:
			x.Doc, x.Comment = nil, nil
		case *ast.ValueSpec:
			x.Doc, x.Comment = nil, nil
		case *ast.TypeSpec:
			x.Doc, x.Comment = nil, nil
		}
		return true
	})
	var out bytes.Buffer
	if err := format.Node(&out, fset, f); err != nil {
		return nil, fmt.Errorf("strip comments: %s: %w", filename, err)
	}
	return out.Bytes(), nil
}

// isDirective reports whether comment line c is read by a tool: the
// //tool:name form of https://go.dev/doc/comment#directives and the older
// spellings the gc toolchain still honours.
func isDirective(c *ast.Comment) bool {
	if _, ok := ast.ParseDirective(c.Slash, c.Text); ok {
		return true
	}
	for _, p := range []string{"//line ", "//export ", "//extern ", "// +build "} {
		if strings.HasPrefix(c.Text, p) {
			return true
		}
	}
	return false
}

func importsC(g *ast.GenDecl) bool {
	for _, s := range g.Specs {
		if is, ok := s.(*ast.ImportSpec); ok && is.Path.Value == `"C"` {
			return true
		}
	}
	return false
}
