package model

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// InitKind is how an initialiser fills a tensor.
type InitKind uint8

// Initialiser kinds. The numbers are not stored; the text form is.
const (
	// InitZeros: every value 0 (output projections, gates, lambdas).
	InitZeros InitKind = iota + 1
	// InitConst: every value Init.Value (scales 1, q_gain 1.5 or 5).
	InitConst
	// InitNormal: independent Normal(0, Init.Value) values (embeddings).
	InitNormal
	// InitUniformFanIn: Uniform(±1/sqrt(in)) with in the last dimension,
	// PyTorch's nn.Linear default (the baseline's matrices).
	InitUniformFanIn
	// InitOrthogonal: a 2-D matrix with orthonormal rows (or columns, when
	// it is taller than wide) times the gain Init.Value, as
	// torch.nn.init.orthogonal_: the Q factor of a Gaussian matrix's QR
	// decomposition, columns signed by R's diagonal (the record's matrices).
	InitOrthogonal
	// InitRows: row i of the first axis is the constant Init.Rows[i]
	// (resid_mix = [1; 0]).
	InitRows
)

// Init is a parameter's initialiser. Its text form ("zeros", "const(1)",
// "normal(0.005)", "uniform_fan_in", "orthogonal(1)", "rows(1,0)") is what
// checkpoints, artifacts and `golf model` show.
type Init struct {
	Kind  InitKind
	Value float64   // InitConst: the value; InitNormal: the std; InitOrthogonal: the gain
	Rows  []float64 // InitRows: one value per row
}

// Zeros is the all-zeros initialiser (InitZeros).
func Zeros() Init { return Init{Kind: InitZeros} }

// Const sets every value to v (InitConst).
func Const(v float64) Init { return Init{Kind: InitConst, Value: v} }

// Normal draws independent Normal(0, std²) values (InitNormal).
func Normal(std float64) Init { return Init{Kind: InitNormal, Value: std} }

// UniformFanIn draws Uniform(±1/sqrt(in)) values, in the last dimension
// (InitUniformFanIn, PyTorch's nn.Linear default).
func UniformFanIn() Init { return Init{Kind: InitUniformFanIn} }

// Orthogonal is an orthonormal-rows (or -columns) matrix times gain
// (InitOrthogonal, torch.nn.init.orthogonal_).
func Orthogonal(gain float64) Init { return Init{Kind: InitOrthogonal, Value: gain} }

// Rows sets row i of the first axis to v[i] (InitRows).
func Rows(v ...float64) Init { return Init{Kind: InitRows, Rows: v} }

// String returns the text form.
func (in Init) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch in.Kind {
	case InitZeros:
		return "zeros"
	case InitConst:
		return "const(" + f(in.Value) + ")"
	case InitNormal:
		return "normal(" + f(in.Value) + ")"
	case InitUniformFanIn:
		return "uniform_fan_in"
	case InitOrthogonal:
		return "orthogonal(" + f(in.Value) + ")"
	case InitRows:
		parts := make([]string, len(in.Rows))
		for i, v := range in.Rows {
			parts[i] = f(v)
		}
		return "rows(" + strings.Join(parts, ",") + ")"
	}
	return ""
}

// ParseInit reads the text form of an initialiser.
func ParseInit(s string) (Init, error) {
	name, arg, hasArg := strings.Cut(s, "(")
	if hasArg {
		if !strings.HasSuffix(arg, ")") {
			return Init{}, fmt.Errorf("initialiser %q: missing ')'", s)
		}
		arg = strings.TrimSuffix(arg, ")")
	}
	num := func() (float64, error) {
		v, err := strconv.ParseFloat(arg, 64)
		if err != nil || !hasArg || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("initialiser %q: want a finite number in parentheses", s)
		}
		return v, nil
	}
	switch name {
	case "zeros", "uniform_fan_in":
		if hasArg {
			return Init{}, fmt.Errorf("initialiser %q takes no argument", s)
		}
		if name == "zeros" {
			return Zeros(), nil
		}
		return UniformFanIn(), nil
	case "const", "normal", "orthogonal":
		v, err := num()
		if err != nil {
			return Init{}, err
		}
		return map[string]Init{"const": Const(v), "normal": Normal(v), "orthogonal": Orthogonal(v)}[name], nil
	case "rows":
		if !hasArg || arg == "" {
			return Init{}, fmt.Errorf("initialiser %q: want rows(v1,v2,...)", s)
		}
		var rows []float64
		for _, p := range strings.Split(arg, ",") {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return Init{}, fmt.Errorf("initialiser %q: row value %q is not a finite number", s, p)
			}
			rows = append(rows, v)
		}
		return Rows(rows...), nil
	}
	return Init{}, fmt.Errorf("unknown initialiser %q", s)
}

