package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/data"
	"github.com/paramgolf/golf/eval"
	"github.com/paramgolf/golf/eval/audit"
	"github.com/paramgolf/golf/internal/compute"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "audit",
		summary: "check that a result is legal: causality, normalisation, each target scored once, byte counts, training hygiene",
		run:     runAudit,
	})
}

// errAuditFailed is returned (exit status 1) when a check fails.
var errAuditFailed = errors.New("audit failed")

// auditModes are the evaluation modes `--modes all` checks, built from
// the evaluation flags' settings.
var auditModes = []string{"plain", "sliding", "doc-isolated", "tilt", "ttt", "ttt+tilt"}

// auditOptions returns the options of a named mode from the configured
// ones (their sequence length, stride, tilt and TTT settings).
func auditModeOptions(name string, base eval.Options, tilt *eval.Tilt, ttt *eval.TTT) (eval.Options, error) {
	o := eval.Options{SeqLen: base.SeqLen, BOS: base.BOS, BatchTokens: base.BatchTokens}
	stride := base.Stride
	if stride <= 0 || stride >= base.SeqLen {
		stride = max(base.SeqLen/4, 1)
	}
	switch name {
	case "configured":
		o = base
		o.Progress = nil
	case "plain":
	case "sliding":
		o.Stride = stride
	case "doc-isolated":
		o.DocIsolated, o.Stride = true, base.Stride
	case "tilt":
		o.Tilt = tilt
	case "ttt":
		o.TTT = ttt
	case "ttt+tilt":
		o.TTT, o.Tilt = ttt, tilt
	default:
		return o, fmt.Errorf("%w: --modes: unknown mode %q (have all, configured, %v)", errUsage, name, auditModes)
	}
	return o, nil
}

// scaleGlobalPhase adapts test-time training's global phase to an audit
// stream of docs documents out of total, so that the phase runs: the same
// fraction of prefix documents (at least one, leaving one to score after
// it), and global chunks small enough for at least two of them (the last
// is skipped) in the prefix's tokens. It returns a note of what changed.
func scaleGlobalPhase(set eval.TTT, stream []uint16, total int, bos, seqLen int) (eval.TTT, string) {
	docs := eval.Documents(stream, bos)
	if set.PrefixDocs == 0 || len(docs) < 2 {
		return set, ""
	}
	prefix := set.PrefixDocs * len(docs) / max(total, 1)
	prefix = min(max(prefix, 1), len(docs)-1)
	tokens := 0
	for _, d := range docs[:prefix] {
		tokens += d.Len
	}
	chunk := set.GlobalChunkTokens
	for chunk > seqLen && tokens/chunk < 2 {
		chunk /= 2
	}
	chunk = max(chunk/seqLen, 1) * seqLen
	note := fmt.Sprintf("global phase after %d of the audit stream's %d documents (%d of %d in the full stream), chunks of %d tokens",
		prefix, len(docs), set.PrefixDocs, total, chunk)
	set.PrefixDocs, set.Phases, set.GlobalChunkTokens = prefix, min(set.Phases, prefix), chunk
	return set, note
}

// runResults is what golf audit reads from a run's results.json.
type runResults struct {
	DataReads *[]audit.DataRead `json:"data_reads"`
	Settings  struct {
		MaxSeconds float64 `json:"max_seconds"`
		Seed       int64   `json:"seed"`
	} `json:"settings"`
}

// findRunDir returns the run directory of a source: the flag's, else the
// checkpoint's folder or its parent (golf train writes OutDir/checkpoint),
// whichever holds results.json.
func findRunDir(flagDir string, src *evalSource) string {
	if flagDir != "" {
		return flagDir
	}
	for _, d := range []string{src.dir, filepath.Dir(src.dir)} {
		if _, err := os.Stat(filepath.Join(d, "results.json")); err == nil {
			return d
		}
	}
	return ""
}

