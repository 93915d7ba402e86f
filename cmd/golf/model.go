package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/paramgolf/golf/internal/report"
	"github.com/paramgolf/golf/model"
	"github.com/paramgolf/golf/quant"
	"github.com/paramgolf/golf/train"
)

func init() {
	register(&command{
		name:    "model",
		summary: "show the parameters a preset or config builds: shape, class, initialiser, optimizer group, storage",
		run:     runModel,
	})
}

// modelParam is one row of golf model's output.
type modelParam struct {
	Name    string      `json:"name"`
	Shape   []int       `json:"shape"`
	Params  int         `json:"params"`
	Class   model.Class `json:"class"`
	Init    model.Init  `json:"init"`
	Group   train.Group `json:"optimizer_group"`
	Storage string      `json:"storage"`
}

// modelReport is golf model's JSON output.
type modelReport struct {
	Preset     string       `json:"preset,omitempty"`
	Config     string       `json:"config,omitempty"`
	Scheme     string       `json:"scheme"`
	Model      model.Config `json:"model"`
	Total      int          `json:"total_params"`
	ByClass    []classCount `json:"by_class"`
	Virtual    int          `json:"virtual_layers"`
	Encoder    []int        `json:"encoder_layers"`
	Decoder    []int        `json:"decoder_layers"`
	Parameters []modelParam `json:"parameters"`
}

type classCount struct {
	Class  model.Class `json:"class"`
	Params int         `json:"params"`
}

func runModel(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "model", "")
	preset := fs.String("preset", "", "model preset: "+strings.Join(model.Presets(), ", ")+" (default tiny)")
	configPath := fs.String("config", "", "run configuration JSON file (see golf train --config)")
	schemeName := fs.String("scheme", "int6-sd", "quantization scheme whose storage rule the table shows")
	outf := addOutputFlags(fs)
	fs.Lookup("quiet").Usage = "no progress lines (golf model prints none)"
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	var cfg model.Config
	switch {
	case *preset != "" && *configPath != "":
		return fmt.Errorf("%w: give --preset or --config, not both", errUsage)
	case *configPath != "":
		rc, err := train.LoadRunConfig(*configPath)
		if err != nil {
			return err
		}
		cfg = rc.Model
	default:
		name := *preset
		if name == "" {
			name = "tiny"
		}
		c, err := model.Preset(name)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg = c
	}
	scheme, err := quant.SchemeByName(*schemeName)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rep, err := describeModel(cfg, scheme)
	if err != nil {
		return err
	}
	rep.Preset, rep.Config = *preset, *configPath
	if err := outf.save(rep); err != nil {
		return err
	}
	if outf.json {
		return report.WriteJSON(env.stdout, rep)
	}
	t := report.NewTable(fmt.Sprintf("model %s: %s parameters, %d physical / %d virtual layers (storage: scheme %s)",
		cfg.Name, groupDigits(rep.Total), cfg.NumLayers, rep.Virtual, scheme.Name),
		"parameter", "shape", "params", "class", "init", "optimizer", "storage")
	for _, p := range rep.Parameters {
		t.Add(p.Name, shapeString(p.Shape), p.Params, p.Class, p.Init, p.Group, p.Storage)
	}
	if err := t.Print(env.stdout); err != nil {
		return err
	}
	s := report.NewTable("", "class", "params", "share")
	for _, c := range rep.ByClass {
		s.Add(c.Class, c.Params, fmt.Sprintf("%.1f%%", 100*float64(c.Params)/float64(rep.Total)))
	}
	s.Add("total", rep.Total, "100%")
	fmt.Fprintln(env.stdout)
	if err := s.Print(env.stdout); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "\nencoder layers %v, decoder layers %v\n", rep.Encoder, rep.Decoder)
	return nil
}

// describeModel lists cfg's parameters with their optimizer group and their
// storage rule under scheme.
func describeModel(cfg model.Config, scheme quant.Scheme) (*modelReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &modelReport{Scheme: scheme.Name, Model: cfg, Virtual: cfg.NumVirtualLayers()}
	rep.Encoder, rep.Decoder = cfg.LayerOrder(true)
	perClass := map[model.Class]int{}
	for _, p := range cfg.Params() {
		g, err := train.GroupOf(p.Class)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		n := p.NumElements()
		rep.Parameters = append(rep.Parameters, modelParam{
			Name: p.Name, Shape: p.Shape, Params: n, Class: p.Class, Init: p.Init, Group: g,
			Storage: scheme.RuleFor(p.Shape, p.Class).String(),
		})
		rep.Total += n
		perClass[p.Class] += n
	}
	for _, c := range model.Classes() {
		if n, ok := perClass[c]; ok {
			rep.ByClass = append(rep.ByClass, classCount{c, n})
		}
	}
	return rep, nil
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// groupDigits writes n with thousands separators: 35945673 -> "35,945,673".
func groupDigits(n int) string {
	s := fmt.Sprint(n)
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	return strings.Join(parts, ",")
}
