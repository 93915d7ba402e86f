// Package model builds the challenge's GPT (the baseline of OpenAI's
// Parameter Golf train_gpt.py) as GoMLX graphs that run unchanged on the
// pure-Go backend (CPU) and on XLA (GPUs).
//
// The forward pass, for int32 tokens [B, T], mirrors the reference:
//
//	x0 = x = rmsnorm(tok_emb[tokens])
//	block i:  x = mix0 ⊙ x + mix1 ⊙ x0                 (resid_mix)
//	          x = x + attn_scale ⊙ attn(rmsnorm(x))
//	          x = x + mlp_scale  ⊙ proj(relu(fc(rmsnorm(x)))²)
//	attn:     q, k, v = x c_qᵀ, x c_kᵀ, x c_vᵀ         (GQA: fewer KV heads)
//	          q, k = rope(rmsnorm(q)), rope(rmsnorm(k)); q = q_gain ⊙ q
//	          y = softmax(q kᵀ / sqrt(head_dim) + causal) v; out = y projᵀ
//	U-Net:    the first L/2 blocks push x; each later block first adds
//	          skip_weights[i] ⊙ (the most recently pushed x)
//	logits:   z = 30 tanh(rmsnorm(x) tok_embᵀ / 30)    (tied embedding)
//	loss:     logsumexp(z) - z[target]                   (nats per token)
//
// rmsnorm(x) = x / sqrt(mean(x²) + eps) has no weight. Linear weights are
// [out, in] as in PyTorch. Parameter names (`tok_emb`, `skip_weights`,
// `block_3/attn/c_q`, ...) are GoMLX context scopes, so checkpoints and
// artifacts read plainly; Config.Params lists them with their Class.
//
// Every matmul is built by MatMulNT or MatMulNN, whose gradients are
// matmuls (see matmul.go for why gomlx v0.26.0's own are not usable).
//
// Hooks for the other packages: Config.QAT adds straight-through fake
// quantization of the Matrix weights, switched with SetQATEnabled without
// recompiling; InputGrams gives each weight's input Gram matrix for GPTQ.
package model
