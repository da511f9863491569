package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kintogo runs the command in dir with extra environment and standard
// input, and returns its standard output and error.
func kintogo(t *testing.T, dir, stdin string, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// server is a `kintogo start` with its output captured.
type server struct {
	base string
	out  *syncBuffer
}

type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

func startServer(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary, append([]string{"start", "--port", strconv.Itoa(port)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port) + "/v1", out: &syncBuffer{mu: make(chan struct{}, 1)}}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(s.base + "/__lbheartbeat__"); err == nil {
			resp.Body.Close()
			// The banner follows the listening log line.
			for j := 0; j < 100 && !strings.Contains(s.out.String(), "settings:"); j++ {
				time.Sleep(10 * time.Millisecond)
			}
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not start: %s", s.out.String())
	return nil
}

// do sends a request (user:password, or "" for none) and decodes the answer.
func do(t *testing.T, method, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if user, pw, ok := strings.Cut(auth, ":"); ok {
		req.SetBasicAuth(user, pw)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// The five-minute path on a fresh directory, with no configuration at all:
// start, create the administrator while the server runs, log in, write,
// and see the write in the monitor; anonymous writes and basic auth are
// refused.
func TestZeroConfigurationPath(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	banner := s.out.String()
	for _, want := range []string{s.base + "/", s.base + "/admin/", s.base + "/changes/", filepath.Join(dir, "kintogo.db"), "kintogo create-user --username admin"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the start banner does not say %q:\n%s", want, banner)
		}
	}
	_, root := do(t, "GET", s.base+"/", "", "")
	caps, _ := root["capabilities"].(map[string]any)
	for _, c := range []string{"changes", "accounts", "history", "admin", "permissions_endpoint"} {
		if caps[c] == nil {
			t.Errorf("capability %s missing: %v", c, caps)
		}
	}
	if code, _ := do(t, "PUT", s.base+"/buckets/anon", "", ""); code != 401 {
		t.Errorf("anonymous write: %d, want 401", code)
	}
	if code, _ := do(t, "PUT", s.base+"/buckets/basic", "alice:pw", ""); code != 401 {
		t.Errorf("basic auth of an unknown user: %d, want 401 (no basicauth policy by default)", code)
	}
	// From another folder (a new terminal opens in the home folder), the
	// command does not make a database of its own: it says where it
	// looked.
	elsewhere := t.TempDir()
	if _, errOut, err := kintogo(t, elsewhere, "s3cret\n", nil, "create-user", "--username", "admin"); err == nil ||
		!strings.Contains(errOut, "no database at "+filepath.Join(elsewhere, "kintogo.db")) || !strings.Contains(errOut, "KINTO_STORAGE_URL") {
		t.Errorf("create-user from another folder: %v %s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "kintogo.db")); err == nil {
		t.Errorf("create-user from another folder created a database there")
	}
	out, errOut, err := kintogo(t, dir, "s3cret\n", nil, "create-user", "--username", "admin")
	if err != nil || !strings.Contains(out, "Created user 'admin'") {
		t.Fatalf("create-user: %v %s %s", err, out, errOut)
	}
	if code, body := do(t, "PUT", s.base+"/buckets/main", "admin:s3cret", ""); code != 201 {
		t.Fatalf("the administrator creates a bucket: %d %v", code, body)
	}
	do(t, "PUT", s.base+"/buckets/main/collections/fruits", "admin:s3cret", "")
	code, rec := do(t, "POST", s.base+"/buckets/main/collections/fruits/records", "admin:s3cret", `{"data": {"name": "kiwi"}}`)
	if code != 201 {
		t.Fatalf("record: %d %v", code, rec)
	}
	ts := rec["data"].(map[string]any)["last_modified"].(float64)
	_, monitor := do(t, "GET", s.base+"/buckets/monitor/collections/changes/records", "", "")
	entries, _ := monitor["data"].([]any)
	if len(entries) != 1 || entries[0].(map[string]any)["collection"] != "fruits" || entries[0].(map[string]any)["last_modified"] != ts {
		t.Fatalf("monitor after the write: %v (record at %v)", monitor, ts)
	}
	// A second create-user sets the password: the running server stops
	// accepting the old one at once (the command's SIGHUP).
	if out, errOut, err := kintogo(t, dir, "", nil, "create-user", "-u", "admin", "-p", "n3w"); err != nil || !strings.Contains(out, "Changed the password") {
		t.Fatalf("create-user again: %v %s %s", err, out, errOut)
	}
	if code, _ := do(t, "GET", s.base+"/buckets/main", "admin:s3cret", ""); code != 401 {
		t.Errorf("old password after the change: %d, want 401", code)
	}
	if code, _ := do(t, "GET", s.base+"/buckets/main", "admin:n3w", ""); code != 200 {
		t.Errorf("new password: %d", code)
	}
}

func TestCreateUserRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		says string
	}{
		{[]string{"KINTO_READONLY=true"}, []string{"-u", "bob", "-p", "x"}, 51, "readonly"},
		{[]string{"KINTO_INCLUDES=kinto_changes"}, []string{"-u", "bob", "-p", "x"}, 52, "accounts plugin"},
		{nil, []string{"-u", "not a name", "-p", "x"}, 1, "not a valid username"},
		{nil, []string{"-u", "bob"}, 53, "aborted"}, // no password on standard input
		{[]string{"KINTO_STORAGE_BACKEND=memory"}, []string{"-u", "bob", "-p", "x"}, 1, "memory"},
	} {
		_, errOut, err := kintogo(t, dir, "", tc.env, append([]string{"create-user"}, tc.args...)...)
		exit, _ := err.(*exec.ExitError)
		if exit == nil || exit.ExitCode() != tc.code || !strings.Contains(errOut, tc.says) {
			t.Errorf("create-user %v with %v: %v %q, want exit %d saying %q", tc.args, tc.env, err, errOut, tc.code, tc.says)
		}
	}
}

// init writes a commented settings file with fresh secrets, refuses to
// overwrite it, and start --ini serves what it enables.
func TestInitThenStart(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := kintogo(t, dir, "", nil, "init")
	if err != nil || !strings.Contains(out, "config/kinto.ini") {
		t.Fatalf("init: %v %s %s", err, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config", "kinto.ini"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := regexp.MustCompile(`(?m)^kinto\.(userid|default_bucket)_hmac_secret = ([0-9a-f]{64})$`).FindAllStringSubmatch(string(raw), -1)
	if len(secrets) != 2 || secrets[0][2] == secrets[1][2] {
		t.Fatalf("init's secrets: %v", secrets)
	}
	if _, errOut, err := kintogo(t, dir, "", nil, "init"); err == nil || !strings.Contains(errOut, "already exists") {
		t.Errorf("a second init must refuse to overwrite: %v %s", err, errOut)
	}
	// Its secrets are the owner's only, and git ignores them.
	if info, err := os.Stat(filepath.Join(dir, "config", "kinto.ini")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("config/kinto.ini: %v %v", info.Mode(), err)
	}
	if ignore, _ := os.ReadFile(filepath.Join(dir, "config", ".gitignore")); !strings.Contains(string(ignore), "/kinto.ini") {
		t.Errorf("config/.gitignore: %q", ignore)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config", "kinto.ini")); !bytes.Equal(after, raw) {
		t.Error("the settings file changed")
	}
	other := filepath.Join(dir, "pg.ini")
	if _, _, err := kintogo(t, dir, "", nil, "init", "--ini", other, "--backend", "postgresql"); err != nil {
		t.Fatal(err)
	}
	pg, _ := os.ReadFile(other)
	if !strings.Contains(string(pg), "kinto.storage_backend = postgresql") || strings.Contains(string(pg), secrets[0][2]) {
		t.Errorf("postgresql settings file: %s", pg)
	}
	// config/kinto.ini is found by itself, as in Kinto.
	s := startServer(t, dir, nil)
	if !strings.Contains(s.out.String(), "settings:   config/kinto.ini") {
		t.Errorf("banner: %s", s.out.String())
	}
	_, root := do(t, "GET", s.base+"/", "", "")
	caps, _ := root["capabilities"].(map[string]any)
	for _, c := range []string{"changes", "accounts", "history", "admin"} {
		if caps[c] == nil {
			t.Errorf("capability %s missing: %v", c, caps)
		}
	}
	if out, errOut, err := kintogo(t, dir, "pw\n", nil, "create-user", "-u", "admin"); err != nil {
		t.Fatalf("create-user: %v %s %s", err, out, errOut)
	}
	if code, body := do(t, "PUT", s.base+"/buckets/b", "admin:pw", ""); code != 201 {
		t.Errorf("write as the administrator: %d %v", code, body)
	}
}

func TestMigrateDryRun(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := kintogo(t, dir, "", nil, "migrate", "--dry-run")
	if err != nil || !strings.Contains(out, "at version 0; migrate would bring it to version") {
		t.Fatalf("dry run on no database: %v %s %s", err, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "kintogo.db")); !os.IsNotExist(err) {
		t.Fatalf("a dry run created the database: %v", err)
	}
	if _, errOut, err := kintogo(t, dir, "", nil, "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, errOut)
	}
	if out, _, err := kintogo(t, dir, "", nil, "migrate", "--dry-run"); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("dry run after migrate: %v %s", err, out)
	}
}

// The administrative commands write beside a running server, on every
// backend: the server answers what they wrote at once (SQLite: their
// SIGHUP; PostgreSQL: their NOTIFY), its cached answers included.
func TestAdminCommandsBesideARunningServer(t *testing.T) {
	base := []string{"KINTO_MULTIAUTH_POLICIES=account basicauth", "KINTO_INCLUDES=kinto.plugins.accounts kinto.plugins.flush kinto_changes"}
	t.Run("sqlite", func(t *testing.T) { testAdminCommands(t, base) })
	t.Run("postgresql", func(t *testing.T) {
		env := append(base, "KINTO_STORAGE_BACKEND=postgresql", "KINTO_STORAGE_URL="+pgDSN(t, "kintogo_nodes"))
		if _, errOut, err := kintogo(t, t.TempDir(), "", env, "migrate"); err != nil {
			t.Fatalf("migrate: %v %s", err, errOut)
		}
		testAdminCommands(t, env)
	})
}

// eventually retries check for up to two seconds (PostgreSQL's
// notifications arrive after the command's commit).
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if check() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s: not so after 2 s", what)
}

func testAdminCommands(t *testing.T, env []string) {
	dir := t.TempDir()
	s := startServer(t, dir, env)
	do(t, "POST", s.base+"/__flush__", "", "")
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := kintogo(t, dir, stdin, env, args...)
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut)
		}
		return out
	}
	// Accounts: created, then its password changed; the old password
	// stops working although the server had verified it.
	// (basicauth takes any password: the account policy is the one that
	// names the user account:carol.)
	whoami := func(auth string) any {
		_, root := do(t, "GET", s.base+"/", auth, "")
		user, _ := root["user"].(map[string]any)
		return user["id"]
	}
	run("pw1\n", "create-user", "-u", "carol")
	if id := whoami("carol:pw1"); id != "account:carol" {
		t.Fatalf("the new account: %v", id)
	}
	run("", "create-user", "-u", "carol", "-p", "pw2")
	eventually(t, "old password refused", func() bool { return whoami("carol:pw1") != "account:carol" })
	if id := whoami("carol:pw2"); id != "account:carol" {
		t.Errorf("the new password: %v", id)
	}

	// Tombstones: by count per collection, then by age; live records stay.
	coll := s.base + "/buckets/b/collections/c"
	do(t, "PUT", s.base+"/buckets/b", "alice:pw", "")
	do(t, "PUT", coll, "alice:pw", "")
	for i := 0; i < 5; i++ {
		do(t, "PUT", coll+"/records/r"+strconv.Itoa(i), "alice:pw", `{"data": {}}`)
	}
	for i := 0; i < 4; i++ {
		do(t, "DELETE", coll+"/records/r"+strconv.Itoa(i), "alice:pw", "")
	}
	tombstones := func() int {
		_, list := do(t, "GET", coll+"/records?_since=0", "alice:pw", "")
		n := 0
		for _, r := range list["data"].([]any) {
			if r.(map[string]any)["deleted"] == true {
				n++
			}
		}
		return n
	}
	if n := tombstones(); n != 4 {
		t.Fatalf("tombstones before: %d", n)
	}
	if out := run("", "purge-deleted", "record", "1h"); !strings.Contains(out, "0 tombstone(s)") {
		t.Errorf("nothing is an hour old: %s", out)
	}
	if out := run("", "purge-deleted", "record", "1"); !strings.Contains(out, "3 tombstone(s) deleted") {
		t.Errorf("keeping one: %s", out)
	}
	eventually(t, "one tombstone left", func() bool { return tombstones() == 1 })
	time.Sleep(5 * time.Millisecond)
	if out := run("", "purge-deleted", "record", "collection", "1ms"); !strings.Contains(out, "1 tombstone(s)") {
		t.Errorf("purging the last: %s", out)
	}
	eventually(t, "no tombstone left", func() bool { return tombstones() == 0 })
	if code, _ := do(t, "GET", coll+"/records/r4", "alice:pw", ""); code != 200 {
		t.Errorf("a live record was purged: %d", code)
	}
	for _, bad := range [][]string{{"record"}, {"record", "soon"}, {"widget", "1d"}, {"record", "-1"}} {
		if _, _, err := kintogo(t, dir, "", env, append([]string{"purge-deleted"}, bad...)...); err == nil {
			t.Errorf("purge-deleted %v must fail", bad)
		}
	}
}

