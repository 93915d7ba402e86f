// Package lossplot draws a training run's loss curves (train.History) as a
// PNG: the loss.png of golf train. It is tooling, outside the counted code;
// train.Run draws through Options.LossPlot.
package lossplot

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/paramgolf/golf/internal/plotfile"
	"github.com/paramgolf/golf/train"
)

// Write draws train and validation loss (nats) against training time in
// seconds and writes a PNG to path atomically.
func Write(path, title string, h train.History) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "training time (s)"
	p.Y.Label.Text = "loss (nats/token)"
	p.Add(plotter.NewGrid())
	if len(h.Train) > 0 {
		xy := make(plotter.XYs, len(h.Train))
		for i, pt := range h.Train {
			xy[i] = plotter.XY{X: pt.TrainTimeMs / 1000, Y: pt.Loss}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("plot %s: train loss: %w", path, err)
		}
		l.Color = color.RGBA{R: 31, G: 119, B: 180, A: 255}
		p.Add(l)
		p.Legend.Add("train", l)
	}
	if len(h.Val) > 0 {
		xy := make(plotter.XYs, len(h.Val))
		for i, pt := range h.Val {
			xy[i] = plotter.XY{X: pt.TrainTimeMs / 1000, Y: pt.ValLoss}
		}
		l, s, err := plotter.NewLinePoints(xy)
		if err != nil {
			return fmt.Errorf("plot %s: val loss: %w", path, err)
		}
		orange := color.RGBA{R: 255, G: 127, B: 14, A: 255}
		l.Color, s.Color, s.Shape = orange, orange, draw.CircleGlyph{}
		p.Add(l, s)
		p.Legend.Add("val", l, s)
	}
	p.Legend.Top = true
	return plotfile.SavePNG(path, p, 8*vg.Inch, 5*vg.Inch)
}
