package notify_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kintogo/internal/app/apptest"
	"kintogo/internal/contentsig"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

// server is kintogo with the signer's review workflow, for the hooks.
type server struct {
	t   *testing.T
	url string
}

func newServer(t *testing.T, open storetest.Open, settings map[string]string) *server {
	t.Helper()
	key, _ := contentsig.GenerateKey()
	pemKey, _ := contentsig.EncodePrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "signer.pem")
	os.WriteFile(keyFile, pemKey, 0o600)
	base := map[string]string{
		"project_name": "Remote Settings LOCAL", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
		"signer.resources":         "/buckets/ws -> /buckets/preview -> /buckets/main",
		"signer.to_review_enabled": "true", "signer.ecdsa.private_key": keyFile,
	}
	for k, v := range settings {
		base[k] = v
	}
	ts := httptest.NewServer(apptest.Server(t, open(t), httpapi.Options{}, base))
	t.Cleanup(ts.Close)
	return &server{t: t, url: ts.URL}
}

func (s *server) do(method, path, auth string, body any, want int) map[string]any {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "notify-test")
	if user, pw, ok := strings.Cut(auth, ":"); ok {
		req.SetBasicAuth(user, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if want != 0 && resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

const (
	editor   = "editor:pw"
	reviewer = "reviewer:pw"
)

// workflow makes the source collection ws/certs with a record, the
// reviewer in its reviewers group, and asks for a review with a comment;
// it returns the editor's user id.
func (s *server) workflow(bucketMeta map[string]any) string {
	s.t.Helper()
	s.do("PUT", "/v1/buckets/ws", editor, map[string]any{"data": bucketMeta}, 201)
	s.do("PUT", "/v1/buckets/ws/collections/certs", editor, nil, 201)
	rev := s.do("GET", "/v1/", reviewer, nil, 200)["user"].(map[string]any)["id"].(string)
	s.do("PATCH", "/v1/buckets/ws/groups/certs-reviewers", editor, map[string]any{"data": map[string]any{"members": []any{rev}}}, 200)
	s.do("PUT", "/v1/buckets/ws/groups/reviewers", editor, map[string]any{"data": map[string]any{"members": []any{"ldap:rev@example.com", rev}}}, 201)
	s.do("PUT", "/v1/buckets/ws/collections/certs/records/r1", editor, map[string]any{"data": map[string]any{"hola": "mundo"}}, 201)
	s.do("PATCH", "/v1/buckets/ws/collections/certs", editor, map[string]any{"data": map[string]any{"status": "to-review", "last_editor_comment": "looks good"}}, 200)
	return s.do("GET", "/v1/", editor, nil, 200)["user"].(map[string]any)["id"].(string)
}

// receiver is a Slack incoming webhook: it records what it is posted,
// by path, and fails the first fail posts.
type receiver struct {
	mu    sync.Mutex
	got   map[string][]map[string]any
	fail  int
	tries int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries++
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "not now", 500)
		return
	}
	var m map[string]any
	json.NewDecoder(r.Body).Decode(&m)
	rc.got[r.URL.Path] = append(rc.got[r.URL.Path], m)
}

func (rc *receiver) posted(path string) []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got[path]...)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s: not after 10 s", what)
}

// kinto_slack: the hooks of the bucket post to their channel's webhook
// (or the default one) after each change they select, and on review
// requests with the review's fields, as Mozilla's browser-tests expect;
// a failing webhook is tried again; hooks without a template are refused.
func TestSlack(t *testing.T) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			rc := &receiver{got: map[string][]map[string]any{}, fail: 1}
			hooks := httptest.NewServer(rc)
			t.Cleanup(hooks.Close)
			debug := t.TempDir()
			s := newServer(t, open, map[string]string{"includes": "kinto_remote_settings kinto_slack",
				"slack.webhook_url": hooks.URL + "/default", "slack.reviews.webhook_url": hooks.URL + "/reviews", "slack.debug_dir": debug})
			s.do("PUT", "/v1/buckets/bad", editor, map[string]any{"data": map[string]any{"kinto-slack": map[string]any{"hooks": []any{map[string]any{"event": "x"}}}}}, 400)
			user := s.workflow(map[string]any{"kinto-slack": map[string]any{"hooks": []any{
				map[string]any{"event": "kinto_remote_settings.signer.events.ReviewRequested", "channel": "#reviews",
					"template": "{user_id} requested review for {changes_count} changes ({comment}) on {bucket_id}/{collection_id} on {settings[project_name]}."},
				map[string]any{"resource_name": "record", "action": "create", "collection_id": "^cer",
					"template": "{user_id} has {action}d {resource_name} {id} in {bucket_id}/{collection_id} ({unknown})."},
				map[string]any{"collection_id": "^other", "template": "never"},
			}}})
			eventually(t, "the review request posted", func() bool { return len(rc.posted("/reviews")) == 1 })
			if got := rc.posted("/reviews")[0]; got["channel"] != "#reviews" ||
				got["text"] != user+" requested review for 1 changes (looks good) on ws/certs on Remote Settings LOCAL." {
				t.Errorf("review: %v", got)
			}
			eventually(t, "the record's creation posted (once the first post failed)", func() bool { return len(rc.posted("/default")) == 1 })
			if got := rc.posted("/default")[0]; got["channel"] != nil || got["text"] != user+" has created record r1 in ws/certs ()." {
				t.Errorf("creation: %v", got)
			}
			time.Sleep(200 * time.Millisecond)
			if n := len(rc.posted("/default")) + len(rc.posted("/reviews")); n != 2 {
				t.Errorf("%d messages", n)
			}
			files, _ := os.ReadDir(debug)
			if len(files) < 2 {
				t.Errorf("slack.debug_dir: %d files", len(files))
			}
		})
	}
}

