package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// No Docker engine runs in CI, so the Dockerfile is never built there. This
// test keeps it saying what the daemonless build does: the same go build,
// binary path, base, user, entrypoint, command, PATH and labels, and the Go
// version of go.mod (the binary's bytes depend on it).

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(src string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continued instruction never ends", start)
	}
	return out, nil
}

// shellWords splits s like a POSIX shell would, without expanding anything:
// quotes group and are removed, a backslash escapes the next character.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			w.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{`-ldflags="-s -w -X main.version=${VERSION}" -o x`, []string{"-ldflags=-s -w -X main.version=${VERSION}", "-o", "x"}},
		{`k="v w" k2='a "b"'`, []string{"k=v w", `k2=a "b"`}},
		{`a\ b ""`, []string{"a b", ""}},
	} {
		got, err := shellWords(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := shellWords(`a "b`); err == nil {
		t.Error(`shellWords("a \"b") did not fail`)
	}
}

func TestDockerfileAgreesWithDaemonlessBuild(t *testing.T) {
	root := filepath.Join("..", "..")
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ins, err := parseDockerfile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	if got := ins[last].args; got != "scratch" {
		t.Errorf("final stage FROM %q, want scratch (the daemonless image has no base layers)", got)
	}
	build, final := ins[:last], ins[last+1:]

	// The Go version: the ARG default before the first FROM equals go.mod's.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for _, line := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if goVersion == "" {
		t.Fatal("go.mod has no go directive")
	}
	if want := "ARG GO_VERSION=" + goVersion; !strings.Contains(string(src), want+"\n") {
		t.Errorf("Dockerfile lacks %q (go.mod's go directive): another Go compiles other bytes", want)
	}

	// The build stage's go build: same environment and arguments.
	var buildArgs []string
	for _, in := range build {
		if in.cmd != "RUN" {
			continue
		}
		words, err := shellWords(in.args)
		if err != nil {
			t.Fatalf("line %d: %v", in.line, err)
		}
		for i := 0; i+1 < len(words); i++ {
			if words[i] == "go" && words[i+1] == "build" {
				if !strings.Contains(in.args, "CGO_ENABLED=0") {
					t.Errorf("line %d: go build without CGO_ENABLED=0", in.line)
				}
				buildArgs = words[i+2:]
			}
		}
	}
	if want := GoBuildArgs("${VERSION}", "/out/vipd"); !reflect.DeepEqual(buildArgs, want) {
		t.Errorf("Dockerfile go build args %q, want %q (GoBuildArgs)", buildArgs, want)
	}

	// The final stage: one COPY of the binary, user, entrypoint, cmd, env, labels.
	var copies []string
	labels := map[string]string{}
	var user, path string
	var entrypoint, cmd []string
	for _, in := range final {
		switch in.cmd {
		case "COPY", "ADD":
			copies = append(copies, in.args)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("line %d: ENTRYPOINT not in exec (JSON) form: %v", in.line, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(in.args), &cmd); err != nil {
				t.Errorf("line %d: CMD not in exec (JSON) form: %v", in.line, err)
			}
		case "ENV", "LABEL":
			words, err := shellWords(in.args)
			if err != nil {
				t.Fatalf("line %d: %v", in.line, err)
			}
			for _, w := range words {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					t.Fatalf("line %d: %s %q is not key=value", in.line, in.cmd, w)
				}
				if in.cmd == "LABEL" {
					labels[k] = v
				} else if k == "PATH" {
					path = v
				} else {
					t.Errorf("line %d: ENV %s is not in the daemonless image", in.line, k)
				}
			}
		case "ARG", "RUN":
			// ARGs feed the labels; a RUN cannot run in scratch.
			if in.cmd == "RUN" {
				t.Errorf("line %d: RUN in the final stage", in.line)
			}
		default:
			t.Errorf("line %d: %s in the final stage: teach internal/image the same, then this test", in.line, in.cmd)
		}
	}
	if want := []string{"--from=build /out/vipd " + BinaryPath}; !reflect.DeepEqual(copies, want) {
		t.Errorf("final stage copies %q, want %q", copies, want)
	}
	if user != User {
		t.Errorf("USER %q, want %q", user, User)
	}
	if path != Path {
		t.Errorf("ENV PATH=%q, want %q", path, Path)
	}
	if !reflect.DeepEqual(entrypoint, Entrypoint) {
		t.Errorf("ENTRYPOINT %q, want %q", entrypoint, Entrypoint)
	}
	if !reflect.DeepEqual(cmd, Cmd) {
		t.Errorf("CMD %q, want %q", cmd, Cmd)
	}
	if want := Labels(Meta{Version: "${VERSION}", Revision: "${REVISION}"}); !reflect.DeepEqual(labels, want) {
		t.Errorf("LABELs\n%q\nwant\n%q", labels, want)
	}
}
