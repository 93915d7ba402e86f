package benchmarks

// Model benchmarks: one forward+backward pass (gradients of the mean token
// loss with respect to every parameter) on the pure-Go backend, reported as
// ms/step and tokens/s. The "gemm" variant is the model as shipped, whose
// matmul gradients are matmuls; "builtin" is the same graph with gomlx
// v0.26.0's own DotGeneral gradient (broadcast multiply + reduce), measured
// in the same run so the ratio is the figure:
//
//	go test ./benchmarks -run XXX -bench ModelGradient -benchtime 3x
//
// The baseline preset runs only with gemm gradients: with the built-in ones
// a single 1024-token step asks for more memory than these machines have.

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
)

func BenchmarkModelGradient(b *testing.B) {
	cases := []struct {
		preset      string
		batch, seq  int
		builtinAlso bool
	}{
		{"tiny", 4, 256, true},
		{"baseline", 1, 1024, false},
	}
	for _, c := range cases {
		for _, builtin := range []bool{false, true} {
			if builtin && !c.builtinAlso {
				continue
			}
			name := fmt.Sprintf("%s/%dx%d/gemm", c.preset, c.batch, c.seq)
			if builtin {
				name = fmt.Sprintf("%s/%dx%d/builtin", c.preset, c.batch, c.seq)
			}
			b.Run(name, func(b *testing.B) { benchGradient(b, c.preset, c.batch, c.seq, builtin) })
		}
	}
}

func benchGradient(b *testing.B, preset string, batch, seq int, builtin bool) {
	backend, _, err := compute.Open("go")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := model.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	weights, err := model.InitWeights(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := mlctx.New()
	if err := model.LoadWeights(ctx, cfg, weights); err != nil {
		b.Fatal(err)
	}
	model.UseBuiltinMatmulGradient(builtin)
	defer model.UseBuiltinMatmulGradient(false)
	exec, err := mlctx.NewExec(backend, ctx.Reuse(), func(ctx *mlctx.Context, in, tg *graph.Node) []*graph.Node {
		loss := graph.ReduceAllMean(model.TokenLosses(ctx, cfg, in, tg, model.Options{}))
		var vars []*graph.Node
		for v := range ctx.IterVariables() {
			vars = append(vars, v.ValueGraph(in.Graph()))
		}
		return append([]*graph.Node{loss}, graph.Gradient(loss, vars...)...)
	})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := make([]int32, batch*seq)
	for i := range tokens {
		tokens[i] = int32(rng.IntN(cfg.VocabSize))
	}
	in := tensors.FromFlatDataAndDimensions(tokens, batch, seq)
	start := time.Now()
	if _, err := exec.Exec(in, in); err != nil { // compile + first run
		b.Fatal(err)
	}
	first := time.Since(start)
	b.ResetTimer()
	for range b.N {
		if _, err := exec.Exec(in, in); err != nil {
			b.Fatal(err)
		}
	}
	perStep := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perStep*1000, "ms/step")
	b.ReportMetric(float64(batch*seq)/perStep, "tokens/s")
	b.ReportMetric(first.Seconds(), "first_s")
}
