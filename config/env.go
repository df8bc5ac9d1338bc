package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/viper"
)

// EnvPrefix starts every environment override:
// AUTHPROXY_UPSTREAMS_REDGIFS_TOKEN_CLIENT_SECRET sets
// upstreams.redgifs.token.client_secret.
const EnvPrefix = "AUTHPROXY"

// envOverlay lays the AUTHPROXY_ overrides over the file's settings. It
// reads them from lookup (Options.Env), never from the process itself:
// viper can only read os.LookupEnv, so viper is given the file alone and
// the overlay does, with the variables it is given, what viper's
// AutomaticEnv and BindEnv would: the same keys, the same precedence, an
// empty variable taken as unset, and a variable set for a section (or a
// value the file writes as a mapping) hiding every key below it, and
// there standing as text, which decoding refuses. One
// case differs: where the file writes a scalar in place of a section
// (admin: 5) and a variable sets a key inside it, the variable wins every
// time; viper chose by the order it walked a map.
type envOverlay struct {
	lookup func(name string) (string, bool)
}

// get is the override of key, if a variable sets it.
func (e envOverlay) get(key string) (string, bool) {
	v, ok := e.lookup(envName(key))
	return v, ok && v != ""
}

// apply returns v's settings, the file's, with the overrides laid over
// them, and the variable that set each key overridden, so that a problem
// with its value can name it.
func (e envOverlay) apply(v *viper.Viper) (map[string]any, map[string]string) {
	// Sets, not slices searched: a file of a few hundred upstreams has
	// thousands of keys, and this runs at every start and reload.
	bound := e.boundKeys(v)
	isBound := setOf(bound)
	keys := slices.Clone(bound)
	for _, k := range v.AllKeys() {
		if !slices.ContainsFunc(parentKeys(k), func(p string) bool { return isBound[p] }) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	settings := map[string]any{}
	var fromEnv map[string]string
	for _, k := range keys {
		var value any
		if s, ok := e.get(k); ok {
			value = s
			if fromEnv == nil {
				fromEnv = map[string]string{}
			}
			fromEnv[k] = envName(k)
		} else if e.underVariable(k) {
			continue
		} else if value = v.Get(k); value == nil {
			continue
		}
		path := strings.Split(k, ".")
		within(settings, path[:len(path)-1])[path[len(path)-1]] = value
	}
	// A variable set for a section hides the keys under it (above), and
	// stands in the section's place as text, as a scalar written there in
	// the file would: decoding refuses it, naming the variable.
	// upstreams is one even where the file has none.
	for _, section := range sectionsOf(append(keys, "upstreams.")) {
		s, ok := e.get(section)
		if !ok || e.underVariable(section) {
			continue
		}
		if fromEnv == nil {
			fromEnv = map[string]string{}
		}
		fromEnv[section] = envName(section)
		path := strings.Split(section, ".")
		within(settings, path[:len(path)-1])[path[len(path)-1]] = s
	}
	return settings, fromEnv
}

// sectionsOf is the keys that hold others among keys, and are not among
// them, in order.
func sectionsOf(keys []string) []string {
	isKey, in := setOf(keys), map[string]bool{}
	for _, k := range keys {
		for _, p := range parentKeys(k) {
			if !isKey[p] {
				in[p] = true
			}
		}
	}
	return sortedKeys(in)
}

// underVariable reports whether a variable is set for a section that
// holds key: it hides key.
func (e envOverlay) underVariable(key string) bool {
	return slices.ContainsFunc(parentKeys(key), func(p string) bool { _, ok := e.get(p); return ok })
}

func setOf(keys []string) map[string]bool {
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	return set
}

// boundKeys are the keys a variable may set though the file does not
// have them (a client_secret given only by env): every key of the file
// struct, and every key of each upstream the file names
// (AUTHPROXY_UPSTREAMS names none: a section is not set by a variable).
func (e envOverlay) boundKeys(v *viper.Viper) []string {
	keys := leafKeys(reflect.TypeFor[fileConfig](), "")
	for name := range v.GetStringMap("upstreams") {
		keys = append(keys, leafKeys(reflect.TypeFor[fileUpstream](), "upstreams."+strings.ToLower(name)+".")...)
	}
	return keys
}

// parentKeys are the keys that hold key: a, a.b for a.b.c.
func parentKeys(key string) []string {
	var parents []string
	for i := range len(key) {
		if key[i] == '.' {
			parents = append(parents, key[:i])
		}
	}
	return parents
}

// within is the map at path in m, made where it is missing and in place
// of a value that is not a map, as viper builds its settings.
func within(m map[string]any, path []string) map[string]any {
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return m
}

var envKeyReplacer = strings.NewReplacer(".", "_", "-", "_")

// envName is the variable that overrides key: the prefix, then the key in
// upper case with its dots and dashes as underscores; one name for
// reading a key and for reporting where its value came from.
func envName(key string) string {
	return envKeyReplacer.Replace(strings.ToUpper(EnvPrefix + "_" + key))
}

// leafKeys lists the dotted keys of the scalar, list and map fields of t,
// leaving out maps of structs (the upstreams), whose keys are names.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + f.Tag.Get("mapstructure")
		switch {
		case f.Type.Kind() == reflect.Struct:
			keys = append(keys, leafKeys(f.Type, key+".")...)
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
		default:
			keys = append(keys, key)
		}
	}
	return keys
}
