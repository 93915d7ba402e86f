package train

import (
	"context"
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Data-parallel training over the backend's devices (golf train --devices N).
//
// Semantics, as the references define them: every optimizer step's global
// batch is the reference's 8 spans (data.Loader.NextStep); rank r of N
// takes spans r, r+N, r+2N, ... (its own loader with rank r of world N),
// cut into its micro-batches; each rank accumulates the mean gradient of
// its micro-batches; the ranks' gradients are averaged; every rank applies
// the same update, so the weights stay identical. Gradient clipping
// follows the run's rule (OptimizerConfig.ClipLocalGradients):
//
//   - the baseline's train_gpt.py wraps the model in DDP, which averages
//     the gradients during the last micro-step's backward pass, and clips
//     after: clip(mean_r g_r). With N ranks this equals one device on the
//     same global batch.
//   - the record (PR #2135) is not DDP-wrapped: clip_grad_norm_ runs on each
//     rank's local gradient, then Optimizers.step all-reduces / reduce-
//     scatters the clipped gradients: mean_r clip(g_r) (record-stack §3.1).
//     With N ranks this differs from one device whenever the clip binds,
//     exactly as the record's own runs at different world sizes differ.
//
// How: the step graphs are compiled once for all ranks as SPMD programs
// (gomlx's distributed.SPMD strategy over a one-axis device mesh): the
// variables (weights, optimizer state, gradient accumulators) are
// replicated to every device, each device gets its own micro-batch, and
// the only cross-device traffic is one AllReduce (sum) of the gradients per
// optimizer step, which XLA lowers to NCCL on GPUs. Nothing passes through
// the host but the scalar losses.
//
// What runs where: the arithmetic (which rows each rank reads, the order of
// clipping and averaging, Muon and Adam on the averaged gradients) is the
// same code at every N and is tested on the CPU, emulating N ranks on one
// device (distributed_test.go). The SPMD compilation, the AllReduce and the
// per-device placement of inputs and replicated variables run only on a
// backend with several devices (XLA with a multi-GPU PJRT plugin): gomlx's
// pure-Go backend has one device and implements no distributed builder, so
// on the CPU --devices is 1 and the step is the single-device one. On one
// GPU, TrainerOptions.ForceSPMD compiles the SPMD program for a one-device
// mesh, so the distributed path can be checked there (scripts/gpu/check.sh).

// spmdBackend is the backend the SPMD step graphs are built with. gomlx
// v0.26.0 gives every context variable of an SPMD graph its mesh's
// replicated sharding spec, and its XLA builder resolves a parameter's
// spec against the meshes of AutoSharding, which an SPMD builder has none
// of ("mesh not found"): context variables and SPMD do not compile together
// there. An SPMD program holds every parameter per replica anyway, so this
// wrapper builds parameters without a sharding annotation and passes all
// else through; the host-side bookkeeping (which shard lives on which
// device) keeps the spec. Every tensor of an SPMD trainer belongs to this
// one wrapper value.
type spmdBackend struct{ backends.Backend }

func (b spmdBackend) Builder(name string) backends.Builder {
	return spmdBuilder{b.Backend.Builder(name)}
}

type spmdBuilder struct{ backends.Builder }

func (b spmdBuilder) Parameter(name string, shape shapes.Shape, _ *backends.ShardingSpec) (backends.Op, error) {
	return b.Builder.Parameter(name, shape, nil)
}

// meshAxis names the device mesh's only axis.
const meshAxis = "ranks"

// rankMean averages each gradient over the ranks of an SPMD graph: one
// AllReduce (sum) of all of them, divided by the number of ranks. In a
// graph without a distribution strategy (one device) it returns grads.
func rankMean(grads []*Node) []*Node {
	if len(grads) == 0 {
		return grads
	}
	g := grads[0].Graph()
	if g.DistributedStrategy() != distributed.SPMD {
		return grads
	}
	n := g.NumDevices()
	sums := g.Distributed().AllReduce(grads, backends.ReduceOpSum)
	out := make([]*Node, len(sums))
	for i, s := range sums {
		out[i] = MulScalar(s, 1/float64(n))
	}
	return out
}

// rankMeanOf returns rankMean for the gradients of vars, rounding those of
// parameters held in bfloat16 (the tied embedding on accelerators) back to
// bfloat16 after the average, as the reference's all-reduce of a bf16
// gradient returns bf16 values.
func (t *Trainer) rankMeanOf(vars []*mlctx.Variable) func([]*Node) []*Node {
	return func(grads []*Node) []*Node {
		if t.mesh == nil {
			return grads
		}
		out := rankMean(grads)
		for i, v := range vars {
			if t.rules[paramName(v)].bf16Weights {
				out[i] = roundBF16(out[i])
			}
		}
		return out
	}
}

// reduceGradients turns a rank's local gradients (the mean over its
// micro-batches) into the gradients every rank applies: the cross-rank
// mean, clipped after averaging (the baseline's DDP) or before
// (ClipLocalGradients, the record). mean is rankMean in the trainer.
func reduceGradients(local []*Node, opt OptimizerConfig, mean func([]*Node) []*Node) []*Node {
	if opt.ClipLocalGradients {
		return mean(clipGlobalNorm(local, opt.GradClipNorm))
	}
	return clipGlobalNorm(mean(local), opt.GradClipNorm)
}

// deviceMesh returns the one-axis mesh of n devices the SPMD step runs on,
// after checking that the backend runs SPMD programs (probeAllReduce).
func deviceMesh(backend backends.Backend, n int) (*distributed.DeviceMesh, error) {
	if have := backend.NumDevices(); n < 1 || n > have {
		return nil, fmt.Errorf("trainer: %d devices asked for, the backend %s has %d", n, backend.Name(), have)
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{meshAxis})
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	if err := probeAllReduce(backend, mesh); err != nil {
		return nil, fmt.Errorf("trainer: data-parallel training needs a backend that runs SPMD programs (XLA): %w", err)
	}
	return mesh, nil
}

// probeAllReduce compiles and runs the smallest SPMD program, an AllReduce
// of rank+1 over the mesh, and checks that every device gets
// n(n+1)/2: a backend without distributed execution (gomlx's pure-Go one)
// fails here, before any model graph is built.
func probeAllReduce(backend backends.Backend, mesh *distributed.DeviceMesh) (err error) {
	defer recoverGraphPanic("SPMD probe", &err)
	exec, err := NewExec(backend, func(x *Node) *Node {
		return x.Graph().Distributed().AllReduceOne(x, backends.ReduceOpSum)
	})
	if err != nil {
		return err
	}
	defer exec.Finalize()
	n := mesh.NumDevices()
	args := make([]any, n)
	for r := range args {
		args[r] = float32(r + 1)
	}
	outs, err := exec.SPMD(mesh).Exec(args...)
	if err != nil {
		return err
	}
	want := float32(n * (n + 1) / 2)
	for r, o := range outs {
		v, err := tensors.CopyFlatData[float32](o)
		o.FinalizeAll()
		if err != nil {
			return err
		}
		if len(v) != 1 || v[0] != want {
			return fmt.Errorf("AllReduce over %d devices gave %v on device %d, want %v", n, v, r, want)
		}
	}
	return nil
}

// newStepExec compiles one of the trainer's micro-step kinds: for a single
// device as before, or, with several devices (or ForceSPMD), as an SPMD
// program over the trainer's mesh, the variables replicated to every device.
func (t *Trainer) newStepExec(apply bool, v stepVariant) (*mlctx.Exec, error) {
	exec, err := mlctx.NewExec(t.backend, t.ctx.Reuse(), t.stepGraph(apply, v))
	if err != nil {
		return nil, err
	}
	if t.mesh != nil {
		exec = exec.SPMD(t.mesh)
	}
	return exec, nil
}

// Devices returns the number of data-parallel ranks (devices) the trainer
// runs on.
func (t *Trainer) Devices() int { return t.devices }

// StepRanks runs one data-parallel optimizer step: ranks[r] holds rank r's
// AccumSteps micro-batches (all ranks' of the same size). Each rank's
// micro-batches go to its own device; the gradients are averaged across
// devices inside the step (see the comment at the top of this file). It
// returns the mean training loss over all ranks' micro-batches. With one
// rank it is Step, the single-device step (an SPMD program only with
// ForceSPMD).
func (t *Trainer) StepRanks(ctx context.Context, ranks [][]Batch, lrScale, momentum float64) (loss float64, err error) {
	if len(ranks) != t.devices {
		return 0, fmt.Errorf("step %d: got micro-batches for %d ranks, the trainer runs on %d devices", t.steps+1, len(ranks), t.devices)
	}
	defer recoverGraphPanic(fmt.Sprintf("step %d", t.steps+1), &err)
	// where names a micro-batch in errors: by rank only when there are
	// several.
	where := func(r, i int) string {
		if t.devices == 1 {
			return fmt.Sprintf("micro-batch %d", i)
		}
		return fmt.Sprintf("rank %d, micro-batch %d", r, i)
	}
	variant := stepVariant{unlooped: t.unlooped, segmented: len(ranks[0]) > 0 && ranks[0][0].Segments != nil}
	for r, micro := range ranks {
		if len(micro) != t.accum {
			if t.devices == 1 {
				return 0, fmt.Errorf("step %d: got %d micro-batches, the trainer accumulates %d", t.steps+1, len(micro), t.accum)
			}
			return 0, fmt.Errorf("step %d: rank %d has %d micro-batches, the trainer accumulates %d", t.steps+1, r, len(micro), t.accum)
		}
		for i, b := range micro {
			if err := b.validate(t.net.vocab); err != nil {
				return 0, fmt.Errorf("step %d, %s: %w", t.steps+1, where(r, i), err)
			}
			if (b.Segments != nil) != variant.segmented {
				return 0, fmt.Errorf("step %d: %s has segment ids and the first micro-batch does not, or the other way round", t.steps+1, where(r, i))
			}
			if b.Rows != ranks[0][i].Rows || b.SeqLen != ranks[0][i].SeqLen {
				return 0, fmt.Errorf("step %d: rank %d's micro-batch %d is [%d, %d], rank 0's [%d, %d]: SPMD ranks need equal shapes",
					t.steps+1, r, i, b.Rows, b.SeqLen, ranks[0][i].Rows, ranks[0][i].SeqLen)
			}
		}
	}
	execs, err := t.stepExecs(variant)
	if err != nil {
		return 0, err
	}
	// Losses are read back only after the last micro-batch is queued, so an
	// accelerator never waits for the host between micro-batches.
	var outs []*tensors.Tensor
	defer func() {
		for _, o := range outs {
			o.FinalizeAll()
		}
	}()
	for i := range t.accum {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		exec, lr, mom, adam := execs.accumulate, float32(0), float32(0), float32(0)
		if i == t.accum-1 {
			exec, lr, mom, adam = execs.apply, float32(lrScale), float32(momentum), float32(t.steps+1)
		}
		// The arguments are device-major (SPMD): rank 0's five (six with
		// segment ids), then rank 1's, ...
		args := make([]any, 0, 6*t.devices)
		for _, micro := range ranks {
			b := micro[i]
			args = append(args, tensors.FromFlatDataAndDimensions(b.Inputs, b.Rows, b.SeqLen),
				tensors.FromFlatDataAndDimensions(b.Targets, b.Rows, b.SeqLen), lr, mom, adam)
			if variant.segmented {
				args = append(args, tensors.FromFlatDataAndDimensions(b.Segments, b.Rows, b.SeqLen))
			}
		}
		out, err := exec.Exec(args...)
		if err != nil {
			return 0, fmt.Errorf("step %d, micro-batch %d: %w", t.steps+1, i, err)
		}
		outs = append(outs, out...) // one loss per device
	}
	var sum float64
	for _, o := range outs {
		l, err := scalarValue(o)
		if err != nil {
			return 0, fmt.Errorf("step %d: %w", t.steps+1, err)
		}
		sum += l
	}
	t.steps++
	loss = sum / float64(len(outs))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("step %d: training loss is %v", t.steps, loss)
	}
	return loss, nil
}
