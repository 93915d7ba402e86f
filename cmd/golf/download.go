package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/paramgolf/golf/data/download"
	"github.com/paramgolf/golf/internal/report"
)

func init() {
	register(&command{
		name:    "data download",
		summary: "fetch the challenge's shards and tokenizer from Hugging Face, as its cached_challenge_fineweb.py does",
		run:     runDataDownload,
	})
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func runDataDownload(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "data download", "[TRAIN_SHARDS]\n\n"+
		"Downloads a dataset of the challenge's export from a Hugging Face dataset repository,\n"+
		"in the layout of its data/cached_challenge_fineweb.py: OUT/manifest.json,\n"+
		"OUT/datasets/fineweb10B_<variant>/fineweb_{val,train}_NNNNNN.bin (all validation shards,\n"+
		"the first TRAIN_SHARDS training shards), OUT/tokenizers/..., and with --with-docs\n"+
		"OUT/docs_selected.jsonl. Present files are kept; transfers resume where they stopped;\n"+
		"files appear under their names only when complete and checked (size from the\n"+
		"manifest, SHA-256 from the server, shard header). The environment variables of the\n"+
		"challenge's script (MATCHED_FINEWEB_REPO_ID, MATCHED_FINEWEB_REMOTE_ROOT_PREFIX) and\n"+
		"HF_ENDPOINT, HF_TOKEN are honoured.\n")
	variant := fs.String("variant", "sp1024", "dataset: sp1024, sp4096, sp8192, byte260, or another name in the manifest (e.g. sp8192_lossless_caps_caseops_v1_reserved)")
	dataset := fs.String("dataset", "", "the manifest's dataset name, instead of --variant")
	trainShards := fs.Int("train-shards", download.DefaultTrainShards, "training shards to fetch (a prefix of the frozen order)")
	repo := fs.String("repo", envOr("MATCHED_FINEWEB_REPO_ID", download.DefaultRepo), "Hugging Face dataset repository (community exports: kevclark/parameter-golf, romeerp/parameter-golf-caseops-v1, ...)")
	root := fs.String("root", envOr("MATCHED_FINEWEB_REMOTE_ROOT_PREFIX", download.DefaultRemoteRoot), `repository folder holding manifest.json ("." for the top)`)
	revision := fs.String("revision", "main", "branch, tag or commit")
	endpoint := fs.String("endpoint", envOr("HF_ENDPOINT", download.DefaultEndpoint), "server (a mirror, or a test server)")
	out := fs.String("out", "data", "local root of the layout")
	withDocs := fs.Bool("with-docs", false, "also fetch docs_selected.jsonl and its source manifest (for retraining tokenizers)")
	valBytes := fs.String("val-bytes", "auto", "fetch the validation byte sidecar (fineweb_val_bytes_*.bin): auto (CaseOps datasets), yes or no")
	skipManifest := fs.Bool("skip-manifest", false, "use OUT/manifest.json as it is")
	force := fs.Bool("force", false, "fetch files again even when present")
	retries := fs.Int("retries", 5, "retries of a broken transfer, each resuming where it stopped")
	outf := addOutputFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("%w: at most one TRAIN_SHARDS argument, got %v", errUsage, fs.Args())
	case fs.NArg() == 1:
		n, err := strconv.Atoi(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%w: TRAIN_SHARDS %q is not a number", errUsage, fs.Arg(0))
		}
		*trainShards = n
	}
	if *trainShards < 0 {
		return fmt.Errorf("%w: --train-shards %d is negative", errUsage, *trainShards)
	}
	if *retries < 0 {
		*retries = -1
	} else if *retries == 0 {
		*retries = -1 // none
	}
	opt := download.Options{
		Out: *out, Repo: *repo, RemoteRoot: *root, Revision: *revision, Endpoint: *endpoint, Token: os.Getenv("HF_TOKEN"),
		Variant: *variant, Dataset: *dataset, TrainShards: *trainShards, WithDocs: *withDocs, ValBytes: *valBytes,
		SkipManifest: *skipManifest, Force: *force, Retries: *retries,
	}
	if *root == "" {
		opt.RemoteRoot = "."
	}
	opt.Progress = outf.progress(env)
	res, err := download.Fetch(ctx, opt)
	if err != nil {
		return err
	}
	if err := outf.save(res); err != nil {
		return err
	}
	if outf.json {
		return report.WriteJSON(env.stdout, res)
	}
	counts := map[string]int{}
	for _, f := range res.Files {
		counts[f.Status]++
	}
	t := report.NewTable(fmt.Sprintf("data download: %s from %s", res.Dataset, res.Repo), "what", "value")
	t.Add("shards", res.DatasetDir)
	t.Add("validation shards", res.ValShards)
	if res.ValBytes > 0 {
		t.Add("validation byte sidecar files", res.ValBytes)
	}
	t.Add("training shards", res.TrainShards)
	for _, p := range res.Tokenizers {
		t.Add("tokenizer", p)
	}
	t.Add("files downloaded", counts["downloaded"]+counts["resumed"])
	if counts["resumed"] > 0 {
		t.Add("  of which resumed", counts["resumed"])
	}
	t.Add("files already present", counts["present"])
	if counts["missing"] > 0 {
		t.Add("optional files missing", counts["missing"])
	}
	t.Add("bytes downloaded", res.Downloaded)
	t.Add("seconds", fmt.Sprintf("%.1f", res.Seconds))
	if err := t.Print(env.stdout); err != nil {
		return err
	}
	model := ""
	for _, p := range res.Tokenizers {
		if filepath.Ext(p) == ".model" {
			model = " --tokenizer " + p
		}
	}
	fmt.Fprintf(env.stdout, "train on it: golf train --data %s%s\n", res.DatasetDir, model)
	return nil
}
