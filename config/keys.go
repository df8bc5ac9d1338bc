package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"

	"github.com/authproxy/authproxy/internal/spelling"
)

// unknownKeys reports each key in in, the settings under key, that t has
// no field for, with the known key it likely is (see likelyKey). It decodes in once more
// with every value skipped: mapstructure records a struct's unused keys
// only when all its fields decoded, and a bad value must not hide a
// misspelt key beside it.
func (p *Problems) unknownKeys(key string, in any, t reflect.Type) {
	md := &mapstructure.Metadata{}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{DecodeHook: keysOnly, Metadata: md, Result: reflect.New(t).Interface()})
	if err != nil || dec.Decode(in) != nil {
		return
	}
	slices.Sort(md.Unused)
	for _, name := range md.Unused {
		parent, k := "", name
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			parent, k = name[:i], name[i+1:]
		}
		section := typeAt(t, parent)
		if under, meant := likelyKey(section, lastPart(joinKey(key, parent)), k); meant != "" {
			p.misspelt(joinKey(key, name), joinKey(key, joinKey(parent, joinKey(under, meant))), under)
		} else if under != "" {
			p.add(joinKey(key, name), "unknown key here; move it under %s", under)
		} else {
			p.add(joinKey(key, name), "unknown key; the keys here are %s", strings.Join(fieldNames(section), ", "))
		}
	}
}

// likelyKey is the known key that k, an unknown key in the section of
// type t named own, likely is: meant, a key of the section itself (under
// ""), or of one of its sections, under, which k is one level too high
// for. In that order: the one key of its own that is k after one word
// (timeout beside target: is upstream_timeout, more likely than token's
// timeout); a key of a section beside it, written as it is (client_id
// beside token:); one named with its section's name before it (token_url
// for token's url, tls_ca_file); a near spelling of a key of its own.
// under is several, and meant "", when k is a key of several sections
// beside it.
func likelyKey(t reflect.Type, own, k string) (under, meant string) {
	var ending []string
	for _, name := range fieldNames(t) {
		if word, ok := strings.CutSuffix(name, "_"+k); ok && !strings.Contains(word, "_") {
			ending = append(ending, name)
		}
	}
	if len(ending) == 1 {
		return "", ending[0]
	}
	var in []string
	for _, f := range sections(t) {
		if _, ok := fieldFor(f.Type, k); ok {
			in = append(in, f.Tag.Get("mapstructure")+":")
		}
	}
	switch {
	case len(in) == 1:
		return strings.TrimSuffix(in[0], ":"), k
	case len(in) > 1:
		return strings.Join(in, " or "), ""
	}
	if rest, ok := strings.CutPrefix(k, own+"_"); ok && own != "" && hasField(t, rest) {
		return "", rest
	}
	for _, f := range sections(t) {
		if rest, ok := strings.CutPrefix(k, f.Tag.Get("mapstructure")+"_"); ok && hasField(f.Type, rest) {
			return f.Tag.Get("mapstructure"), rest
		}
	}
	return "", closest(k, fieldNames(t))
}

// sections are the fields of struct t that hold keys of their own.
func sections(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := 0; t != nil && t.Kind() == reflect.Struct && i < t.NumField(); i++ {
		if f := t.Field(i); f.Type.Kind() == reflect.Struct && !isText(f.Type) {
			out = append(out, f)
		}
	}
	return out
}

func hasField(t reflect.Type, key string) bool {
	_, ok := fieldFor(t, key)
	return ok
}

// keysOnly is the hook for unknownKeys: it lets through only mappings for
// structs, so no value is decoded and no value can fail.
func keysOnly(from, to reflect.Type, data any) (any, error) {
	if to.Kind() == reflect.Struct && from.Kind() == reflect.Map {
		return data, nil
	}
	return nil, nil
}

// problemKey turns the decoder's name for a value into the key problems
// name it by: a map's entry is a key like any other (token.params.scope),
// a list's item keeps its index (replay.on_status[0]).
func problemKey(t reflect.Type, name string) string {
	i := strings.IndexByte(name, '[')
	if i < 0 {
		return name
	}
	if m := typeAt(t, name[:i]); m != nil && m.Kind() == reflect.Map {
		return name[:i] + "." + strings.TrimSuffix(name[i+1:], "]")
	}
	return name
}

func joinKey(key, name string) string {
	switch {
	case key == "":
		return name
	case name == "" || name[0] == '[':
		return key + name
	}
	return key + "." + name
}

// typeAt is the type of the value at the dotted path in struct t, or nil
// if there is none.
func typeAt(t reflect.Type, path string) reflect.Type {
	for _, name := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if name == "" {
			continue
		}
		f, ok := fieldFor(t, name)
		if !ok {
			return nil
		}
		t = f.Type
	}
	return t
}

// fieldFor finds the field of struct t that key names; viper reads keys
// without regard to case.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if f := t.Field(i); strings.EqualFold(f.Tag.Get("mapstructure"), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; t != nil && t.Kind() == reflect.Struct && i < t.NumField(); i++ {
		names = append(names, t.Field(i).Tag.Get("mapstructure"))
	}
	return names
}

// closest returns the name nearest to key by edit distance, if it is near
// enough to be the likely intent.
func closest(key string, names []string) string {
	best, bestDist := "", 4
	for _, n := range names {
		if d := spelling.Distance(strings.ReplaceAll(key, "-", "_"), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if bestDist > len(key)/2 {
		return ""
	}
	return best
}
