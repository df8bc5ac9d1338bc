package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

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
	// CheckUpstream, if set, is asked about each upstream once config has
	// checked it, for what config cannot judge: whether the key a file
	// holds parses, whether a secret is long enough for its algorithm.
	// Its problems, named by key, are reported with config's own, so that
	// one run shows them all. nil asks nothing.
	CheckUpstream func(Upstream) Problems
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
	cfg, err := parse(data, typeOf(path), filepath.Dir(path), opts)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// typeOf is the format of the config file at path, from its extension.
func typeOf(path string) string {
	typ := strings.TrimPrefix(filepath.Ext(path), ".")
	if typ == "yml" || !slices.Contains(viper.SupportedExts, typ) {
		typ = "yaml"
	}
	return typ
}

// AdminListenOf is admin.listen as LoadData would read it from data, the
// text of the config file at path (its AUTHPROXY_ADMIN_LISTEN override
// and ${VAR}s included), "" if off, with no regard to the rest of the
// file. health asks it: a running proxy goes on with its last good
// config when the file is edited into one that does not load, and the
// healthcheck answers for the process, not for the file.
func AdminListenOf(path string, data []byte, opts Options) (string, error) {
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	settings, fromEnv, err := read(data, typeOf(path), opts)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	var all, problems Problems
	fc, _ := all.decodeFile(settings, opts.Lookup)
	for _, q := range all {
		if q.Key == "admin" || strings.HasPrefix(q.Key, "admin.") {
			problems = append(problems, q)
		}
	}
	addr, err := AdminListen(orDefault(fc.Admin.Listen, DefaultAdminListen))
	if err != nil && !problems.unreadAt("admin.listen") {
		problems = append(problems, Problem{Key: "admin.listen", Message: err.Error()})
	}
	if err := (&Config{fromEnv: fromEnv}).Report(problems); err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	return addr, nil
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
	settings, fromEnv, err := read(data, typ, opts)
	if err != nil {
		return nil, err
	}
	var problems Problems
	fc, emptied := problems.decodeFile(settings, opts.Lookup)
	cfg := problems.validate(fc, dir)
	problems.emptiedBy(emptied)
	if opts.CheckUpstream != nil {
		for _, u := range cfg.Upstreams {
			problems.checked(opts.CheckUpstream(u))
		}
	}
	cfg.fromEnv = fromEnv
	if err := cfg.Report(problems); err != nil {
		return nil, err
	}
	cfg.Digest = Digest(data)
	return cfg, nil
}

// read returns viper's settings: the file's keys, folded to lower case,
// with the environment's overrides; and the variable that set each key
// overridden, so that a problem with its value can name it.
func read(data []byte, typ string, opts Options) (map[string]any, map[string]string, error) {
	v := viper.New()
	v.SetConfigType(typ)
	var root *yaml.Node
	if typ == "yaml" {
		settings, doc, err := readYAML(data)
		if err != nil {
			return nil, nil, fmt.Errorf("not valid YAML: %w", err)
		}
		root = doc
		v.MergeConfigMap(settings)
	} else if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, nil, fmt.Errorf("not valid %s: %w", strings.ToUpper(typ), err)
	}
	var fromEnv map[string]string
	if !opts.NoEnvOverrides {
		bindEnv(v)
		fromEnv = overridden(v.AllKeys())
	}
	settings := v.AllSettings()
	if typ == "yaml" {
		keepParamCase(root, settings)
	}
	return settings, fromEnv, nil
}

// Digest identifies config text: two texts with the same digest are the
// same config, as far as the file goes.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// bindEnv makes every key of every upstream in the file, and every
// top-level key, settable from the environment. viper only consults the
// environment for keys it knows of, and a key absent from the file (a
// client_secret given only by env) would otherwise be missed.
func bindEnv(v *viper.Viper) {
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(envKeyReplacer)
	v.AutomaticEnv()
	for _, key := range leafKeys(reflect.TypeFor[fileConfig](), "") {
		v.BindEnv(key, envName(key))
	}
	for name := range v.GetStringMap("upstreams") {
		for _, key := range leafKeys(reflect.TypeFor[fileUpstream](), "upstreams."+name+".") {
			v.BindEnv(key, envName(key))
		}
	}
}

var envKeyReplacer = strings.NewReplacer(".", "_", "-", "_")

// envName is the variable that overrides key. It is the name viper's
// AutomaticEnv gives the keys not bound (SetEnvPrefix, then
// SetEnvKeyReplacer), and bindEnv binds the others to it: one name for
// reading a key and for reporting where its value came from.
func envName(key string) string {
	return envKeyReplacer.Replace(strings.ToUpper(EnvPrefix + "_" + key))
}

// overridden maps each of keys that an AUTHPROXY_ variable sets to the
// variable. viper takes an empty variable as unset, and so does this.
func overridden(keys []string) map[string]string {
	var vars map[string]string
	for _, key := range keys {
		if name := envName(key); os.Getenv(name) != "" {
			if vars == nil {
				vars = map[string]string{}
			}
			vars[key] = name
		}
	}
	return vars
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
