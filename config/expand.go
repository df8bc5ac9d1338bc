package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// expand replaces ${VAR} in the text of v, settings to be decoded into t,
// and returns v. "$${" writes a literal "${". It runs before decoding, so
// that a duration or a size may come from a variable too, and walks along
// t, so that only known keys are expanded: an unknown key is reported as
// such whatever it holds, and a text where a mapping belongs as that.
// Each key whose value a set but empty variable left empty is put in
// emptied, with the variable: that is no problem unless the key is
// required, and then the problem names the variable (see resolve).
func (p *Problems) expand(v any, t reflect.Type, key string, lookup func(string) (string, bool), emptied map[string]string) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := v.(type) {
	case string:
		if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
			return v
		}
		s, empty, err := expandVars(v, lookup)
		if err != nil {
			p.unread(key, err)
		} else if s == "" && empty != "" {
			emptied[key] = empty
		}
		return s
	case map[string]any:
		for k, item := range v {
			if t.Kind() == reflect.Map {
				v[k] = p.expand(item, t.Elem(), joinKey(key, k), lookup, emptied)
			} else if f, ok := fieldFor(t, k); ok {
				v[k] = p.expand(item, f.Type, joinKey(key, k), lookup, emptied)
			}
		}
	case []any:
		if t.Kind() == reflect.Slice {
			for i := range v {
				v[i] = p.expand(v[i], t.Elem(), fmt.Sprintf("%s[%d]", key, i), lookup, emptied)
			}
		}
	}
	return v
}

var errUnclosed = errors.New(`"${" without a closing "}"; write "$${" for a literal "${"`)

// expandVars returns s with its variables' values in place, and the
// first of them that is set but empty, if any.
func expandVars(s string, lookup func(string) (string, bool)) (string, string, error) {
	var b strings.Builder
	empty := ""
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), empty, nil
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", "", errUnclosed
		}
		name := s[i+2 : i+end]
		val, ok := lookup(name)
		if !ok {
			return "", "", fmt.Errorf("environment variable %s is not set; set it (export %s=...), or write the value in place of ${%s}", name, name, name)
		}
		if val == "" && empty == "" {
			empty = name
		}
		b.WriteString(s[:i])
		b.WriteString(val)
		s = s[i+end+1:]
	}
}