func TestHelp(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"--help"}, {"help"}, {"-h"}, {"help", "help"}} {
		out, errOut, err := kintogo(t, dir, "", nil, args...)
		if err != nil || errOut != "" {
			t.Errorf("%v: %v %s", args, err, errOut)
		}
		for name := range commands {
			if !strings.Contains(out, "  "+name+" ") {
				t.Errorf("%v does not list %s: %s", args, name, out)
			}
		}
	}
	for name, cmd := range commands {
		for _, args := range [][]string{{name, "--help"}, {"help", name}} {
			out, errOut, err := kintogo(t, dir, "", nil, args...)
			// Once, on stdout.
			if err != nil || errOut != "" || strings.Count(out, "usage: kintogo "+name) != 1 || !strings.Contains(strings.ToLower(out), strings.ToLower(cmd.summary)) {
				t.Errorf("%v: %v %s (stderr %q)", args, err, out, errOut)
			}
		}
		// A wrong flag: one line on stderr, the usage not repeated.
		out, errOut, err := kintogo(t, dir, "", nil, name, "--no-such-flag")
		if err == nil || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "kintogo help "+name) {
			t.Errorf("%s --no-such-flag: %v %q %q", name, err, out, errOut)
		}
	}
	if out, errOut, err := kintogo(t, dir, "", nil, "frobnicate"); err == nil || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("an unknown command: %v %q %q", err, out, errOut)
	}
}

