package config

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// readYAML decodes YAML config text into viper's settings map, keeping as
// text, exactly as written, every unquoted scalar that a string-typed key
// holds. Left to YAML, client_secret: 012345 is the octal number 5349,
// true a boolean, 1.50 the float 1.5 and 2001-12-14 a date, which the
// decoder would then write back as "5349", "1", "1.5" or fail on: a secret
// silently different from the one written. A null stays null (unset).
//
// The text is parsed here once; root, the document's node (nil for an
// empty file), is what everything after reads the file's own spelling
// from (see keepParamCase).
func readYAML(data []byte) (settings map[string]any, root *yaml.Node, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, yamlSyntaxError(data, err)
	}
	settings = map[string]any{}
	if len(doc.Content) == 0 { // an empty file
		return settings, nil, nil
	}
	root = doc.Content[0]
	k := textKeeper{seen: map[textVisit]bool{}}
	k.walk(root, reflect.TypeFor[fileConfig]())
	if err := root.Decode(&settings); err != nil {
		return nil, nil, err
	}
	return settings, root, nil
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
	switch {
	case isText(t):
		// A duration or size too: a number YAML read would be reported
		// as its value, not as written.
		if n.Kind == yaml.ScalarNode && coercedTags[n.ShortTag()] {
			n.Tag = "!!str"
		}
	case t.Kind() == reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				k.walk(item, t.Elem())
			}
		} else {
			k.walk(n, t.Elem()) // one value for a list: see listValue
		}
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
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

// keepParamCase restores the case of token.params names in settings,
// which viper folds to lower case: a token endpoint may well want
// "resourceId". root is the document readYAML parsed, nil for an empty
// file: decoded again, not parsed again. (textKeeper has retagged its
// coerced scalars !!str, which a string field decodes as the same text.)
func keepParamCase(root *yaml.Node, settings map[string]any) {
	var raw struct {
		Upstreams map[string]struct {
			Token struct {
				Params map[string]string `yaml:"params"`
			} `yaml:"token"`
		} `yaml:"upstreams"`
	}
	if root == nil || root.Decode(&raw) != nil {
		return
	}
	upstreams, _ := settings["upstreams"].(map[string]any)
	for name, ru := range raw.Upstreams {
		u, ok := upstreams[strings.ToLower(name)].(map[string]any)
		if !ok || len(ru.Token.Params) == 0 {
			continue
		}
		token, isMap := u["token"].(map[string]any)
		if u["token"] == nil {
			token = map[string]any{}
			u["token"] = token
		} else if !isMap {
			continue
		}
		folded, ok := token["params"].(map[string]any)
		if !ok && token["params"] != nil {
			continue // text from the environment: the decoder says it must be a mapping
		}
		params := make(map[string]any, len(ru.Token.Params))
		for k, v := range ru.Token.Params {
			if set, ok := folded[strings.ToLower(k)]; ok {
				params[k] = set // as viper has it, so env overrides still apply
			} else {
				params[k] = v
			}
		}
		token["params"] = params
	}
}
