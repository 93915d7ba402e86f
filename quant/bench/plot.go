package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/paramgolf/golf/internal/plotfile"
)

// SavePNG plots each scheme's smallest artifact: model bytes (MB, x) against
// the post-round-trip val_bpb delta (y), or, when the benchmark had no
// evaluation (synthetic weights), against the relative weight error. Each
// point is labelled "scheme (codec)" where the label overlaps no other
// label and no point (see placeLabels). The PNG is written atomically.
func (r *Result) SavePNG(path string) error {
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
	p.Add(&pointLabels{xy: xy, labels: labels, style: p.X.Tick.Label, radius: vg.Points(4)})
	// Margins so labels of the outermost points fit inside the axes.
	x0, x1, y0, y1 := extent(xy)
	dx, dy := (x1-x0)*0.08+1e-9, (y1-y0)*0.08+1e-9
	p.X.Min, p.X.Max = x0-dx, x1+3*dx
	p.Y.Min, p.Y.Max = y0-dy, y1+dy
	return plotfile.SavePNG(path, p, 10*vg.Inch, 7*vg.Inch)
}

// extent returns the smallest and largest X and Y of the points.
func extent(xy plotter.XYs) (x0, x1, y0, y1 float64) {
	x0, x1, y0, y1 = xy[0].X, xy[0].X, xy[0].Y, xy[0].Y
	for _, p := range xy {
		x0, x1, y0, y1 = min(x0, p.X), max(x1, p.X), min(y0, p.Y), max(y1, p.Y)
	}
	return x0, x1, y0, y1
}

// pointLabels draws one label per point at a position where it overlaps
// no label placed before it and no point (in canvas coordinates, with the
// text's real extent), trying positions around the point at growing
// distances; a label that finds no free place within reach is joined to its
// point by a thin line from the nearest free place further out.
type pointLabels struct {
	xy     plotter.XYs
	labels []string
	style  text.Style
	radius vg.Length
}

// Plot implements plot.Plotter.
func (l *pointLabels) Plot(c draw.Canvas, plt *plot.Plot) {
	tx, ty := plt.Transforms(&c)
	pts := make([]vg.Point, len(l.xy))
	for i, p := range l.xy {
		pts[i] = vg.Point{X: tx(p.X), Y: ty(p.Y)}
	}
	boxes := placeLabels(pts, l.labels, l.style, l.radius, c.Rectangle)
	for i, b := range boxes {
		sty := l.style
		sty.XAlign, sty.YAlign = draw.XLeft, draw.YBottom
		if b.far {
			c.StrokeLine2(draw.LineStyle{Color: color.Gray{Y: 150}, Width: vg.Points(0.5)}, pts[i].X, pts[i].Y, b.r.Min.X, b.r.Min.Y)
		}
		c.FillText(sty, b.r.Min, l.labels[i])
	}
}

type placed struct {
	r   vg.Rectangle
	far bool
}

// placeLabels chooses each label's rectangle: the first of a ring of
// candidate positions (right, left, above, below and the diagonals, at 1x,
// 2x, ... the label height away) that lies inside area and overlaps no
// point's glyph and no earlier label.
func placeLabels(pts []vg.Point, labels []string, sty text.Style, radius vg.Length, area vg.Rectangle) []placed {
	out := make([]placed, len(pts))
	var taken []vg.Rectangle
	for _, p := range pts {
		taken = append(taken, vg.Rectangle{Min: vg.Point{X: p.X - radius, Y: p.Y - radius}, Max: vg.Point{X: p.X + radius, Y: p.Y + radius}})
	}
	free := func(r vg.Rectangle) bool {
		if r.Min.X < area.Min.X || r.Min.Y < area.Min.Y || r.Max.X > area.Max.X || r.Max.Y > area.Max.Y {
			return false
		}
		for _, t := range taken {
			if r.Min.X < t.Max.X && t.Min.X < r.Max.X && r.Min.Y < t.Max.Y && t.Min.Y < r.Max.Y {
				return false
			}
		}
		return true
	}
	for i, p := range pts {
		w, h := sty.Width(labels[i]), sty.Height(labels[i])
		gap := radius + vg.Points(2)
		var chosen *vg.Rectangle
		far := false
		for ring := 0; ring < 24 && chosen == nil; ring++ {
			d := vg.Length(ring) * h
			cands := []vg.Point{
				{X: p.X + gap + d, Y: p.Y - h/2},         // right
				{X: p.X - gap - d - w, Y: p.Y - h/2},     // left
				{X: p.X - w/2, Y: p.Y + gap + d},         // above
				{X: p.X - w/2, Y: p.Y - gap - d - h},     // below
				{X: p.X + gap + d, Y: p.Y + gap + d},     // upper right
				{X: p.X + gap + d, Y: p.Y - gap - d - h}, // lower right
				{X: p.X - gap - d - w, Y: p.Y + gap + d}, // upper left
				{X: p.X - gap - d - w, Y: p.Y - gap - d - h},
			}
			for _, m := range cands {
				r := vg.Rectangle{Min: m, Max: vg.Point{X: m.X + w, Y: m.Y + h}}
				if free(r) {
					chosen, far = &r, ring > 2
					break
				}
			}
		}
		if chosen == nil { // nowhere free: right of the point, overlapping
			r := vg.Rectangle{Min: vg.Point{X: p.X + gap, Y: p.Y - h/2}, Max: vg.Point{X: p.X + gap + w, Y: p.Y + h/2}}
			chosen = &r
		}
		taken = append(taken, *chosen)
		out[i] = placed{r: *chosen, far: far}
	}
	return out
}
