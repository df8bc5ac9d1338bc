package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Options changes how a file is read. The zero value reads the process
// environment.
type Options struct {
	// Lookup resolves ${VAR} in values; nil means os.LookupEnv.
	Lookup func(name string) (string, bool)
	// Env is the environment the AUTHPROXY_* overrides are read from (see
	// envOverlay); nil means os.LookupEnv. app gives its one environment
	// as both; they are apart so that a caller may resolve ${VAR} from a
	// table of its own and still take the overrides from the process.
	Env func(name string) (string, bool)
	// NoEnvOverrides ignores AUTHPROXY_* variables.
	NoEnvOverrides bool
	// CheckUpstream, if set, is asked about each upstream once config has
	// checked it, for what config cannot judge: whether the key a file
	// holds parses, whether a secret is long enough for its algorithm.
	// Its problems, named by key, are reported with config's own, so that
	// one run shows them all. nil asks nothing.
	CheckUpstream func(Upstream) Problems
}

// withDefaults is opts with the process environment for what it leaves
// nil.
func (opts Options) withDefaults() Options {
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	return opts
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
	opts = opts.withDefaults()
	settings, fromEnv, err := read(data, typeOf(path), opts)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	var found, problems Problems
	fc, emptied := found.decodeFile(settings, opts.Lookup)
	for _, q := range found.resolve(settings, emptied) {
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
	opts = opts.withDefaults()
	settings, fromEnv, err := read(data, typ, opts)
	if err != nil {
		return nil, err
	}
	var found Problems
	fc, emptied := found.decodeFile(settings, opts.Lookup)
	cfg := found.validate(fc, dir)
	if opts.CheckUpstream != nil {
		for _, u := range cfg.Upstreams {
			found.checked(opts.CheckUpstream(u))
		}
	}
	cfg.fromEnv = fromEnv
	if err := cfg.Report(found.resolve(settings, emptied)); err != nil {
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
	settings, fromEnv := v.AllSettings(), map[string]string(nil)
	if !opts.NoEnvOverrides {
		settings, fromEnv = envOverlay{opts.Env}.apply(v)
	}
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