// kill -9 during uploads: after the restart, every record's attachment
// names a file that exists, with the size and hash it says, and every
// acknowledged upload is there; no partly received file is left.
func TestKillDuringUploads(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "attachments") // the default: beside the database
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/v1"
	cmd := start(t, dir, port, "KINTO_INCLUDES=kinto_attachment")
	do(t, "PUT", base+"/buckets/b", "alice:pw", "")
	do(t, "PUT", base+"/buckets/b/collections/c", "alice:pw", "")
	content := strings.Repeat("x", 256<<10)
	acked := make(chan string, 1000)
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var body bytes.Buffer
				mw := multipart.NewWriter(&body)
				fw, _ := mw.CreateFormFile("attachment", "f.txt")
				fw.Write([]byte(content))
				mw.Close()
				id := fmt.Sprintf("w%d-%d", w, i%5) // replacements too
				req, _ := http.NewRequest("POST", base+"/buckets/b/collections/c/records/"+id+"/attachment", &body)
				req.SetBasicAuth("alice", "pw")
				req.Header.Set("Content-Type", mw.FormDataContentType())
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode < 300 {
					select {
					case acked <- id:
					default:
					}
				}
			}
		}(w)
	}
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	writers.Wait()
	close(acked)
	cmd = start(t, dir, port, "KINTO_INCLUDES=kinto_attachment")
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	_, list := do(t, "GET", base+"/buckets/b/collections/c/records", "alice:pw", "")
	records, _ := list["data"].([]any)
	have := map[string]bool{}
	for _, r := range records {
		rec := r.(map[string]any)
		have[rec["id"].(string)] = true
		att, _ := rec["attachment"].(map[string]any)
		raw, err := os.ReadFile(filepath.Join(files, filepath.FromSlash(att["location"].(string))))
		if err != nil || len(raw) != len(content) {
			t.Errorf("record %s names %v: %v (%d bytes)", rec["id"], att["location"], err, len(raw))
		}
	}
	n := 0
	for id := range acked {
		n++
		if !have[id] {
			t.Errorf("acknowledged upload %s lost", id)
		}
	}
	if n == 0 {
		t.Fatal("no upload was acknowledged before the kill")
	}
	if entries, _ := os.ReadDir(filepath.Join(files, ".tmp")); len(entries) != 0 {
		t.Errorf("partly received files left after the restart: %d", len(entries))
	}
	t.Logf("%d acknowledged uploads, %d records, all naming complete files", n, len(records))
}

