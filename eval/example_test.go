package eval_test

import (
	"context"
	"fmt"
	"math"

	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/tokenizer"
)

// A freshly initialised tiny model scored plainly, with the record's tilt
// and with score-first test-time training, through one evaluator: the
// graphs compile once per shape and every target is scored once.
func ExampleEvaluator_Evaluate() {
	backend, _, err := compute.Open("go")
	if err != nil {
		panic(err)
	}
	cfg, _ := model.Preset("tiny")
	weights, _ := model.InitWeights(cfg, 1)
	ev, err := eval.New(backend, cfg, weights)
	if err != nil {
		panic(err)
	}
	defer ev.Close()
	tok := tokenizer.Default()
	ids := tok.Encode("We hold these truths to be self-evident, that all men are created equal.")
	stream := []uint16{uint16(tok.BOS())}
	for len(stream) < 65 {
		for _, id := range ids {
			stream = append(stream, uint16(id))
		}
	}
	stream = stream[:65]
	bytes := eval.TableBytes(tok.ByteTable())
	tilt := eval.RecordTilt()
	ttt := eval.RecordTTT()
	ttt.Rank, ttt.Chunk = 8, 16
	plain, err := ev.Evaluate(context.Background(), stream, bytes, eval.Options{SeqLen: 32})
	if err != nil {
		panic(err)
	}
	tilted, err := ev.Evaluate(context.Background(), stream, bytes, eval.Options{SeqLen: 32, Tilt: &tilt})
	if err != nil {
		panic(err)
	}
	adapted, err := ev.Evaluate(context.Background(), stream, bytes, eval.Options{SeqLen: 32, TTT: &ttt})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d targets, %d bytes\n", plain.Tokens, plain.Bytes)
	fmt.Println("untrained: val_loss within 0.1 of ln(1024):", math.Abs(plain.ValLoss-math.Log(1024)) < 0.1)
	fmt.Println("the tilt finds the repeated sentence:", tilted.ValLoss < plain.ValLoss-0.5)
	fmt.Println("test-time training scores every target once:", adapted.Tokens == 64)
	// Output:
	// 64 targets, 151 bytes
	// untrained: val_loss within 0.1 of ln(1024): true
	// the tilt finds the repeated sentence: true
	// test-time training scores every target once: true
}
