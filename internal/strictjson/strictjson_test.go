package strictjson

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type rec struct {
		A int `json:"a"`
	}
	var r rec
	if err := Decode([]byte(` {"a": 3} `), &r); err != nil || r.A != 3 {
		t.Fatalf("valid: %v %+v", err, r)
	}
	for in, want := range map[string]string{
		`{"a": 1, "b": 2}`: `unknown field "b"`,
		`{"a": 1} {}`:      "after the JSON value",
		`{"A": 1}`:         `unknown field "A"`,
		`[1]`:              "cannot unmarshal",
	} {
		if err := Decode([]byte(in), &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// Nested structs, slices, maps and embedded structs are checked too.
func TestDecodeNested(t *testing.T) {
	type inner struct {
		X float64 `json:"x"`
	}
	type Base struct {
		Name string `json:"name"`
	}
	type outer struct {
		Base
		In   inner            `json:"in"`
		List []inner          `json:"list"`
		ByK  map[string]inner `json:"by_k"`
		Ptr  *inner           `json:"ptr,omitempty"`
		Raw  any              `json:"raw"`
	}
	var o outer
	ok := `{"name":"n","in":{"x":1},"list":[{"x":2}],"by_k":{"a":{"x":3}},"ptr":{"x":4},"raw":{"Anything":1}}`
	if err := Decode([]byte(ok), &o); err != nil || o.Name != "n" || o.Ptr.X != 4 {
		t.Fatalf("valid nested: %v %+v", err, o)
	}
	for _, bad := range []string{`{"in":{"X":1}}`, `{"list":[{"x":1},{"y":2}]}`, `{"by_k":{"a":{"X":1}}}`, `{"ptr":{"X":1}}`, `{"Name":"n"}`} {
		if err := Decode([]byte(bad), &o); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
