package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlSyntaxError turns err, yaml.v3's syntax error for data, into one
// that names the line where the problem is, quotes it (its value left
// out, see maskLine) and says the likely cause: indentation, a tab.
//
// yaml.v3 names the line where the construct it was parsing started
// (a mis-indented key on line 11 is "line 6", the line of the mapping's
// first key), not where it noticed the problem. That line is found here
// as the first that the text cannot be cut after: the parser reads in
// one pass, so every part of the text that holds the bad line fails,
// and the longest part that parses ends just before it. (A shorter part
// may fail too, cut inside a quoted or flow value; one that ends later
// never parses.)
func yamlSyntaxError(data []byte, err error) error {
	msg, ok := strings.CutPrefix(err.Error(), "yaml: ")
	if !ok || len(data) > maxLocatedYAML {
		return err
	}
	msg = yamlLinePrefix.ReplaceAllString(msg, "")
	lines := strings.Split(string(data), "\n")
	bad := 0 // the index of the line that cannot be added
	budget := maxLocateWork
	for j := len(lines) - 1; j > 0; j-- {
		// Text that ends in a blank or comment line parses as it does
		// without it.
		if !significant(lines[j-1]) {
			continue
		}
		part := strings.Join(lines[:j], "\n")
		if budget -= len(part); budget < 0 {
			// Thousands of lines after an early mistake: parsing each
			// shorter part would take minutes. yaml.v3's own line stands.
			return err
		}
		if parseYAML([]byte(part)) == nil {
			bad = j
			break
		}
	}
	for bad < len(lines)-1 && !significant(lines[bad]) {
		bad++
	}
	text := fmt.Sprintf("line %d, %q: %s", bad+1, maskLine(lines[bad]), msg)
	if cause := yamlCause(lines, bad); cause != "" {
		text += "; " + cause
	}
	return errors.New(text)
}

// maxLocatedYAML bounds the text whose error is located: that parses it
// once per line after the bad one, and a config is a few hundred lines.
// maxLocateWork bounds the bytes parsed doing so (a 2,400-line config
// with its mistake at the top parses about 40 MiB, in a quarter second),
// so that a file of 30,000 short lines is not parsed for minutes.
const maxLocatedYAML = 64 << 10

var maxLocateWork = 64 << 20 // a variable so that a test can lower it

// parseYAML is yaml.v3's parser, a variable so that a test can count
// what locating an error costs.
var parseYAML = func(b []byte) error { return yaml.Unmarshal(b, new(yaml.Node)) }

var yamlLinePrefix = regexp.MustCompile(`^line \d+: `)

// yamlCause is the likely cause of the problem on lines[bad], "" if
// none is seen: a tab in its indentation, which YAML does not allow, or
// an indentation unlike that of the line above, where that line does
// not open a mapping or list for it.
func yamlCause(lines []string, bad int) string {
	line := strings.TrimRight(lines[bad], "\r")
	body := strings.TrimLeft(line, " \t")
	indent := line[:len(line)-len(body)]
	if strings.Contains(indent, "\t") {
		return "YAML indents with spaces only: replace the tab with spaces"
	}
	above := bad - 1
	for above >= 0 && !significant(lines[above]) {
		above--
	}
	if above < 0 {
		return ""
	}
	prev := strings.TrimRight(lines[above], "\r")
	prevBody := strings.TrimLeft(prev, " ")
	prevIndent := len(prev) - len(prevBody)
	opens := blockOpener.MatchString(withoutComment(prevBody)) || strings.HasPrefix(prevBody, "- ") || prevBody == "-"
	if len(indent) == prevIndent || len(indent) > prevIndent && opens {
		return ""
	}
	return fmt.Sprintf("it is indented by %d spaces, and line %d above it by %d: indent a key as the others of its mapping", len(indent), above+1, prevIndent)
}

// blockOpener matches a line after which more indented lines belong to
// it: "key:", or a block scalar's "key: |".
var blockOpener = regexp.MustCompile(`:\s*([|>][-+0-9]*)?$`)

// significant reports whether a line holds YAML: not blank, nor only a
// comment.
func significant(line string) bool {
	s := strings.TrimSpace(line)
	return s != "" && !strings.HasPrefix(s, "#")
}

func withoutComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " \t\r")
}

// maskLine is line as an error may quote it: its indentation (tabs
// included: they may be the problem), list dashes and key, and "..." in
// place of any value or comment. The line is where the mistake is, and
// it may be a secret's: client_secret: abc.
func maskLine(line string) string {
	line = strings.TrimRight(line, "\r")
	body := strings.TrimLeft(line, " \t")
	var b strings.Builder
	b.WriteString(line[:len(line)-len(body)])
	for strings.HasPrefix(body, "- ") {
		b.WriteString("- ")
		body = strings.TrimLeft(body[2:], " ")
	}
	if key, value, ok := strings.Cut(body, ": "); ok && plainKey.MatchString(key) {
		b.WriteString(key + ":")
		body = value
		if strings.TrimSpace(body) != "" {
			b.WriteString(" ")
		}
	} else if key, ok := strings.CutSuffix(body, ":"); ok && plainKey.MatchString(key) {
		b.WriteString(body)
		body = ""
	}
	if strings.TrimSpace(body) != "" {
		b.WriteString("...")
	}
	return b.String()
}

// plainKey is a key as configs write them: a name, maybe quoted, without
// spaces. Anything else on a line may be a value.
var plainKey = regexp.MustCompile(`^(["']?)[A-Za-z0-9_.<-]+(["']?)$`)
