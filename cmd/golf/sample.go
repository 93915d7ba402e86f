package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "sample",
		summary: "generate text from a checkpoint or a packed artifact",
		run:     runSample,
	})
}

// sampleOutput is golf sample's JSON output.
type sampleOutput struct {
	Source      string  `json:"source"`
	Tokenizer   string  `json:"tokenizer"`
	Prompt      string  `json:"prompt"`
	Text        string  `json:"text"` // the prompt and its continuation, decoded
	Tokens      []int   `json:"tokens"`
	Temperature float64 `json:"temperature"`
	Seed        uint64  `json:"seed"`
}

func runSample(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "sample", "--checkpoint DIR | --artifact FILE [--prompt TEXT]\n\n"+
		"Decodes the prompt's continuation: BOS, the encoded prompt, then --tokens tokens\n"+
		"drawn from softmax(logits / temperature) (the most likely one at temperature 0),\n"+
		"stopping early at a BOS (the start of another document).\n")
	ckpt := fs.String("checkpoint", "", "checkpoint directory written by golf train")
	artifact := fs.String("artifact", "", "artifact written by golf pack (dequantized weights), instead of --checkpoint")
	prompt := fs.String("prompt", "", "text to continue (default: none, a new document)")
	tokens := fs.Int("tokens", 100, "tokens to generate")
	temperature := fs.Float64("temperature", 0.8, "softmax temperature; 0 = greedy")
	seed := fs.Uint64("seed", 1337, "random seed of the draws")
	tokPath := fs.String("tokenizer", "", "SentencePiece .model (default: the run's, else the one its data names, else the embedded sp1024)")
	backendSpec := fs.String("backend", "", "compute backend: go, cuda, or a gomlx spec")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *tokens < 1 || *temperature < 0 {
		return fmt.Errorf("%w: need --tokens >= 1 and --temperature >= 0, got %d and %g", errUsage, *tokens, *temperature)
	}
	src, err := loadEvalSource(*ckpt, *artifact)
	if err != nil {
		return err
	}
	tok, err := evalTokenizer(*tokPath, src, evalDataDir("", src))
	if err != nil {
		return err
	}
	ids := append([]int{tok.BOS()}, tok.Encode(*prompt)...)
	backend, _, err := compute.Open(*backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	gen, err := train.Sample(ctx, backend, src.cfg, src.weights, ids, train.SampleOptions{
		Tokens: *tokens, Temperature: *temperature, Seed: *seed, Stop: []int{tok.BOS()},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	all := append(slices.Clone(ids[1:]), gen...)
	if n := len(all); n > 0 && all[n-1] == tok.BOS() {
		all = all[:n-1]
	}
	text := tok.Decode(all)
	res := sampleOutput{Source: src.name, Tokenizer: tok.Name(), Prompt: *prompt, Text: text, Tokens: gen, Temperature: *temperature, Seed: *seed}
	return outf.emit(env, res, func(w io.Writer) error {
		if !outf.quiet {
			fmt.Fprintf(env.stderr, "golf sample: %s, %d tokens at temperature %g, seed %d\n", src.name, len(gen), *temperature, *seed)
		}
		_, err := fmt.Fprintln(w, strings.TrimRight(text, "\n"))
		return err
	})
}
