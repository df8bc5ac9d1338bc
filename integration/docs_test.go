package integration

// The front page and docs/ are tested as a user meets them: the commands
// they show, the config they give, the links between them.

import (
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authproxy/authproxy/internal/fakeapi"
)

// section returns the text of a Markdown file under a "## " heading, up
// to the next one.
func section(t *testing.T, file, heading string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", file, heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// codeBlocks returns the bodies of text's fenced blocks of the language.
func codeBlocks(text, lang string) []string {
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```"+lang+"\n(.*?)```").FindAllStringSubmatch(text, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The README's test command is the one CI runs, exactly.
func TestTheREADMEsTestCommandIsCIs(t *testing.T) {
	var readmeCmd string
	for _, b := range codeBlocks(section(t, "README.md", "## Two commands"), "sh") {
		for _, l := range strings.Split(b, "\n") {
			if strings.HasPrefix(l, "go test") {
				readmeCmd = l
			}
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(ci), "# The README's test command, exactly:\n")
	if !ok {
		t.Fatal(".ci/run does not mark the README's test command")
	}
	if ciCmd, _, _ := strings.Cut(after, "\n"); readmeCmd == "" || ciCmd != readmeCmd {
		t.Errorf("the README's test command is %q; .ci/run runs %q", readmeCmd, ciCmd)
	}
	if ours, _, _ := strings.Cut(section(t, "docs/testing.md", "## The test command"), "```\n\n"); !strings.Contains(ours, readmeCmd+"\n") {
		t.Errorf("docs/testing.md's test command is not %q", readmeCmd)
	}
}

// The README's Product Hunt config, as written, passes check with its two
// variables set and names them without; pointed at the fake Product Hunt
// instead of the real one (no traffic leaves this machine), it serves the
// README's request, authenticated.
func TestTheREADMEsRealAPIConfigWorks(t *testing.T) {
	text := section(t, "README.md", "## A real API in ten lines")
	yamls, shs := codeBlocks(text, "yaml"), codeBlocks(text, "sh")
	if len(yamls) != 1 || len(shs) != 1 {
		t.Fatalf("want one yaml block and one sh block, found %d and %d", len(yamls), len(shs))
	}
	config := yamls[0]
	if n := strings.Count(config, "\n"); n > 12 {
		t.Errorf("the config is %d lines; the front page promises about ten", n)
	}
	var curl string
	for _, want := range []string{"go run . check --config producthunt.yaml", "go run . --config producthunt.yaml", "curl "} {
		i := slices.IndexFunc(strings.Split(shs[0], "\n"), func(l string) bool { return strings.HasPrefix(l, want) })
		if i < 0 {
			t.Fatalf("the sh block has no %q:\n%s", want, shs[0])
		}
		curl = strings.Split(shs[0], "\n")[i]
	}

	bin := buildBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "producthunt.yaml")
	os.WriteFile(path, []byte(config), 0o600)
	check := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "check", "--config", "producthunt.yaml")
		cmd.Dir = dir
		cmd.Env = env
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PRODUCTHUNT_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := check(); err == nil ||
		!strings.Contains(out, "PRODUCTHUNT_CLIENT_ID") || !strings.Contains(out, "PRODUCTHUNT_CLIENT_SECRET") {
		t.Errorf("check without the variables: %v\n%s", err, out)
	}
	if out, err := check("PRODUCTHUNT_CLIENT_ID="+clientID, "PRODUCTHUNT_CLIENT_SECRET="+clientSecret); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("check with the variables: %v\n%s", err, out)
	}

	f := fakeapi.ProductHunt()
	api := fakeapi.New(f, clientID, clientSecret, nil)
	fake := newServer(t, api)
	if !strings.Contains(config, "https://api.producthunt.com/v2/oauth/token") || !strings.Contains(config, "target: https://api.producthunt.com\n") {
		t.Fatalf("the config is not Product Hunt's:\n%s", config)
	}
	local := filepath.Join(dir, "local.yaml")
	os.WriteFile(local, []byte(strings.ReplaceAll(config, "https://api.producthunt.com", fake)), 0o600)
	t.Setenv("PRODUCTHUNT_CLIENT_ID", clientID)
	t.Setenv("PRODUCTHUNT_CLIENT_SECRET", clientSecret)
	t.Setenv("AUTHPROXY_LISTEN", "127.0.0.1:0")
	t.Setenv("AUTHPROXY_ADMIN_LISTEN", "127.0.0.1:0")
	proxy := runBinary(t, bin, local)

	m := regexp.MustCompile(`^curl http://127\.0\.0\.1:8080(/producthunt\S+) -H '([^:]+): ([^']+)' -d '([^']+)'$`).FindStringSubmatch(curl)
	if m == nil {
		t.Fatalf("the README's request is not the shape this test replays: %s", curl)
	}
	resp, err := http.Post("http://"+proxy.addr+m[1], m[3], strings.NewReader(m[4]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || api.TokenRequests() != 1 {
		t.Errorf("the README's request: %d after %d token requests", resp.StatusCode, api.TokenRequests())
	}
}

// Every relative link in the README and docs/ leads to a file that
// exists and, with a #fragment, to a heading in it.
func TestDocLinksResolve(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	files = append(files, "../README.md", "../ARCHITECTURE.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
			}
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s links to %s, which does not exist", f, target)
				continue
			}
			if frag != "" && !slices.Contains(anchors(string(doc)), frag) {
				t.Errorf("%s links to %s: %s has no heading %q", f, target, path, frag)
			}
		}
	}
}

// anchors are the fragments GitHub gives a Markdown file's headings.
func anchors(doc string) []string {
	var out []string
	inCode := false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
		h = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(h, "")
		out = append(out, strings.ReplaceAll(h, " ", "-"))
	}
	return out
}

// Nothing a user reads speaks of how the project is run.
func TestDocsHoldNoProjectBookkeeping(t *testing.T) {
	files, _ := filepath.Glob("../docs/*.md")
	// Every file under deploy/ (the chart, its values and examples too),
	// but not the chart's test module, which is code.
	var deploy []string
	filepath.WalkDir("../deploy", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "test" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			deploy = append(deploy, path)
		}
		return nil
	})
	files = append(append(files, deploy...), "../README.md", "../ARCHITECTURE.md", "../proxy.yaml", "../Dockerfile", "../docker-compose.yml")
	words := regexp.MustCompile(`(?i)\bissues? \d|\bissue point|docker-standins|workplace|\bseed apis?\b|\b(?:this|that|last|next|previous|earlier|later|a developer's|work|coding) sessions?\b|\bstop \d|\bpoint \d`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(data), "\n") {
			if w := words.FindString(l); w != "" {
				t.Errorf("%s:%d: %q: %s", f, i+1, w, l)
			}
		}
	}
}
