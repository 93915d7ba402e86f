package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/paramgolf/golf/model"
)

// referenceLosses is testdata/reference_losses.json, written by
// gen_reference_losses.py: the challenge's train_gpt.py run from golf's
// initial weights on data/testdata/ref_sp1024.
type referenceLosses struct {
	ReferenceSHA256 string            `json:"reference_sha256"`
	InitSHA256      string            `json:"init_sha256"` // the initweights tensor file the reference started from
	Env             map[string]string `json:"env"`
	TrainLoss       []float64         `json:"train_loss"`
	Final           struct {
		ValLoss float64 `json:"val_loss"`
		ValBPB  float64 `json:"val_bpb"`
	} `json:"final"`
}

// golf's tiny preset with the default micro-batch (the whole 2,048-token
// step at once on the CPU) and with 256-token micro-batches (8 of them, as
// the reference's grad_accum_steps) trains exactly as the reference's own
// train_gpt.py does from the same weights on the same shards: every step's
// loss and the final val_loss/val_bpb agree to float32 rounding.
func TestRunEqualsReferenceTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the tiny preset twice")
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "reference_losses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref referenceLosses
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	cfg, s, err := PresetSettings("tiny")
	if err != nil {
		t.Fatal(err)
	}
	s.Iterations, s.Warmdown, s.WarmupSteps, s.MaxSeconds = len(ref.TrainLoss), 3, 0, 0
	s.ValEvery, s.ValTokens, s.LogEvery = 0, 0, 1
	if s.BatchTokens != 2048 || s.SeqLen != 256 || ref.Env["TRAIN_BATCH_TOKENS"] != "2048" || ref.Env["WARMDOWN_ITERS"] != "3" {
		t.Fatalf("the golden file's settings (%v) are not the tiny preset's", ref.Env)
	}
	// The reference started from golf's initial weights as initweights
	// writes them: a change to the initialisation (or to the tensor file)
	// makes the golden file stale, and says so here.
	init, err := model.InitWeights(cfg, s.Seed)
	if err != nil {
		t.Fatal(err)
	}
	initPath := filepath.Join(t.TempDir(), "init.bin")
	if err := WriteTensors(initPath, init); err != nil {
		t.Fatal(err)
	}
	initBytes, err := os.ReadFile(initPath)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(initBytes); hex.EncodeToString(sum[:]) != ref.InitSHA256 {
		t.Fatalf("golf's initial weights (seed %d) have sha256 %x, the reference started from %s: regenerate testdata/reference_losses.json (gen_reference_losses.py)", s.Seed, sum, ref.InitSHA256)
	}
	for _, micro := range []int{0, 256} {
		o := Options{Settings: s, Model: cfg, DataDir: filepath.Join("..", "data", "testdata", "ref_sp1024"),
			Backend: goBackend(t), OutDir: t.TempDir()}
		o.MicroBatchTokens = micro
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.History.Train) != len(ref.TrainLoss) {
			t.Fatalf("micro-batch %d: %d steps, the reference ran %d", micro, len(res.History.Train), len(ref.TrainLoss))
		}
		for i, p := range res.History.Train {
			w := ref.TrainLoss[i]
			t.Logf("micro-batch %d step %d: golf %.8f reference %.8f (rel %.2g)", micro, i+1, p.Loss, w, math.Abs(p.Loss-w)/w)
			if d := math.Abs(p.Loss - w); !(d <= 1e-5*w) {
				t.Errorf("micro-batch %d, step %d: train loss %.8f, reference %.8f", micro, i+1, p.Loss, w)
			}
		}
		t.Logf("micro-batch %d: val_loss %.8f (reference %.8f), val_bpb %.8f (reference %.8f)", micro, res.ValLoss, ref.Final.ValLoss, res.ValBPB, ref.Final.ValBPB)
		if math.Abs(res.ValLoss-ref.Final.ValLoss) > 1e-5*ref.Final.ValLoss || math.Abs(res.ValBPB-ref.Final.ValBPB) > 1e-5*ref.Final.ValBPB {
			t.Errorf("micro-batch %d: final val_loss %.8f val_bpb %.8f, reference %.8f %.8f", micro, res.ValLoss, res.ValBPB, ref.Final.ValLoss, ref.Final.ValBPB)
		}
	}
}
