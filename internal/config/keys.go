package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKeys walks a YAML file's tree along the configuration's types
// before it is decoded, and names what the decoder would report by Go type
// or not at all: an unknown key by its path with the key likely meant
// (the nearest one of its section, or one of that name in another
// section), a key without a value (which would silently keep its default),
// a section given a single value, a list given one, a value of the wrong
// type by its key (checkScalar).
func checkKeys(doc *yaml.Node) []error {
	if doc == nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	w := keyWalker{seen: map[aliasUse]bool{}}
	w.walk(doc.Content[0], reflect.TypeOf(Config{}), "")
	return w.errs
}

// keyWalker walks a tree once: an anchored node is walked at its first
// alias of a type only, so that aliases of aliases (a "billion laughs"
// file) cannot make the walk exponential.
type keyWalker struct {
	errs []error
	seen map[aliasUse]bool
}

type aliasUse struct {
	n *yaml.Node
	t reflect.Type
}

func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
		if w.seen[aliasUse{n, t}] {
			return
		}
		w.seen[aliasUse{n, t}] = true
	}
	errs := &w.errs
	name := path
	if name == "" {
		name = "the file"
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch t.Kind() {
	case reflect.Struct:
		switch {
		case isNull: // a section without settings: its defaults
		case n.Kind != yaml.MappingNode:
			*errs = append(*errs, fmt.Errorf("line %d: %s takes settings (key: value lines indented below it), not a single value", n.Line, name))
		default:
			w.walkSection(n, t, path)
		}
		return
	case reflect.Slice:
		switch {
		case isNull:
		case n.Kind != yaml.SequenceNode:
			*errs = append(*errs, fmt.Errorf("line %d: %s is a list: [a, b], or one \"- item\" line each", n.Line, name))
		default:
			for i, e := range n.Content {
				w.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
		return
	case reflect.Map:
		if !isNull && n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				w.walk(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value)
			}
		}
		return // other mistakes: the decoder's message names the line
	}
	switch {
	case isNull:
		*errs = append(*errs, fmt.Errorf("line %d: %s has no value: give one, or remove the line to keep the default", n.Line, name))
	case n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode:
		*errs = append(*errs, fmt.Errorf("line %d: %s takes a single value, not a %s", n.Line, name, map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[n.Kind]))
	case n.Kind == yaml.ScalarNode:
		if err := checkScalar(n, t, name); err != nil {
			*errs = append(*errs, err)
		}
	}
}

// walkSection checks the keys of a mapping n of struct type t.
func (w *keyWalker) walkSection(n *yaml.Node, t reflect.Type, path string) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" { // a merge of an anchored mapping (or a list of them)
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					w.walk(m, t, path)
				}
			} else {
				w.walk(v, t, path)
			}
			continue
		}
		ft, ok := fields[k.Value]
		if !ok {
			w.errs = append(w.errs, unknownKey(k, fields, path))
			continue
		}
		w.walk(v, ft, join(path, k.Value))
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields are the keys of struct type t and their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fields[name] = ft
	}
	return fields
}

// unknownKey is the error of key k, unknown in the section at path of the
// given fields, with the key likely meant.
func unknownKey(k *yaml.Node, fields map[string]reflect.Type, path string) error {
	full := join(path, k.Value)
	if near := nearestKey(k.Value, fields); near != "" {
		return fmt.Errorf("line %d: unknown key %s (did you mean %s?)", k.Line, full, join(path, near))
	}
	if elsewhere := keyPaths(k.Value); len(elsewhere) > 0 {
		if len(elsewhere) > 3 {
			elsewhere = append(elsewhere[:3], "...")
		}
		return fmt.Errorf("line %d: unknown key %s (did you mean %s?)", k.Line, full, strings.Join(elsewhere, ", "))
	}
	return fmt.Errorf("line %d: unknown key %s (see docs/reference.md)", k.Line, full)
}

// nearestKey is the key of fields closest to key (case aside, or within a
// few edits), or "".
func nearestKey(key string, fields map[string]reflect.Type) string {
	best, bestD := "", max(2, len(key)/4)+1
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if d := editDistance(strings.ToLower(key), name); d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// keyPaths are the paths of the keys named key in any section, shallowest
// first ([] marks a list's items).
func keyPaths(key string) []string {
	var paths []string
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		for t.Kind() == reflect.Slice {
			t, path = t.Elem(), path+"[]"
		}
		if t.Kind() != reflect.Struct || depth > 6 {
			return
		}
		fields := yamlFields(t)
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			p := join(path, name)
			if strings.EqualFold(name, key) {
				paths = append(paths, p)
			}
			walk(fields[name], p, depth+1)
		}
	}
	walk(reflect.TypeOf(Config{}), "", 0)
	slices.SortStableFunc(paths, func(a, b string) int { return strings.Count(a, ".") - strings.Count(b, ".") })
	return paths
}

// editDistance is the Levenshtein distance of a and b, a swap of two
// neighbours counting one.
func editDistance(a, b string) int {
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// checkPaths refuses a path setting (data_dir, a *_file) that starts
// with ~: no shell expands it in a file (nor in --data-dir=~/...), so it
// would name a directory "~" below the working directory.
func (c *Config) checkPaths() []error {
	var errs []error
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
					walk(v.Field(i), join(path, name))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.String:
			if (strings.HasSuffix(path, "_dir") || strings.HasSuffix(path, "_file")) && strings.HasPrefix(v.String(), "~") {
				errs = append(errs, fmt.Errorf("%s %q: nothing expands ~ here: give the path in full (/home/...)", path, v.String()))
			}
		}
	}
	walk(reflect.ValueOf(*c), "")
	return errs
}
