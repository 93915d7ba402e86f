package model

import (
	"fmt"
	"strings"
	"testing"
)

// matmulFLOPsFromParams counts the forward weight-matmul flops per token
// from the parameter list: 2 per element of every matrix the forward pass
// multiplies by, a block's once per virtual layer that runs it. It shares
// no code with FLOPsPerToken.
func matmulFLOPsFromParams(c Config, looped bool) float64 {
	enc, dec := c.LayerOrder(looped)
	uses := map[int]int{}
	for _, i := range append(append([]int{}, enc...), dec...) {
		uses[i]++
	}
	var total float64
	for _, p := range c.Params() {
		var layer int
		if _, err := fmt.Sscanf(p.Name, "block_%d/", &layer); err == nil {
			for _, suffix := range []string{"/attn/c_q", "/attn/c_k", "/attn/c_v", "/attn/proj", "/attn/gate", "/mlp/fc", "/mlp/proj"} {
				if strings.HasSuffix(p.Name, suffix) {
					total += 2 * float64(p.NumElements()) * float64(uses[layer])
				}
			}
			continue
		}
		switch p.Name {
		case "smear/gate", "bigram/proj", "ve/proj", "lm_head":
			total += 2 * float64(p.NumElements())
		case "tok_emb":
			if !c.UntiedHead {
				total += 2 * float64(p.NumElements()) // the tied head
			}
		}
	}
	return total
}

func TestFLOPsPerToken(t *testing.T) {
	// Hand-computed: the baseline's 9 blocks of 2·(512² + 2·256·512 + 512²
	// + 2·1024·512) = 3,670,016 plus the tied head 2·1024·512; attention
	// 4·1024·512 per block.
	base, _ := Preset("baseline")
	f := base.FLOPsPerToken(1024, true)
	if f.Matmul != 9*3_670_016+1_048_576 || f.Attention != 9*2_097_152 || f.VirtualLayers != 9 {
		t.Errorf("baseline: %+v, want matmul 34,078,720, attention 18,874,368 over 9 layers", f)
	}
	// The baseline's matmul weights are all its parameters but the 20,552
	// control values: 2 flops each.
	if want := 2 * float64(base.NumParams()-20_552); f.Matmul != want {
		t.Errorf("baseline matmul %v, want 2 x (params - controls) = %v", f.Matmul, want)
	}
	// The record: 17 virtual layers looped, 11 unlooped, each
	// 2·(512² + 2·256·512 + 512² + 2·2048·512) + 2·8·12, head 2·8192·512,
	// SmearGate 2·12; attention at 2048.
	rec, _ := Preset("record")
	layer := 2.0*(512*512+2*256*512+512*512+2*2048*512) + 2*8*12
	for _, looped := range []bool{true, false} {
		n := 17.0
		if !looped {
			n = 11
		}
		f := rec.FLOPsPerToken(2048, looped)
		if f.Matmul != n*layer+2*8192*512+24 || f.Attention != n*4*2048*512 || f.VirtualLayers != int(n) {
			t.Errorf("record looped=%v: %+v", looped, f)
		}
		if f.Train() != 3*(f.Matmul+f.Attention) {
			t.Errorf("record: train flops %v are not 3 forward passes", f.Train())
		}
	}
	// Every preset and the full technique stack agree with the count from
	// the parameter shapes.
	configs := map[string]Config{"micro-record": microRecordConfig()}
	for _, p := range Presets() {
		configs[p], _ = Preset(p)
	}
	for name, c := range configs {
		for _, looped := range []bool{true, false} {
			if got, want := c.FLOPsPerToken(c.SeqLen, looped).Matmul, matmulFLOPsFromParams(c, looped); got != want {
				t.Errorf("%s looped=%v: matmul flops %v, from the parameters %v", name, looped, got, want)
			}
		}
	}
}
