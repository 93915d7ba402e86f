package main

import "github.com/paramgolf/golf/train/lossplot"

// golf train's loss.png; tooling (see lossPlot in train.go).
func init() { lossPlot = lossplot.Write }
