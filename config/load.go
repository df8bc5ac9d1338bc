package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override:
// AUTHPROXY_UPSTREAMS_REDGIFS_TOKEN_CLIENT_SECRET sets
// upstreams.redgifs.token.client_secret.
const EnvPrefix = "AUTHPROXY"

// Options changes how a file is read. The zero value reads the process
// environment.
type Options struct {
	// Lookup resolves ${VAR} in values; nil means os.LookupEnv.
	Lookup func(name string) (string, bool)
	// NoEnvOverrides ignores AUTHPROXY_* variables.
	NoEnvOverrides bool
}

// Load reads and validates the config file at path.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return LoadData(path, data, opts)
}

// LoadData validates data, the text of the config file at path, which
// gives the format and the directory that relative paths start from. A
// watcher that has read the file to see whether it changed validates
// what it read, not what the file holds a moment later.
func LoadData(path string, data []byte, opts Options) (*Config, error) {
	typ := strings.TrimPrefix(filepath.Ext(path), ".")
	if typ == "yml" || !slices.Contains(viper.SupportedExts, typ) {
		typ = "yaml"
	}
	cfg, err := parse(data, typ, filepath.Dir(path), opts)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads and validates YAML config text. Relative secret file paths
// are taken from the working directory.
func Parse(data []byte, opts Options) (*Config, error) {
	return parse(data, "yaml", ".", opts)
}

func parse(data []byte, typ, dir string, opts Options) (*Config, error) {
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	v := viper.New()
	v.SetConfigType(typ)
	if typ == "yaml" {
		settings, err := readYAML(data)
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		v.MergeConfigMap(settings)
	} else if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("not valid %s: %w", strings.ToUpper(typ), err)
	}
	if !opts.NoEnvOverrides {
		bindEnv(v)
	}

	var problems Problems
	problems.unknownKeys(v.AllSettings(), reflect.TypeFor[fileConfig](), "")
	var fc fileConfig
	err := v.Unmarshal(&fc, func(c *mapstructure.DecoderConfig) {
		c.DecodeHook = splitLists
		c.WeaklyTypedInput = true
	})
	if err != nil {
		// A value of the wrong shape: nothing further can be checked.
		problems.decodeErrors(err)
		return nil, problems
	}
	if typ == "yaml" {
		keepParamCase(data, &fc)
	}
	problems.expand(reflect.ValueOf(&fc).Elem(), "", opts.Lookup)
	cfg := problems.validate(&fc, dir)
	if err := problems.err(); err != nil {
		return nil, err
	}
	cfg.Digest = Digest(data)
	return cfg, nil
}

// Digest identifies config text: two texts with the same digest are the
// same config, as far as the file goes.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

var decodeLine = regexp.MustCompile(`^'([^']*)' (.*)$`)

// decodeErrors turns mapstructure's "'upstreams[api].replay.on_status[0]'
// cannot parse ..." lines into problems keyed like the rest.
func (p *Problems) decodeErrors(err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		m := decodeLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := strings.NewReplacer("[", ".", "]", "").Replace(m[1])
		p.add(key, "%s; see proxy.yaml for the shape of this key", m[2])
	}
	if len(*p) == 0 {
		p.add("", "%v", err)
	}
}

