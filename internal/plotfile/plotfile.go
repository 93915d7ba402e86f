// Package plotfile writes gonum plots as PNG files, atomically (a
// temporary file renamed into place). It is tooling, outside the counted
// code: loss curves, ablations and the compression benchmark draw with it.
package plotfile

import (
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/paramgolf/golf/internal/atomicfile"
)

// SavePNG renders p at width x height and writes it to path as a PNG; an
// error names path and leaves no partial file there.
func SavePNG(path string, p *plot.Plot, width, height vg.Length) error {
	wt, err := p.WriterTo(width, height, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
