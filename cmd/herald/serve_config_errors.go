package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The messages of yaml.v3's TypeError that configErrors rewrites.
var (
	yamlLine      = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	yamlUnknown   = regexp.MustCompile(`(?s)^field (.*) not found in type \S+$`)
	yamlWrongType = regexp.MustCompile("(?s)^cannot unmarshal !!?(\\S*)(?: `(.*)`)? into (.+)$")
)

// configErrors rewrites a yaml.v3 decoding error of the configuration file
// in the file's own words: the key's path ("tokens[0].tokn"), what was
// expected and what was found, the closest known key for a typo. Go type
// names ("main.serveConfig", "int64") and YAML tags ("!!seq") never reach
// the operator. Errors it does not know come back unchanged.
func configErrors(raw []byte, cfg any, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil {
		return err
	}
	lines := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		lines = append(lines, explainYAMLError(&doc, reflect.TypeOf(cfg), e))
	}
	return errors.New(strings.Join(lines, "; "))
}

func explainYAMLError(doc *yaml.Node, root reflect.Type, msg string) string {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if u := yamlUnknown.FindStringSubmatch(rest); u != nil {
		path, parent := keyAt(doc, line, u[1])
		if path == "" {
			path = u[1]
		}
		out := fmt.Sprintf("line %d: unknown key %q", line, path)
		if s := closestKey(u[1], yamlKeys(typeAt(root, parent))); s != "" {
			out += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return out
	}
	if w := yamlWrongType.FindStringSubmatch(rest); w != nil {
		path := valueAt(doc, line)
		got := map[string]string{"seq": "a list", "map": "a mapping", "null": "nothing"}[w[1]]
		if got == "" {
			got = strconv.Quote(w[2])
		}
		if got == `""` {
			got = "a value of another kind"
		}
		out := fmt.Sprintf("line %d: ", line)
		if path != "" {
			out += path + ": "
		}
		return out + fmt.Sprintf("expected %s, not %s", goKind(w[3]), got)
	}
	// Something yaml.v3 says otherwise: keep the line, never a Go type.
	if i := strings.Index(rest, " in type "); i >= 0 {
		rest = rest[:i]
	}
	return fmt.Sprintf("line %d: %s", line, rest)
}

// goKind names what a Go type accepts in YAML, for a person.
func goKind(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return "a mapping"
}

// walkYAML calls visit with every mapping entry of n, key and value, and
// the path of the mapping that holds it (list indexes as [0]), until visit
// returns true.
func walkYAML(n *yaml.Node, visit func(k, v *yaml.Node, at []string) bool) {
	var walk func(n *yaml.Node, at []string) bool
	walk = func(n *yaml.Node, at []string) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, at) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, append(at, "["+strconv.Itoa(i)+"]")) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if visit(k, v, at) || walk(v, append(at, k.Value)) {
					return true
				}
			}
		}
		return false
	}
	walk(n, nil)
}

// keyAt finds the mapping key named key on line, and returns its path and
// the path of the mapping that holds it.
func keyAt(n *yaml.Node, line int, key string) (path string, parent []string) {
	walkYAML(n, func(k, _ *yaml.Node, at []string) bool {
		if k.Line == line && k.Value == key {
			path, parent = joinPath(append(at, k.Value)), at
			return true
		}
		return false
	})
	return path, parent
}

// valueAt returns the path of the key whose value starts on line.
func valueAt(n *yaml.Node, line int) string {
	var found string
	walkYAML(n, func(k, v *yaml.Node, at []string) bool {
		if v.Line == line && (v.Kind == yaml.ScalarNode || v.Style == yaml.FlowStyle) {
			found = joinPath(append(at, k.Value))
			return true
		}
		return false
	})
	return found
}

func joinPath(at []string) string {
	var b strings.Builder
	for _, p := range at {
		if b.Len() > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// typeAt follows a key path from t through struct fields (by their yaml
// names), slices and pointers.
func typeAt(t reflect.Type, path []string) reflect.Type {
	for t != nil && (t.Kind() == reflect.Pointer) {
		t = t.Elem()
	}
	for _, p := range path {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if strings.HasPrefix(p, "[") {
			continue
		}
		next, ok := fieldType(t, p)
		if !ok {
			return nil
		}
		t = next
	}
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		t = t.Elem()
	}
	return t
}

func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			if ft, ok := fieldType(f.Type, name); ok {
				return ft, true
			}
			continue
		}
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// yamlKeys lists the yaml keys a struct type accepts.
func yamlKeys(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case strings.Contains(opts, "inline"):
			keys = append(keys, yamlKeys(f.Type)...)
		case tag != "" && tag != "-":
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// closestKey returns the known key nearest to typed, if it is near enough
// to be a typo.
func closestKey(typed string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(typed, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes: keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
