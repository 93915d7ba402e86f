// Command initweights writes golf's initial weights of a model preset
// (model.InitWeights) as a tensor file, for gen_reference_losses.py:
//
//	go run ./train/testdata/initweights -preset tiny -seed 1337 -out init.bin
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/train"
)

func main() {
	preset := flag.String("preset", "tiny", "model preset")
	seed := flag.Int64("seed", 1337, "seed of model.InitWeights")
	out := flag.String("out", "init.bin", "tensor file to write")
	flag.Parse()
	cfg, err := model.Preset(*preset)
	if err == nil {
		var w model.Weights
		if w, err = model.InitWeights(cfg, *seed); err == nil {
			err = train.WriteTensors(*out, w)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "initweights:", err)
		os.Exit(1)
	}
}