// Misspelled settings, in the INI file or the environment, are reported
// at start with the name they were meant to be (they would otherwise be
// ignored without a word).
func TestUnknownSettingsWarned(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "config"), 0o755)
	os.WriteFile(filepath.Join(dir, "config", "kinto.ini"), []byte("[app:main]\nkinto.incldues = kinto_changes\n"), 0o600)
	_, errOut, err := kintogo(t, dir, "", []string{"KINTO_STORAGE_BAKEND=sqlite"}, "migrate", "--dry-run")
	if err != nil {
		t.Fatalf("migrate --dry-run: %v %s", err, errOut)
	}
	for _, want := range []string{"did you mean kinto.includes?", "kinto.incldues", "did you mean KINTO_STORAGE_BACKEND?", "KINTO_STORAGE_BAKEND"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("warnings lack %q:\n%s", want, errOut)
		}
	}
}

// Errors name what the user must change: the setting, the folder, the
// port (checked before any database is created).
func TestErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, err := kintogo(t, dir, "", []string{"KINTO_STORAGE_BACKEND=postgresql"}, "migrate"); err == nil ||
		!strings.Contains(errOut, "storage_url") || !strings.Contains(errOut, "postgres://") {
		t.Errorf("postgresql with the default storage_url: %v %s", err, errOut)
	}
	missing := filepath.Join(dir, "no", "such")
	if _, errOut, err := kintogo(t, dir, "", []string{"KINTO_STORAGE_URL=" + filepath.Join(missing, "k.db")}, "migrate"); err == nil ||
		!strings.Contains(errOut, "create "+missing) {
		t.Errorf("a missing data folder: %v %s", err, errOut)
	}
	// A port in use: refused before the database is created.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if _, errOut, err := kintogo(t, dir, "", nil, "start", "--port", port); err == nil || !strings.Contains(errOut, "--port") {
		t.Errorf("a port in use: %v %s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "kintogo.db")); err == nil {
		t.Errorf("a server that could not listen created its database")
	}
}
