package quant

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/paramgolf/golf/internal/atomicfile"
)

// SavePNG plots each scheme's smallest artifact: model bytes (MB, x) against
// the post-round-trip val_bpb delta (y), or, when the benchmark had no
// evaluation (synthetic weights), against the relative weight error. The
// PNG is written to path atomically.
func (r *BenchResult) SavePNG(path string) error {
	best := r.Best()
	if len(best) == 0 {
		return fmt.Errorf("plot %s: no benchmark rows", path)
	}
	p := plot.New()
	p.X.Label.Text = "model bytes (MB)"
	useBPB := r.BaselineBPB != nil
	if useBPB {
		p.Title.Text = "size against quality loss (smallest codec per scheme)"
		p.Y.Label.Text = "val_bpb increase after the round trip"
	} else {
		p.Title.Text = "size against weight error (synthetic weights: no val_bpb)"
		p.Y.Label.Text = "relative RMS weight error"
	}
	p.Add(plotter.NewGrid())
	xy := make(plotter.XYs, len(best))
	labels := make([]string, len(best))
	for i, row := range best {
		y := row.WeightRMSE
		if useBPB && row.ValBPBDelta != nil {
			y = *row.ValBPBDelta
		}
		xy[i] = plotter.XY{X: float64(row.ModelBytes) / 1e6, Y: y}
		labels[i] = fmt.Sprintf("%s (%s)", row.Scheme, row.Codec)
	}
	s, err := plotter.NewScatter(xy)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	s.GlyphStyle.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	s.GlyphStyle.Radius = vg.Points(4)
	p.Add(s)
	// Label each point; points close to an earlier one get their label a
	// line lower, so labels of near-identical schemes do not overprint.
	minX, maxX, minY, maxY := xy[0].X, xy[0].X, xy[0].Y, xy[0].Y
	for _, pt := range xy {
		minX, maxX = math.Min(minX, pt.X), math.Max(maxX, pt.X)
		minY, maxY = math.Min(minY, pt.Y), math.Max(maxY, pt.Y)
	}
	spanX, spanY := math.Max(maxX-minX, 1e-12), math.Max(maxY-minY, 1e-12)
	for i := range xy {
		near := 0
		for j := range i {
			if math.Abs(xy[i].X-xy[j].X) < 0.2*spanX && math.Abs(xy[i].Y-xy[j].Y) < 0.04*spanY {
				near++
			}
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xy[i : i+1], Labels: labels[i : i+1]})
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.TextStyle[0].XAlign = draw.XLeft
		l.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(-3 - 11*float64(near))}
		p.Add(l)
	}
	// Room on the right for the labels of the largest artifacts.
	p.X.Max += (p.X.Max - p.X.Min) * 0.35
	wt, err := p.WriterTo(9*vg.Inch, 6*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
