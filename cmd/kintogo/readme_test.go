package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block of README.md after the line
// containing heading, and after the line containing after ("" for none)
// past the heading.
func readmeBlock(t *testing.T, heading, after string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i := strings.Index(text, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	text = text[i:]
	if after != "" {
		j := strings.Index(text, after)
		if j < 0 {
			t.Fatalf("README has no %q after %q", after, heading)
		}
		text = text[j:]
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sh block after %q", heading)
	}
	// Indented blocks (in a list) lose their indentation.
	var lines []string
	for _, l := range strings.Split(m[1], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "   "))
	}
	return strings.Join(lines, "\n")
}

// runShell runs a script with bash in dir, kintogo on the PATH, stdin as
// given, and curl bounded to a few seconds (the README's stream commands
// wait for ever); it returns the output.
func runShell(t *testing.T, dir, stdin, script string) string {
	t.Helper()
	bin := filepath.Dir(binary)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -e\ncurl() { command curl --max-time 3 -sS \"$@\" || [ $? = 28 ]; echo; }\n"+script)
	// A server the script left running must not hold the test up.
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n--- script\n%s\n--- output\n%s", err, script, out.String())
	}
	return out.String()
}

// portFree reports whether nothing listens on 127.0.0.1:8888, which the
// README's commands use.
func portFree() bool {
	l, err := net.Listen("tcp", "127.0.0.1:8888")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// README's commands, as written, with the built kintogo on the PATH, in
// fresh folders: the first five minutes (the administrator, the feed with
// curl, init) and the signed-collection tutorial, to the signed changeset.
func TestREADMECommands(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	if !portFree() {
		t.Skip("port 8888, which README's commands use, is taken")
	}
	// The first five minutes: the server as README starts it (its build
	// step aside: the binary is built), then its steps.
	dir := t.TempDir()
	first := readmeBlock(t, "## The first five minutes", "")
	start := first[strings.Index(first, "kintogo start"):]
	start = strings.TrimSpace(start[:strings.Index(start, "#")])
	server := exec.Command("bash", "-c", "exec "+start)
	server.Dir = dir
	server.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"))
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			server.Process.Signal(os.Interrupt)
			server.Wait()
			stopped = true
		}
	}
	defer stop()
	for i := 0; i < 100 && portFree(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	runShell(t, dir, "PASSWORD\nPASSWORD\n", readmeBlock(t, "1. **Create the administrator**", ""))
	out := runShell(t, dir, "", readmeBlock(t, "3. **Watch the feed**", ""))
	if !strings.Contains(out, `"bucket":"main","collection":"fruits"`) {
		t.Errorf("the feed's commands printed:\n%s", out)
	}
	stop()

	// The signed-collection tutorial, verbatim, in another folder.
	tutorial := readmeBlock(t, "### From an empty server to a verified collection", "")
	dir = t.TempDir()
	out = runShell(t, dir, "PW\nPW\n", tutorial+"\nkill %1; wait\n")
	for _, want := range []string{`Not in certs-reviewers group`, `"signature"`, `"x5u"`, `"name":"intermediate-1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the tutorial's output lacks %s:\n%s", want, out)
		}
	}
}
