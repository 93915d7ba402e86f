package golf_test

import (
	"context"
	"fmt"

	golf "github.com/paramgolf/golf"
	"github.com/paramgolf/golf/quant"
)

// Pack a trained checkpoint with the record's scheme (GPTQ Hessians
// calibrated on the run's own training shards), write the artifact, and
// evaluate it from the file alone.
func Example() {
	ctx := context.Background()
	packed, err := golf.PackCheckpoint(ctx, "runs/x/checkpoint", quant.Record(),
		golf.PackOptions{Pack: quant.PackOptions{Codec: "cm", Group: quant.GroupClass}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := packed.WriteFile("model.golf"); err != nil {
		fmt.Println(err)
		return
	}
	res, err := golf.EvaluateArtifact(ctx, "model.golf", golf.EvalOptions{DataDir: "shards/", Stride: -1, ValTokens: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes, val_bpb %.4f\n", len(packed.Bytes), res.ValBPB)
}