// splitLists turns "a, b" into a list for any list-typed key, so that
// lists can be set from the environment (mapstructure's own hook only
// does it for lists of strings, and on_status is a list of ints).
func splitLists(from, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	if strings.TrimSpace(s) == "" {
		return []string{}, nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

// bindEnv makes every key of every upstream in the file, and every
// top-level key, settable from the environment. viper only consults the
// environment for keys it knows of, and a key absent from the file (a
// client_secret given only by env) would otherwise be missed.
func bindEnv(v *viper.Viper) {
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	for _, key := range leafKeys(reflect.TypeFor[fileConfig](), "") {
		v.BindEnv(key)
	}
	for name := range v.GetStringMap("upstreams") {
		for _, key := range leafKeys(reflect.TypeFor[fileUpstream](), "upstreams."+name+".") {
			v.BindEnv(key)
		}
	}
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

// keepParamCase restores the case of token.params keys, which viper folds
// to lower case: a token endpoint may well want "resourceId".
func keepParamCase(data []byte, fc *fileConfig) {
	var raw struct {
		Upstreams map[string]struct {
			Token struct {
				Params map[string]string `yaml:"params"`
			} `yaml:"token"`
		} `yaml:"upstreams"`
	}
	if yaml.Unmarshal(data, &raw) != nil {
		return
	}
	for name, ru := range raw.Upstreams {
		u, ok := fc.Upstreams[strings.ToLower(name)]
		if !ok || len(ru.Token.Params) == 0 {
			continue
		}
		params := make(map[string]string, len(u.Token.Params))
		for k, v := range ru.Token.Params {
			if decoded, ok := u.Token.Params[strings.ToLower(k)]; ok {
				params[k] = decoded // as decoded, so env overrides still apply
			} else {
				params[k] = v
			}
		}
		u.Token.Params = params
		fc.Upstreams[strings.ToLower(name)] = u
	}
}

// unknownKeys reports keys in settings that t has no field for, and
// mappings where t wants something else.
func (p *Problems) unknownKeys(settings map[string]any, t reflect.Type, path string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		fields[tag] = f.Type
		names = append(names, tag)
	}
	for _, k := range sortedKeys(settings) {
		ft, ok := fields[k]
		if !ok {
			if s := closest(k, names); s != "" {
				p.add(path+k, "unknown key; did you mean %q?", s)
			} else {
				p.add(path+k, "unknown key; the keys here are %s", strings.Join(names, ", "))
			}
			continue
		}
		sub, isMap := settings[k].(map[string]any)
		switch {
		case ft.Kind() == reflect.Struct && isMap:
			p.unknownKeys(sub, ft, path+k+".")
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct && isMap:
			for _, name := range sortedKeys(sub) {
				if m, ok := sub[name].(map[string]any); ok {
					p.unknownKeys(m, ft.Elem(), path+k+"."+name+".")
				} else if sub[name] != nil {
					p.add(path+k+"."+name, "must be a mapping of keys, not %T", sub[name])
				}
			}
		case ft.Kind() == reflect.Map && settings[k] != nil && !isMap:
			p.add(path+k, "must be a mapping of keys, not %T", settings[k])
		case ft.Kind() == reflect.Struct && settings[k] != nil:
			p.add(path+k, "must be a mapping of keys, not %T", settings[k])
		default:
			p.notText(path+k, settings[k], ft)
		}
	}
}

// expand replaces ${VAR} in every string of v. "$${" writes a literal "${".
func (p *Problems) expand(v reflect.Value, path string, lookup func(string) (string, bool)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p.expand(v.Elem(), path, lookup)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			p.expand(v.Field(i), path+v.Type().Field(i).Tag.Get("mapstructure")+".", lookup)
		}
	case reflect.Slice:
		for i := range v.Len() {
			p.expand(v.Index(i), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i), lookup)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			p.expand(e, path+fmt.Sprint(k.Interface())+".", lookup)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		s, err := expandVars(v.String(), lookup)
		if err != nil {
			p.unread(strings.TrimSuffix(path, "."), err)
		}
		v.SetString(s)
	}
}

var errUnclosed = errors.New(`"${" without a closing "}"; write "$${" for a literal "${"`)

func expandVars(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // "$${": a literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errUnclosed
		}
		name := s[i+2 : i+end]
		val, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set; set it (export %s=...), or write the value in place of ${%s}", name, name, name)
		}
		b.WriteString(s[:i])
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closest returns the name nearest to key by edit distance, if it is near
// enough to be the likely intent.
func closest(key string, names []string) string {
	best, bestDist := "", 4
	for _, n := range names {
		if d := editDistance(strings.ReplaceAll(key, "-", "_"), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if bestDist > len(key)/2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
