package docker

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The commands the Dockerfile, docker-compose.yml, the README's Docker
// section and the Docker pages of docs/ show a user. Tests run them
// through shell.run/start/try, which mark them; TestMain fails the suite
// if one was never run as written.

var (
	ranMu sync.Mutex
	ran   = map[string]bool{}
)

func markRun(line string) {
	ranMu.Lock()
	ran[normalize(line)] = true
	ranMu.Unlock()
}

// normalize joins continued lines and squeezes blanks, so that a command
// wrapped across lines in a file matches the one a test runs.
func normalize(line string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(line, "\\\n", " ")), " ")
}

// dockerDocs are the Markdown files, and the section of each ("" for the
// whole file), whose ```sh blocks are Docker commands.
var dockerDocs = []struct{ file, section string }{
	{"README.md", "## Docker"},
	{"docs/docker.md", ""},
	{"docs/replicas.md", ""},
	{"docs/forward-proxy.md", "## Try it in docker compose"},
}

// documentedCommands returns every command a user is shown, normalized.
func documentedCommands() ([]string, error) {
	var cmds []string
	for _, f := range []string{"Dockerfile", "docker-compose.yml"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, commentCommands(string(data))...)
	}
	for _, d := range dockerDocs {
		data, err := os.ReadFile(filepath.Join(repoRoot, d.file))
		if err != nil {
			return nil, err
		}
		cmds = append(cmds, markdownCommands(string(data), d.section)...)
	}
	for i, c := range cmds {
		cmds[i] = normalize(c)
	}
	slices.Sort(cmds)
	return slices.Compact(cmds), nil
}

// commentCommand is a comment line that shows a command: indented under
// the comment's text, as the files write them.
var commentCommand = regexp.MustCompile(`^\s*#\s{2,}((?:docker|docker-compose|curl) .*)$`)

// commentCommands finds the commands in a file's comments, with "\"
// continuations.
func commentCommands(text string) []string {
	var cmds []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := commentCommand.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		body := strings.TrimSpace(m[1])
		for strings.HasSuffix(body, "\\") && i+1 < len(lines) {
			i++
			next, _ := strings.CutPrefix(strings.TrimSpace(lines[i]), "#")
			body = strings.TrimSuffix(body, "\\") + " " + strings.TrimSpace(next)
		}
		cmds = append(cmds, body)
	}
	return cmds
}

// markdownCommands finds the lines of the ```sh blocks in text, only
// under the "## " heading section if it is not "".
func markdownCommands(text, section string) []string {
	var cmds []string
	in, inBlock := section == "", false
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case section != "" && strings.HasPrefix(l, "## "):
			in = strings.TrimSpace(l) == section
		case in && strings.HasPrefix(strings.TrimSpace(l), "```sh"):
			inBlock = true
		case inBlock && strings.HasPrefix(strings.TrimSpace(l), "```"):
			inBlock = false
		case inBlock && strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#"):
			cmd := strings.TrimSpace(l)
			for strings.HasSuffix(strings.TrimSpace(cmd), "\\") && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(strings.TrimSpace(cmd), "\\") + " " + lines[i]
			}
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// notRun returns the documented commands no test ran.
func notRun() []string {
	cmds, err := documentedCommands()
	if err != nil {
		return []string{err.Error()}
	}
	ranMu.Lock()
	defer ranMu.Unlock()
	var missing []string
	for _, c := range cmds {
		if !ran[c] {
			missing = append(missing, c)
		}
	}
	return missing
}

// documented returns the one documented command that starts with prefix,
// so that a test runs what the files say rather than its own copy.
func documented(t *testing.T, prefix string) string {
	t.Helper()
	found := documentedAll(t, prefix)
	if len(found) != 1 {
		t.Fatalf("documented commands starting with %q: %q; want exactly one", prefix, found)
	}
	return found[0]
}

// documentedLine returns line if it is a documented command as written,
// for a command that starts another one (`down`, `down -v`).
func documentedLine(t *testing.T, line string) string {
	t.Helper()
	cmds, err := documentedCommands()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cmds, line) {
		t.Fatalf("%q is not a documented command", line)
	}
	return line
}

// TestDocumentedCommandsAreFound guards the extraction itself: it runs
// without Docker.
func TestDocumentedCommandsAreFound(t *testing.T) {
	cmds, err := documentedCommands()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"docker build -t authproxy .", "docker compose up --build", "docker compose --profile replicas down -v",
		"docker compose --profile replicas up --build replica"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("%q is not among the documented commands:\n%s", want, strings.Join(cmds, "\n"))
		}
	}
	for _, c := range cmds {
		if strings.Contains(c, "\\") {
			t.Errorf("a continuation was not joined: %q", c)
		}
	}
}

// Wherever the replicas profile is started, its clean-up is shown: a
// plain `down -v` leaves Redis, its volume, the replicas and the network.
func TestTheReplicasCleanUpIsShownWhereverTheProfileStarts(t *testing.T) {
	for _, f := range []string{"README.md", "docs/docker.md", "docs/replicas.md", "docker-compose.yml", "Dockerfile"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		text := normalize(string(data))
		if strings.Contains(text, "--profile replicas up") && !strings.Contains(text, "docker compose --profile replicas down -v") {
			t.Errorf("%s starts the replicas profile and does not show: docker compose --profile replicas down -v", f)
		}
	}
}

// The Dockerfile and docs/docker.md say alike to mount the config's
// directory, not the file, which an editor's replace never reaches.
func TestTheConfigMountIsTheDirectoryEverywhere(t *testing.T) {
	const mount = `-v "$PWD/config:/etc/authproxy:ro"`
	for _, f := range []string{"Dockerfile", "docs/docker.md"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), mount) {
			t.Errorf("%s does not show the directory mount %s", f, mount)
		}
		if regexp.MustCompile(`-v "?\S*:/etc/authproxy/proxy\.yaml`).Match(data) {
			t.Errorf("%s shows a mount of the config file itself", f)
		}
	}
}
