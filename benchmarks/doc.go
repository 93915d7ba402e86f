// Package benchmarks holds the project's Go benchmarks that span packages
// (tokenizer, data, model, train, quant). It has no API; its _test.go files
// are the benchmarks. Each reports its speed against a reference measured in
// the same run (spm_encode for the tokenizer, os.ReadFile for shard reading,
// gomlx's own gradients for the model, ...), so the ratios hold on any
// machine even when absolute figures do not:
//
//	go test ./benchmarks -run XXX -bench Tokenizer -benchtime 3x
//	go test ./benchmarks -run XXX -bench . -benchtime 1x
package benchmarks
