package main

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigError is one mistake in a config file, with its line (0 if unknown).
type ConfigError struct {
	Line int
	Msg  string
}

// ConfigErrors are every mistake found in a config file, in line order.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", e.Line)
		}
		b.WriteString(e.Msg)
	}
	return b.String()
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// fromYAML turns a yaml.v3 decoding error into ConfigErrors: a TypeError
// holds one message per mistake, each starting with its line.
func fromYAML(err error) ConfigErrors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out ConfigErrors
	for _, m := range msgs {
		if sub := yamlLine.FindStringSubmatch(m); sub != nil {
			n, _ := strconv.Atoi(sub[1])
			out = append(out, ConfigError{Line: n, Msg: sub[2]})
			continue
		}
		out = append(out, ConfigError{Msg: strings.TrimPrefix(m, "yaml: ")})
	}
	return out
}

// fromValidation turns validation errors, each "field.path: message", into
// ConfigErrors with the line of that field in root.
func fromValidation(err error, root *yaml.Node) ConfigErrors {
	var out ConfigErrors
	for _, e := range flatten(err) {
		msg := e.Error()
		path, _, _ := strings.Cut(msg, ": ")
		out = append(out, ConfigError{Line: lineOf(root, path), Msg: msg})
	}
	return out
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

var pathPart = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// lineOf finds the line of a field path such as "routes[1].retries": the
// deepest node of the path that exists. It returns 0 if none does.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, m := range pathPart.FindAllStringSubmatch(path, -1) {
		if n == nil {
			break
		}
		switch {
		case m[1] != "" && n.Kind == yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					line, next = n.Content[i].Line, n.Content[i+1]
					break
				}
			}
			n = next
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			i, _ := strconv.Atoi(m[2])
			if i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

func (es ConfigErrors) sorted() ConfigErrors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// in prefixes each mistake with the file's path, compiler style
// ("modelgate.yaml:7: routes[0].retries: ...").
func (es ConfigErrors) in(path string) error {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d: %s", path, e.Line, e.Msg)
	}
	return errors.New(b.String())
}

// fractions finds scalars with a fraction (503.5) in the fields of t that
// hold integers: yaml.v3 truncates them without a word. Types that decode
// themselves are left to their own decoding.
func fractions(n *yaml.Node, t reflect.Type, path string) ConfigErrors {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	var errs ConfigErrors
	switch {
	case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
		return fractions(n.Content[0], t, path)
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t, map[string]reflect.Type{})
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if ft, ok := fields[key]; ok {
				errs = append(errs, fractions(n.Content[i+1], ft, joinPath(path, key))...)
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, fractions(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))...)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			errs = append(errs, fractions(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")...)
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && (reflect.Int <= t.Kind() && t.Kind() <= reflect.Uint64):
		if v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil && v != math.Trunc(v) {
			errs = append(errs, ConfigError{Line: n.Line, Msg: path + ": " + n.Value + ", want a whole number"})
		}
	}
	return errs
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// yamlFields maps the YAML keys of struct t, inline structs included, to
// their field types.
func yamlFields(t reflect.Type, out map[string]reflect.Type) map[string]reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			if ft := f.Type; ft.Kind() == reflect.Struct {
				yamlFields(ft, out)
			}
		case name == "":
			out[strings.ToLower(f.Name)] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
