package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// readYAML decodes YAML config text into viper's settings map, keeping as
// text, exactly as written, every unquoted scalar that a string-typed key
// holds. Left to YAML, client_secret: 012345 is the octal number 5349,
// true a boolean, 1.50 the float 1.5 and 2001-12-14 a date, which the
// decoder would then write back as "5349", "1", "1.5" or fail on: a secret
// silently different from the one written. A null stays null (unset).
func readYAML(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	settings := map[string]any{}
	if len(doc.Content) == 0 { // an empty file
		return settings, nil
	}
	root := doc.Content[0]
	k := textKeeper{seen: map[textVisit]bool{}}
	k.walk(root, reflect.TypeFor[fileConfig]())
	if err := root.Decode(&settings); err != nil {
		return nil, err
	}
	return settings, nil
}

// coercedTags are the types YAML gives an unquoted scalar that has a
// text of its own; a string-typed key keeps that text instead.
var coercedTags = map[string]bool{"!!int": true, "!!float": true, "!!bool": true, "!!timestamp": true}

const mergeTag = "!!merge"

// textKeeper walks the node tree along the type the file decodes into.
// Each node is visited once per type, so anchors used many times (or
// inside themselves) cost no more than the nodes they name.
type textKeeper struct {
	seen map[textVisit]bool
}

type textVisit struct {
	node *yaml.Node
	typ  reflect.Type
}

func (k *textKeeper) walk(n *yaml.Node, t reflect.Type) {
	n = deref(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || k.seen[textVisit{n, t}] {
		return
	}
	k.seen[textVisit{n, t}] = true
	switch t.Kind() {
	case reflect.String:
		if n.Kind == yaml.ScalarNode && coercedTags[n.ShortTag()] {
			n.Tag = "!!str"
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				k.walk(item, t.Elem())
			}
		} else {
			k.walk(n, t.Elem()) // one value for a list: see splitLists
		}
	case reflect.Map, reflect.Struct:
		k.mapping(n, t)
	}
}

// mapping walks the values of a mapping node, and its keys, which are
// names (of upstreams, params, headers, settings) and so text as well.
func (k *textKeeper) mapping(n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.ShortTag() == mergeTag { // <<: *defaults, or <<: [*a, *b]
			if m := deref(value); m != nil && m.Kind == yaml.SequenceNode {
				for _, item := range m.Content {
					k.walk(item, t)
				}
			} else {
				k.walk(value, t)
			}
			continue
		}
		k.walk(key, reflect.TypeFor[string]())
		if t.Kind() == reflect.Map {
			k.walk(value, t.Elem())
		} else if f, ok := fieldFor(t, key.Value); ok {
			k.walk(value, f.Type)
		}
	}
}

func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// fieldFor finds the field of struct t that key names; viper reads keys
// without regard to case.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); strings.EqualFold(f.Tag.Get("mapstructure"), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// notText reports a value that is not text where t wants text. With YAML
// it cannot happen (readYAML keeps the text); other formats have no text
// to keep, and a number or boolean there would be silently rewritten.
// The value is not quoted: it may be a secret.
func (p *Problems) notText(key string, v any, t reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		var what string
		switch v.(type) {
		case nil, string:
			return
		case bool:
			what = "a boolean"
		case time.Time:
			what = "a date"
		case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
			what = "a number"
		default:
			return // a list or mapping: the decoder names its shape
		}
		p.add(key, "is %s, not text; write it in quotes so that it is kept as written", what)
	case reflect.Slice:
		if items, ok := v.([]any); ok {
			for i, item := range items {
				p.notText(fmt.Sprintf("%s[%d]", key, i), item, t.Elem())
			}
		}
	case reflect.Map:
		if t.Elem().Kind() != reflect.String {
			return
		}
		if m, ok := v.(map[string]any); ok {
			for _, mk := range sortedKeys(m) {
				p.notText(key+"."+mk, m[mk], t.Elem())
			}
		}
	}
}
