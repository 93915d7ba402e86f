// Package report prints results the way every golf command does: a readable,
// aligned table for people and a JSON document for scripts.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/paramgolf/golf/internal/atomicfile"
)

// Table is a titled grid of cells. Columns are right-aligned except the first.
type Table struct {
	Title   string
	Columns []string
	Rows    [][]string
	// Left marks further columns to align left, like the first (text
	// columns such as a long description).
	Left map[int]bool
}

// NewTable returns an empty table with the given column headers.
func NewTable(title string, columns ...string) *Table {
	return &Table{Title: title, Columns: columns}
}

// Add appends a row; each value is formatted with fmt's %v, except float64
// values, which are written with 4 significant decimals unless they are
// already strings.
func (t *Table) Add(values ...any) {
	row := make([]string, len(values))
	for i, v := range values {
		switch x := v.(type) {
		case float64:
			row[i] = formatFloat(x)
		case float32:
			row[i] = formatFloat(float64(x))
		default:
			row[i] = fmt.Sprint(v)
		}
	}
	t.Rows = append(t.Rows, row)
}

func formatFloat(x float64) string {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	switch {
	case ax == 0:
		return "0"
	case ax >= 1e5:
		return fmt.Sprintf("%.0f", x)
	case ax >= 100:
		return fmt.Sprintf("%.1f", x)
	case ax >= 0.01:
		return fmt.Sprintf("%.4f", x)
	default:
		return fmt.Sprintf("%.3g", x)
	}
}

// Print writes the table aligned in columns: the first (and those in
// Left) left-aligned, the others right-aligned, two spaces apart.
func (t *Table) Print(w io.Writer) error {
	all := append([][]string{t.Columns}, t.Rows...)
	var widths []int
	for _, r := range all {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var sb strings.Builder
	if t.Title != "" {
		sb.WriteString(t.Title + "\n")
	}
	for _, r := range all {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				sb.WriteString(c + pad)
			case t.Left[i]:
				sb.WriteString("  " + c)
				if i < len(r)-1 {
					sb.WriteString(pad)
				}
			default:
				sb.WriteString("  " + pad + c)
			}
		}
		sb.WriteString("\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// WriteJSON writes v as indented JSON to w.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// SaveJSON writes v as indented JSON to path atomically.
func SaveJSON(path string, v any) error {
	return atomicfile.Write(path, func(w io.Writer) error { return WriteJSON(w, v) })
}
