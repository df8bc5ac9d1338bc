package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// decodeFile expands ${VAR} in settings (viper's, from the file and the
// environment) and decodes them into a fileConfig. Each upstream is
// decoded on its own: mapstructure leaves out a map entry whose value had
// an error, and an upstream with one bad value is still checked in full.
// emptied holds the keys that a set but empty variable left empty, for
// resolve.
func (p *Problems) decodeFile(settings map[string]any, lookup func(string) (string, bool)) (fc *fileConfig, emptied map[string]string) {
	emptied = map[string]string{}
	p.expand(settings, reflect.TypeFor[fileConfig](), "", lookup, emptied)
	upstreams := settings["upstreams"]
	delete(settings, "upstreams")
	fc = &fileConfig{}
	p.decode("", settings, fc)
	var names map[string]any
	p.decode("upstreams", upstreams, &names)
	fc.Upstreams = make(map[string]fileUpstream, len(names))
	for name, raw := range names {
		var fu fileUpstream
		p.decode("upstreams."+name, raw, &fu)
		fc.Upstreams[name] = fu
	}
	if upstreams != nil {
		settings["upstreams"] = upstreams // back, as the file has them
	}
	return fc, emptied
}

// decode fills out, a pointer to a file struct, from in, the settings
// under key. Each key out has no field for, and each value that cannot be
// made into its key's type, is a problem named by its key.
func (p *Problems) decode(key string, in any, out any) {
	t := reflect.TypeOf(out).Elem()
	p.unknownKeys(key, in, t)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{DecodeHook: decodeValue, Result: out})
	if err == nil {
		err = dec.Decode(in)
	}
	p.decodeErrors(key, t, err)
}

// decodeErrors records each of mapstructure's errors under the key it
// names. An error of the decoder's own (not of decodeValue) says only
// what it expected, so the problem points to the example config.
func (p *Problems) decodeErrors(key string, t reflect.Type, err error) {
	switch e := err.(type) {
	case nil:
	case *mapstructure.DecodeError:
		msg := e.Unwrap().Error()
		if !errors.As(e, new(valueError)) {
			msg += "; see proxy.yaml for the shape of this key"
		}
		p.unread(joinKey(key, problemKey(t, e.Name())), errors.New(msg))
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			p.decodeErrors(key, t, e)
		}
	case interface{ Unwrap() error }:
		p.decodeErrors(key, t, e.Unwrap())
	default:
		p.unread(key, err)
	}
}

// A valueError says what is wrong with a value and what to write
// instead; the decoder names the key.
type valueError string

func (e valueError) Error() string { return string(e) }

func valuef(format string, args ...any) error { return valueError(fmt.Sprintf(format, args...)) }

// decodeValue is the decoder's hook: it makes a value, as written, into
// what its key holds, or says what to write instead.
func decodeValue(from, to reflect.Type, data any) (any, error) {
	if to.Kind() == reflect.Pointer {
		// An empty duration or size is unset, as an empty text was
		// before units were decoded. The decoder calls again for the
		// value pointed to.
		if s, ok := data.(string); ok && s == "" && isText(to.Elem()) && to.Elem().Kind() != reflect.String {
			return nil, nil
		}
		return data, nil
	}
	switch {
	case isText(to):
		return textValue(to, data)
	case to.Kind() == reflect.Struct || to.Kind() == reflect.Map:
		if from.Kind() != reflect.Map {
			return nil, valuef("must be a mapping of keys, not %s", describe(data))
		}
	case to.Kind() == reflect.Slice:
		return listValue(data)
	case to.Kind() == reflect.Int:
		return intValue(to, data)
	}
	return data, nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// isText reports whether a key of type t is written as text: a string,
// or a value with a unit that reads itself from text.
func isText(t reflect.Type) bool {
	return t.Kind() == reflect.String || reflect.PointerTo(t).Implements(textUnmarshaler)
}

// textValue decodes a value for a key written as text. Formats other than
// YAML have no text to keep (see readYAML), and a number or boolean there
// would be silently rewritten: it is refused, and not quoted, since it
// may be a secret.
func textValue(to reflect.Type, data any) (any, error) {
	what := describe(data)
	if what == "a list" || what == "a mapping" {
		return nil, valuef("must be one value, not %s", what)
	}
	notText := valuef("is %s, not text; write it in quotes so that it is kept as written", what)
	s, written := data.(string)
	v := reflect.New(to)
	u, parses := v.Interface().(encoding.TextUnmarshaler)
	switch {
	case !parses && written:
		return s, nil
	case !parses:
		return nil, notText
	case !written:
		s = fmt.Sprint(data) // a number for a duration: say what to write, if it is not one
	}
	if err := u.UnmarshalText([]byte(s)); err != nil {
		return nil, err
	}
	if !written {
		return nil, notText
	}
	return v.Elem().Interface(), nil
}

// listValue lets a list be written as one value, and as "a, b", which is
// how the environment can set one.
func listValue(data any) (any, error) {
	if s, ok := data.(string); ok {
		if strings.TrimSpace(s) == "" {
			return []string{}, nil
		}
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, nil
	}
	switch describe(data) {
	case "a list":
		return data, nil
	case "a mapping":
		return nil, valuef("must be a list, not a mapping")
	}
	return []any{data}, nil
}

// intValue reads a whole number for a key of type to; from the
// environment it is text. The key's type may say what number it wants
// (status: an HTTP status such as 401), for the problem to say what to
// write.
func intValue(to reflect.Type, data any) (any, error) {
	want := "a whole number such as 10"
	if w, ok := reflect.Zero(to).Interface().(interface{ wanted() string }); ok {
		want = w.wanted()
	}
	if s, ok := data.(string); ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, valuef("%q is not a number; write %s", s, want)
		}
		return n, nil
	}
	if what := describe(data); what != "a number" {
		return nil, valuef("must be a number, not %s; write %s", what, want)
	}
	return data, nil
}

// describe names the kind of a value as the reader of a config knows it.
func describe(v any) string {
	if _, ok := v.(time.Time); ok {
		return "a date"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}