// MarshalText writes the text form.
func (in Init) MarshalText() ([]byte, error) { return []byte(in.String()), nil }

// UnmarshalText reads the text form.
func (in *Init) UnmarshalText(b []byte) error {
	v, err := ParseInit(string(b))
	if err != nil {
		return err
	}
	*in = v
	return nil
}

// check reports an initialiser that cannot fill the shape.
func (in Init) check(shape []int) error {
	switch in.Kind {
	case InitZeros, InitConst, InitNormal:
	case InitUniformFanIn:
		if len(shape) == 0 || shape[len(shape)-1] == 0 {
			return fmt.Errorf("uniform_fan_in needs a last dimension, shape %v", shape)
		}
	case InitOrthogonal:
		if len(shape) != 2 {
			return fmt.Errorf("orthogonal needs a 2-D shape, got %v", shape)
		}
	case InitRows:
		if len(shape) == 0 || shape[0] != len(in.Rows) {
			return fmt.Errorf("rows(%d values) does not fit shape %v", len(in.Rows), shape)
		}
	default:
		return fmt.Errorf("unknown initialiser kind %d", in.Kind)
	}
	return nil
}

// paramRNG is the random stream of one parameter: PCG keyed by (seed,
// FNV-64a of the name), so adding a parameter never changes another's
// initial values.
func paramRNG(seed int64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// fill returns the initial values of a tensor of the given shape.
func (in Init) fill(shape []int, rng *rand.Rand) ([]float32, error) {
	if err := in.check(shape); err != nil {
		return nil, err
	}
	data := make([]float32, numElements(shape))
	switch in.Kind {
	case InitConst:
		for i := range data {
			data[i] = float32(in.Value)
		}
	case InitNormal:
		for i := range data {
			data[i] = float32(rng.NormFloat64() * in.Value)
		}
	case InitUniformFanIn:
		bound := 1 / math.Sqrt(float64(shape[len(shape)-1]))
		for i := range data {
			data[i] = float32((2*rng.Float64() - 1) * bound)
		}
	case InitOrthogonal:
		orthogonal(data, shape[0], shape[1], in.Value, rng)
	case InitRows:
		per := len(data) / max(shape[0], 1)
		for r, v := range in.Rows {
			for i := range per {
				data[r*per+i] = float32(v)
			}
		}
	}
	return data, nil
}

// orthogonal fills w [rows, cols] as torch.nn.init.orthogonal_: draw a
// Gaussian matrix with at least as many rows as columns (transposed when
// rows < cols), take its QR decomposition, multiply each column of Q by the
// sign of R's diagonal entry, transpose back, and scale by gain.
func orthogonal(w []float32, rows, cols int, gain float64, rng *rand.Rand) {
	m, n := rows, cols
	if rows < cols {
		m, n = cols, rows
	}
	a := mat.NewDense(m, n, nil)
	for i := range m {
		for j := range n {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var q, r mat.Dense
	qr.QTo(&q)
	qr.RTo(&r)
	for i := range m {
		for j := range n {
			v := q.At(i, j) * gain
			if r.At(j, j) < 0 {
				v = -v
			}
			if rows < cols {
				w[j*cols+i] = float32(v) // transpose back: w[j][i]
			} else {
				w[i*cols+j] = float32(v)
			}
		}
	}
}
