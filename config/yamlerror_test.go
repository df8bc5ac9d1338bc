package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// small is the config of the first two cases: line 11 is a key of
// token, and line 7 starts the mapping yaml.v3 names in its error.
const small = `# one API
listen: 127.0.0.1:8080
store:
  type: memory
upstreams:
  api:
    target: https://api.example.com
    token:
      url: https://api.example.com/token
      client_id: id
      client_secret: s3cret-value
`

// withLine is text with its line n (from 1) replaced by line.
func withLine(t *testing.T, text string, n int, line string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	if n > len(lines) {
		t.Fatalf("the text has no line %d", n)
	}
	lines[n-1] = line
	return strings.Join(lines, "\n")
}

// A YAML syntax error names the line where the problem is, quoted, and
// its likely cause; not the line where the parser noticed it, often that
// of the mapping's first key, many lines above. yaml.v3 said "line 6",
// "line 76" and "line 11" for these.
func TestAYAMLErrorNamesTheLineOfTheProblem(t *testing.T) {
	proxyYAML, err := os.ReadFile("../proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The line of Product Hunt's client_secret (82 when the issue was
	// written), found so that an edit above it does not break the test.
	ph := 1 + strings.Count(string(proxyYAML[:strings.Index(string(proxyYAML), "      client_secret: ${PRODUCTHUNT_CLIENT_SECRET}")]), "\n")
	for _, tt := range []struct {
		name, file string
		want       string
	}{
		{"a key indented by one space too few", withLine(t, small, 11, "     client_secret: s3cret-value"),
			`not valid YAML: line 11, "     client_secret: ...": did not find expected key; it is indented by 5 spaces, and line 10 above it by 6: indent a key as the others of its mapping`},
		{"the same on Product Hunt's client_secret line of proxy.yaml", withLine(t, string(proxyYAML), ph, "     client_secret: ${PRODUCTHUNT_CLIENT_SECRET}"),
			fmt.Sprintf(`not valid YAML: line %d, "     client_secret: ...": did not find expected key; it is indented by 5 spaces, and line %d above it by 6: indent a key as the others of its mapping`, ph, ph-1)},
		{"a tab", withLine(t, small+"      body_format: json\n", 12, "\tbody_format: json"),
			`not valid YAML: line 12, "\tbody_format: ...": found a tab character that violates indentation; YAML indents with spaces only: replace the tab with spaces`},
		{"a key indented by one space too many", withLine(t, small, 11, "       client_secret: s3cret-value"),
			`not valid YAML: line 11, "       client_secret: ...": mapping values are not allowed in this context; it is indented by 7 spaces, and line 10 above it by 6: indent a key as the others of its mapping`},
		// The mistake is line 11's, and the parser meets it on line 12:
		// both are named.
		{"a key at the level of its section", withLine(t, small+"      body_format: json\n", 11, "    client_secret: s3cret-value"),
			`not valid YAML: line 12, "      body_format: ...": mapping values are not allowed in this context; it is indented by 6 spaces, and line 11 above it by 4: indent a key as the others of its mapping`},
		{"after a comment and a blank line", withLine(t, small, 11, "      # the secret\n\n     client_secret: s3cret-value"),
			`not valid YAML: line 13, "     client_secret: ...": did not find expected key; it is indented by 5 spaces, and line 10 above it by 6: indent a key as the others of its mapping`},
		{"a quote not closed", withLine(t, small, 10, `      client_id: "id`),
			`not valid YAML: line 10, "      client_id: ...": found unexpected end of stream`},
	} {
		_, err := Parse([]byte(tt.file), Options{NoEnvOverrides: true})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

// The quoted line is the one with the mistake, and may hold a secret: its
// value is never quoted, whatever the line holds.
func TestAYAMLErrorQuotesNoValue(t *testing.T) {
	for _, line := range []string{
		"     client_secret: s3cret-value",
		"     client_secret: s3cret-value # s3cret-value",
		"     - s3cret-value",
		"     s3cret-value",
		"     client_secret:s3cret-value",
		`     "client_secret": "s3cret-value"`,
		"     client_secret: {a: s3cret-value}",
		"\tclient_secret: s3cret-value",
	} {
		_, err := Parse([]byte(withLine(t, small, 11, line)), Options{NoEnvOverrides: true})
		if err == nil || !strings.Contains(err.Error(), "line 11") {
			t.Errorf("%q: got %v", line, err)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error quotes the secret: %v", line, err)
		}
	}
}

// Locating the line is bounded work: a file of 30,000 short lines with
// its mistake at the top would be parsed once per line, about 1 GiB in
// all and minutes of CPU, before check answered. Past maxLocateWork it
// says yaml.v3's own line instead.
func TestLocatingAYAMLErrorIsBounded(t *testing.T) {
	data := []byte("a: [\n" + strings.Repeat("b\n", 30000))
	var parsed int
	real, work := parseYAML, maxLocateWork
	parseYAML = func(b []byte) error { parsed += len(b); return real(b) }
	maxLocateWork = 1 << 20 // the bound's logic, without parsing 64 MiB under -race
	defer func() { parseYAML, maxLocateWork = real, work }()
	_, err := Parse(data, Options{NoEnvOverrides: true})
	if err == nil {
		t.Fatal("no error")
	}
	if limit := 1<<20 + len(data); parsed > limit {
		t.Errorf("parsed %d MiB to locate the error, want at most %d MiB", parsed>>20, limit>>20)
	}
}