func runAudit(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "audit", "")
	f := bindEvalFlags(fs)
	auditTokens := fs.Int("audit-tokens", 2048, "validation tokens the causality and normalisation checks run on "+
		"(each check re-runs the mode on perturbed copies); 0 = all of them")
	modesFlag := fs.String("modes", "all", "modes to check: all ("+fmt.Sprint(auditModes)+"), configured (exactly the evaluation flags), or a comma list")
	samples := fs.Int("samples", 3, "positions of the causality check (each one more run of every mode)")
	probes := fs.Int("probes", 4, "positions whose whole distribution is checked")
	seed := fs.Uint64("seed", 1, "seed of the sampled positions and the perturbed tokens")
	runDirFlag := fs.String("run", "", "run directory (results.json) for the training checks (default: the checkpoint's run)")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	run, err := f.resolve(ctx)
	if err != nil {
		return err
	}
	tilt, err := f.tiltSettings()
	if err != nil {
		return err
	}
	ttt, err := f.tttSettings()
	if err != nil {
		return err
	}
	names := auditModes
	if *modesFlag != "all" {
		names = splitList(*modesFlag)
	}
	progressW := outf.progress(env)
	logf := func(format string, a ...any) {
		if progressW != nil {
			fmt.Fprintf(progressW, format+"\n", a...)
		}
	}

	st, err := golf.LoadValidationStream(run.dir, run.tok, run.opts.SeqLen, run.limit)
	if err != nil {
		return err
	}
	// The stream checks run on a prefix of the validation stream.
	stream := data.CapValidation(st.Tokens, run.opts.SeqLen, *auditTokens)
	totalDocs := len(eval.Documents(st.Tokens, run.opts.BOS))
	backend, desc, err := compute.Open(*f.backendSpec)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	ev, err := eval.New(backend, run.src.cfg, run.src.weights)
	if err != nil {
		return fmt.Errorf("%s: %w", run.src.name, err)
	}
	defer ev.Close()
	rep := &audit.Report{Source: run.src.name}
	for _, name := range names {
		opts, err := auditModeOptions(name, run.opts, tilt, ttt)
		if err != nil {
			return err
		}
		label := modeName(opts)
		if opts.TTT != nil {
			scaled, note := scaleGlobalPhase(*opts.TTT, stream, totalDocs, run.opts.BOS, opts.SeqLen)
			opts.TTT = &scaled
			if note != "" {
				logf("audit: %s: %s", label, note)
			}
			rep.Add(audit.CheckOrder(label, opts.TTT))
		}
		aopts := audit.Options{Samples: *samples, Probes: *probes, Spacing: opts.SeqLen, Vocab: run.src.cfg.VocabSize,
			BOS: run.opts.BOS, Seed: *seed}
		if opts.Tilt != nil {
			h, err := opts.Tilt.Hints(stream)
			if err != nil {
				return err
			}
			for p, g := range h.Gate {
				if g {
					aopts.Prefer = append(aopts.Prefer, p)
				}
			}
		}
		logf("audit: %s: %d runs over %d tokens", label, 1+*samples, len(stream))
		mode, err := ev.Mode(stream, opts, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		cs, err := audit.CheckMode(ctx, label, mode, stream, aopts)
		if err != nil {
			return err
		}
		rep.Add(cs...)
	}
	logf("audit: bytes over %d tokens", len(st.Tokens))
	ref := audit.DecodedText(run.tok)
	if st.Sidecar {
		ref = audit.CaseOpsText(run.tok) // the sidecar counts the original, untransformed text
	}
	rep.Add(audit.CheckBytes(st.Tokens, st.Bytes, ref, run.opts.BOS))
	rep.Add(trainingChecks(*runDirFlag, run.src)...)
	rep.Backend = desc
	if err := outf.emit(env, rep, rep.Print); err != nil {
		return err
	}
	if !rep.Passed {
		return errAuditFailed
	}
	return nil
}

// trainingChecks are the hygiene checks of the run that made the source:
// parameters never trained (against the seed's initial weights, from the
// checkpoint's float weights) and reads of training data after the budget
// (results.json's data_reads).
func trainingChecks(runDirFlag string, src *evalSource) []audit.Check {
	var out []audit.Check
	weights, cfg, seed := src.weights, src.cfg, src.settings.Seed
	if src.artifact {
		// An artifact: its weights are quantized; the run's checkpoint, when
		// it sits beside it, has the trained floats and the seed.
		if ck, err := train.LoadCheckpoint(src.dir); err == nil {
			weights, cfg, seed = ck.Weights, ck.Config, ck.State.Settings.Seed
		} else {
			out = append(out, audit.Check{Name: "trained parameters", Status: audit.Skipped,
				Detail: fmt.Sprintf("no checkpoint next to %s to compare with the initial weights", src.name)})
			weights = nil
		}
	}
	if weights != nil {
		model.Annotate(cfg, weights)
		out = append(out, audit.CheckParameters(cfg, seed, weights)...)
	}
	dir := findRunDir(runDirFlag, src)
	if dir == "" {
		return append(out, audit.Check{Name: "training data reads", Status: audit.NotRecorded,
			Detail: "no results.json found next to " + src.dir + " (give --run DIR)"})
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return append(out, audit.Check{Name: "training data reads", Status: audit.NotRecorded, Detail: err.Error()})
	}
	var rr runResults
	if err := json.Unmarshal(raw, &rr); err != nil {
		return append(out, audit.Check{Name: "training data reads", Status: audit.Fail,
			Detail: fmt.Sprintf("%s: %v", filepath.Join(dir, "results.json"), err)})
	}
	var reads []audit.DataRead
	if rr.DataReads != nil {
		reads = *rr.DataReads
	}
	return append(out, audit.CheckDataReads(reads, rr.DataReads != nil, rr.Settings.MaxSeconds))
}