// smtpd is a real SMTP server (aiosmtpd, clients/smtpd/smtpd.py) with the
// Python of $KINTOGO_TEST_SMTPD.
type smtpd struct {
	dir   string
	port  int
	stdin io.WriteCloser
}

func startSMTPD(t *testing.T, port int, args ...string) *smtpd {
	t.Helper()
	python := os.Getenv("KINTOGO_TEST_SMTPD")
	if python == "" {
		t.Skip("KINTOGO_TEST_SMTPD (a Python with aiosmtpd, as scripts/test.sh makes) is not set")
	}
	d := &smtpd{dir: t.TempDir()}
	cmd := exec.Command(python, append([]string{"../../../clients/smtpd/smtpd.py", d.dir, "--port", fmt.Sprint(port)}, args...)...)
	cmd.Stderr = os.Stderr
	d.stdin, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, err2 := fmt.Sscanf(line, "ready %d", &d.port); err != nil || err2 != nil {
		t.Fatalf("smtpd: %q %v", line, err)
	}
	return d
}

// received are the messages the server accepted, with their envelopes.
func (d *smtpd) received(t *testing.T) (msgs []*mail.Message, envelopes []map[string]any) {
	files, _ := filepath.Glob(filepath.Join(d.dir, "*.eml"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		var env map[string]any
		rawEnv, _ := os.ReadFile(strings.TrimSuffix(f, ".eml") + ".json")
		json.Unmarshal(rawEnv, &env)
		envelopes = append(envelopes, env)
	}
	return msgs, envelopes
}

// certificates writes a CA and a certificate it issued for 127.0.0.1.
func certificates(t *testing.T) (ca, cert, key string) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, _ := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", srvDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// kinto_emailer through a real SMTP server: the review request's e-mail
// as Mozilla's browser-tests expect it (to the address and the members
// of the group whose ids are addresses), over plain SMTP, STARTTLS with
// credentials, and TLS; sent once the server comes up when it was down;
// hooks refused as kinto-emailer refuses them; a template that does not
// render sends nothing and fails nothing.
func TestEmailer(t *testing.T) {
	ca, cert, key := certificates(t)
	hooks := map[string]any{"kinto-emailer": map[string]any{"hooks": []any{
		map[string]any{"event": "kinto_remote_settings.signer.events.ReviewRequested",
			"subject":    "{user_id} requested review on {bucket_id}/{collection_id}.",
			"template":   "Review changes at {root_url}admin/#/buckets/{bucket_id}/collections/{collection_id}/records ({comment})",
			"recipients": []any{"me@you.com", "/buckets/ws/groups/reviewers"}},
		map[string]any{"resource_name": "record", "template": "{nothing}", "recipients": []any{"me@you.com"}},
	}}}
	check := func(t *testing.T, d *smtpd, user string, secure bool, login string) {
		t.Helper()
		var msgs []*mail.Message
		var envs []map[string]any
		eventually(t, "the e-mail", func() bool { msgs, envs = d.received(t); return len(msgs) >= 1 })
		time.Sleep(200 * time.Millisecond)
		if msgs, envs = d.received(t); len(msgs) != 1 {
			t.Fatalf("%d e-mails", len(msgs))
		}
		m, env := msgs[0], envs[0]
		body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
		if got := m.Header.Get("Subject"); got != user+" requested review on ws/certs." {
			t.Errorf("Subject: %q", got)
		}
		if m.Header.Get("To") != "me@you.com, rev@example.com" || m.Header.Get("From") != "kinto@example.com" ||
			!strings.Contains(string(body), "/v1/admin/#/buckets/ws/collections/certs/records (looks good)") {
			t.Errorf("e-mail: %v\n%s", m.Header, body)
		}
		if fmt.Sprint(env["to"]) != "[me@you.com rev@example.com]" || env["from"] != "kinto@example.com" || env["tls"] != secure || (login != "" && env["login"] != login) {
			t.Errorf("envelope: %v", env)
		}
	}
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			d := startSMTPD(t, 0)
			s := newServer(t, open, map[string]string{"includes": "kinto_remote_settings kinto_emailer",
				"mail.host": "127.0.0.1", "mail.port": fmt.Sprint(d.port), "mail.default_sender": "kinto@example.com"})
			for _, c := range []struct {
				hooks any
				want  string
			}{
				{map[string]any{}, `Missing "hooks".`},
				{map[string]any{"hooks": []any{map[string]any{"recipients": []any{"a@b.c"}}}}, `Missing "template".`},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{}}}}, "Empty list of recipients."},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{"nobody", "a@b.c"}}}}, "Invalid recipients nobody"},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{"/buckets/other/groups/g"}}}}, "Invalid bucket for groups /buckets/other/groups/g"},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{"/buckets/badx/groups/g"}}}}, "Invalid bucket for groups /buckets/badx/groups/g"},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{"a@b.c\r\nBcc: x@y.z"}}}}, "Invalid recipients"},
				{map[string]any{"hooks": []any{map[string]any{"template": "x", "recipients": []any{"a@b.c"}, "sender": "k@e.com\r\nBcc: x@y.z"}}}, "Invalid sender"},
			} {
				got := s.do("PUT", "/v1/buckets/bad", editor, map[string]any{"data": map[string]any{"kinto-emailer": c.hooks}}, 400)
				if got["message"] != "data: "+c.want && !strings.Contains(fmt.Sprint(got["details"]), c.want) {
					t.Errorf("%v: %v", c.hooks, got)
				}
			}
			check(t, d, s.workflow(hooks), false, "")
		})
	}
	t.Run("STARTTLS with credentials", func(t *testing.T) {
		d := startSMTPD(t, 0, "--starttls", cert, key, "--user", "kinto", "--password", "s3cret")
		s := newServer(t, storetest.Backends()["memory"], map[string]string{"includes": "kinto_remote_settings kinto_emailer",
			"mail.host": "127.0.0.1", "mail.port": fmt.Sprint(d.port), "mail.default_sender": "kinto@example.com",
			"mail.tls": "true", "mail.username": "kinto", "mail.password": "s3cret", "mail.cafile": ca})
		check(t, d, s.workflow(hooks), true, "kinto")
	})
	t.Run("TLS", func(t *testing.T) {
		d := startSMTPD(t, 0, "--ssl", cert, key)
		s := newServer(t, storetest.Backends()["memory"], map[string]string{"includes": "kinto_remote_settings kinto_emailer",
			"mail.host": "127.0.0.1", "mail.port": fmt.Sprint(d.port), "mail.default_sender": "kinto@example.com",
			"mail.ssl": "true", "mail.cafile": ca})
		check(t, d, s.workflow(hooks), true, "")
	})
	t.Run("the server comes up later", func(t *testing.T) {
		port := freePort(t)
		s := newServer(t, storetest.Backends()["memory"], map[string]string{"includes": "kinto_remote_settings kinto_emailer",
			"mail.host": "127.0.0.1", "mail.port": fmt.Sprint(port), "mail.default_sender": "kinto@example.com"})
		start := time.Now()
		user := s.workflow(hooks)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the writes waited for the mail server: %v", d)
		}
		d := startSMTPD(t, port)
		check(t, d, user, false, "")
	})
	t.Run("debug mailer", func(t *testing.T) {
		t.Chdir(t.TempDir())
		s := newServer(t, storetest.Backends()["memory"], map[string]string{"includes": "kinto_remote_settings kinto_emailer", "mail.debug_mailer": "true"})
		s.workflow(hooks)
		var files []string
		eventually(t, "an .eml in ./mail", func() bool { files, _ = filepath.Glob("mail/*.eml"); return len(files) == 1 })
		raw, _ := os.ReadFile(files[0])
		if !strings.Contains(string(raw), "Subject: basicauth:") || !strings.Contains(string(raw), "To: me@you.com") || !strings.Contains(string(raw), "From: nobody") {
			t.Errorf("%s", raw)
		}
	})
}
