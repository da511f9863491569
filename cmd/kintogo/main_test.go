package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the kintogo command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("KINTOGO_POLL_CLIENT") != "" {
		pollClient() // a helper process of TestThirtyThousandLongPolls
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "kintogo-cmd")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kintogo")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs `kintogo start` in dir with no configuration file: basic auth
// and the extra environment settings.
func start(t *testing.T, dir string, port int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "start", "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "KINTO_MULTIAUTH_POLICIES=basicauth"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/v1/__heartbeat__"); err == nil {
			resp.Body.Close()
			return cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("server did not start")
	return nil
}

func request(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.SetBasicAuth("alice", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// With no configuration, `kintogo start` keeps its data in a SQLite file
// in the working directory, and the data survives a restart.
func TestStartWithoutConfigurationPersists(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/v1"
	cmd := start(t, dir, port)
	if code, body := request(t, "PUT", base+"/buckets/kept"); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kintogo.db")); err != nil {
		t.Fatalf("no database file in the working directory: %v", err)
	}
	cmd = start(t, dir, port)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if code, body := request(t, "GET", base+"/buckets/kept"); code != 200 || !strings.Contains(body, `"id":"kept"`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
}

func TestVersionAndMigrate(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("version: %q %v", out, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(binary, "migrate")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "kintogo.db")); err != nil {
		t.Fatalf("migrate created no database: %v", err)
	}
	if err := exec.Command(binary, "bogus").Run(); err == nil {
		t.Error("an unknown command must fail")
	}
	bad := filepath.Join(dir, "bad.ini")
	os.WriteFile(bad, []byte("[app:main]\nkinto.readonly = maybe\n"), 0o600)
	if err := exec.Command(binary, "start", "--ini", bad).Run(); err == nil {
		t.Error("invalid settings must stop start-up")
	}
}
