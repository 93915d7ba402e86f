package quant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/paramgolf/golf/model"
)

// EvalSettings are the evaluation defaults an artifact carries, so that an
// artifact alone can be scored the way its run was (train.Settings holds the
// same fields under the same JSON names).
type EvalSettings struct {
	Preset          string `json:"preset,omitempty"`
	SeqLen          int    `json:"seq_len"`
	EvalStride      int    `json:"eval_stride,omitempty"`
	EvalBatchTokens int    `json:"eval_batch_tokens,omitempty"`
	ValTokens       int    `json:"val_tokens,omitempty"`
}

// Meta is an artifact's typed metadata: the model configuration its
// tensors belong to and the evaluation settings of its run. An artifact
// written without a model (the zero Config: bare tensors, as some tests and
// benchmarks pack) has no Model; every other artifact's tensors are exactly
// Model.Params(), in order, with their shapes and classes.
type Meta struct {
	Model    model.Config `json:"model"`
	Settings EvalSettings `json:"settings"`
	// Source says where the weights came from ("checkpoint runs/x",
	// "synthetic record"); informational.
	Source string `json:"source,omitempty"`
}

// HasModel reports whether the metadata names a model (a non-zero Config).
func (m Meta) HasModel() bool { return !reflect.DeepEqual(m.Model, model.Config{}) }

// encodeMeta writes the metadata as JSON.
func encodeMeta(m Meta) ([]byte, error) {
	if m.HasModel() {
		if err := m.Model.Validate(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(m)
}

// decodeMeta reads metadata strictly: unknown fields are an error, and a
// model config must be valid.
func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("metadata JSON: %w", err)
	}
	if dec.More() {
		return Meta{}, fmt.Errorf("metadata JSON: data after the object")
	}
	if m.HasModel() {
		if err := m.Model.Validate(); err != nil {
			return Meta{}, err
		}
	}
	return m, nil
}

// checkModelTensors reports how the tensor table differs from the model's
// parameters (order, names, shapes, classes).
func checkModelTensors(cfg model.Config, ts []QTensor) error {
	ps := cfg.Params()
	if len(ps) != len(ts) {
		return fmt.Errorf("%d tensors, the model config has %d parameters", len(ts), len(ps))
	}
	for i, p := range ps {
		t := &ts[i]
		if t.Name != p.Name || !equalInts(t.Shape, p.Shape) || t.Class != p.Class {
			return fmt.Errorf("tensor %d is %s %v (%v), the model's parameter %d is %s %v (%v)", i, t.Name, t.Shape, t.Class, i, p.Name, p.Shape, p.Class)
		}
	}
	return nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
