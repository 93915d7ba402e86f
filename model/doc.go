// Package model builds the challenge's GPT family, from the first baseline
// of OpenAI's Parameter Golf train_gpt.py to the final record (PR #2135), as
// GoMLX graphs that run unchanged on the pure-Go backend (CPU) and on XLA
// (GPUs).
//
// # The module registry
//
// The network is a list of modules (modules.go: the one place where the
// config's options decide which modules exist). Each module owns, in its
// own file, its parameters — name, shape, Class and Init — and its forward
// pass: embedding.go (tok_emb, BigramHash), smear.go (SmearGate),
// attention.go (projections, q_gain, partial RoPE, XSA, the sparse gate,
// document masks), mlp.go, block.go (resid_mix, scales, LN scale),
// skips.go (U-Net skips and gates), lanes.go (parallel two-lane
// residuals), valueembed.go, head.go (tied or untied head, softcap,
// AsymLogit). Config.Params concatenates the modules' parameters; every
// Tensor made from them carries its Class and Init, so the trainer picks
// optimizer groups and the quantizer storage rules from the class alone.
//
// # The forward pass
//
// For int32 tokens [B, T] (record-stack.md §2):
//
//	e  = tok_emb[tokens] (+ bigram hash);  e = smear(e)
//	x0 = x = rmsnorm(e)
//	encoder positions (physical layers, see Config.LayerOrder):
//	          x = block_i(x, x0); push x
//	decoder position j: x = skip_j(x, pop()); x = block_i(x, x0)
//	          (two-lane parallel blocks from ParallelStartLayer on)
//	block_i:  x = mix0 ⊙ x + mix1 ⊙ x0
//	          x = x + attn_scale ⊙ attn(s_i · rmsnorm(x))
//	          x = x + mlp_scale  ⊙ mlp(s_i · rmsnorm(x))
//	attn:     q, k, v = n c_qᵀ, n c_kᵀ, n c_vᵀ         (GQA: fewer KV heads)
//	          q, k = rope(rmsnorm(q)), rope(rmsnorm(k)); q = q_gain ⊙ q
//	          y = softmax(q kᵀ / sqrt(head_dim) + mask) v  (causal; per document with segments)
//	          y -= (y·v̂) v̂ (XSA);  y *= σ(gate) (sparse gate);  out = y projᵀ
//	mlp:      proj(φ(fc(n))), φ = relu² or leaky_relu(0.5)²
//	logits:   z = 30 tanh(rmsnorm(x) tok_embᵀ / 30)   (tied embedding)
//	loss:     logsumexp(z) - z[target]                  (nats per token)
//
// rmsnorm(x) = x / sqrt(mean(x²) + eps) has no weight. Linear weights are
// [out, in] as in PyTorch. Parameter names (`tok_emb`, `skip_weights`,
// `block_3/attn/c_q`, ...) are GoMLX context scopes, so checkpoints and
// artifacts read plainly. With depth recurrence (Config.NumLoops) physical
// weights are shared by several virtual layers: LN scale, q_gain and the
// rest follow the physical index, adapters (Options.Adapter) and skips the
// virtual position.
//
// Every matmul is built by MatMulNT or MatMulNN, whose gradients are
// matmuls (see matmul.go for why gomlx v0.26.0's own are not usable), and
// every slice of a differentiated tensor by sliceAxis, whose gradient
// avoids Pad (slice.go).
//
// Config.AttentionImpl "chunked" replaces the materialised score matrix
// (the reference formulation, the default) by query blocks with a
// recomputing backward pass (attention_chunked.go): the same values and
// gradients, no T×T tensor kept for the backward pass, and the key blocks
// after each query block's last position skipped.
//
// Hooks for the other packages: Options (document segments, unlooped
// graphs, test-time-training adapters); Config.QAT adds straight-through
// fake quantization of the matrices, switched with SetQATEnabled without
// recompiling; InputGrams gives each matrix's input Gram for GPTQ.
package model
