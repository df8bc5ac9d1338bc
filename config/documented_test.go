package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// referenceKeys are the keys docs/configuration.md documents: the
// backquoted full keys in the first column of its reference table.
func referenceKeys(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.TrimSpace(cells[0]) != "" {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z_.A-Z]+)`").FindAllStringSubmatch(cells[1], -1) {
			keys = append(keys, m[1])
		}
	}
	return keys
}

// acceptedKeys are the keys the config package decodes, from its structs'
// mapstructure tags (as the AUTHPROXY_ overrides are found), with the
// upstream's name written NAME.
func acceptedKeys() []string {
	keys := append(leafKeys(reflect.TypeFor[fileConfig](), ""), "upstreams")
	return append(keys, leafKeys(reflect.TypeFor[fileUpstream](), "upstreams.NAME.")...)
}

// Every key the config accepts is in the reference, written out in full,
// and the reference documents no key the config would refuse.
func TestEveryKeyIsDocumented(t *testing.T) {
	documented := referenceKeys(t)
	accepted := acceptedKeys()
	if len(accepted) < 60 {
		t.Fatalf("found only %d keys in the config structs: %v", len(accepted), accepted)
	}
	for _, k := range accepted {
		if !slices.Contains(documented, k) {
			t.Errorf("%s is accepted but not in docs/configuration.md's reference table", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(accepted, k) {
			t.Errorf("docs/configuration.md documents %s, which the config does not accept", k)
		}
	}
}
