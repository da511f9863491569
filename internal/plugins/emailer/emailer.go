// Package emailer is kinto_emailer (PyPI kinto-emailer 4.0.0): hooks in a
// collection's or bucket's metadata ("kinto-emailer": {"hooks": [...]})
// send an e-mail when a record or the collection changes, or on the
// signer's review events, to addresses and to the members of groups.
// Mail goes through an SMTP server (mail.host, mail.port, mail.ssl,
// mail.tls, mail.username, mail.password, mail.default_sender), or into
// .eml files in ./mail with mail.debug_mailer, as pyramid_mailer's debug
// mailer writes them. It is sent after the commit, never holding or
// failing the write; a failed delivery is tried again, then logged.
package emailer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/plugins/notify"
	"kintogo/internal/storage"
)

// Plugin is kinto_emailer.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto_emailer" }

const key = "kinto-emailer"

var (
	// emailRegexp is kinto-emailer's, as Python's re.match applies it
	// (anchored at the start: "Name <a@b.c>…" or a whole "a@b.c").
	emailRegexp = regexp.MustCompile(`^(?:(.*<[^@<>\s]+@[^@<>\s]+>)|([^@<>\s]+@[^@<>\s]+)$)`)
	groupRegexp = regexp.MustCompile(`^/buckets/[^/]+/groups/[^/]+$`)
)

// isAddress reports whether s is an address kinto-emailer accepts, and
// holds no control character (which could add headers to the message).
func isAddress(s string) bool {
	return emailRegexp.MatchString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// Message is an e-mail a hook sends.
type Message struct {
	Subject, Sender, Body string
	Recipients            []string
}

// mailer is where messages go: SMTP, or files (the debug mailer).
type mailer struct {
	host, username, password, sender string
	port                             int
	ssl, starttls                    bool
	debugDir                         string // the debug mailer's folder
	timeout                          time.Duration
	roots                            *x509.CertPool // nil: the system's

}

type plugin struct {
	log *slog.Logger
	m   *mailer
}

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	m, err := readMailer(h.Settings(), h.Logger())
	if err != nil {
		return err
	}
	p := &plugin{log: h.Logger(), m: m}
	h.Capability("emailer", map[string]any{"description": "Provide emailing capabilities to the server.",
		"url": "https://github.com/Kinto/kinto-emailer/"})
	notify.Check(h, key, validate)
	q := notify.NewQueue("kinto_emailer", p.log, 1000, 5,
		[]time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}, func(ctx context.Context, msg any) error {
			return m.send(msg.(Message))
		})
	notify.Watch(h, key, p.build, q)
	return nil
}

func readMailer(s *config.Settings, log *slog.Logger) (*mailer, error) {
	get := func(name string) string { v, _ := s.LookupEnv("mail." + name); return strings.TrimSpace(v) }
	m := &mailer{host: get("host"), username: get("username"), password: get("password"), sender: get("default_sender"),
		port: 25, timeout: 30 * time.Second}
	if m.host == "" {
		m.host = "localhost"
	}
	if v := get("port"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("mail.port: %q is not a port", v)
		}
		m.port = n
	}
	for name, dst := range map[string]*bool{"ssl": &m.ssl, "tls": &m.starttls} {
		if v := get(name); v != "" {
			b, err := config.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("mail.%s: %w", name, err)
			}
			*dst = b
		}
	}
	if v := get("debug_mailer"); v != "" {
		b, err := config.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("mail.debug_mailer: %w", err)
		}
		if b {
			wd, err := os.Getwd()
			if err != nil {
				return nil, err
			}
			m.debugDir = filepath.Join(wd, "mail")
		}
	}
	if get("queue_path") != "" {
		log.Warn("mail.queue_path: kintogo sends e-mails itself, retrying when the server is down; the queue folder is not used")
	}
	if ca := get("cafile"); ca != "" {
		raw, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("mail.cafile: %w", err)
		}
		if m.roots, err = x509.SystemCertPool(); err != nil {
			m.roots = x509.NewCertPool()
		}
		if !m.roots.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("mail.cafile: no certificate in %s", ca)
		}
	}
	if get("keyfile") != "" || get("certfile") != "" {
		return nil, fmt.Errorf("mail.keyfile, mail.certfile: client certificates are not supported (use mail.username and mail.password)")
	}
	return m, nil
}

// validate checks the hooks of buckets and collections as kinto-emailer
// does: hooks, a template and recipients each, recipients that are
// addresses or groups of that bucket.
func validate(conf any, bucketID string) error {
	invalid := func(msg string) error { return kerr.InvalidParam("body", nil, msg) }
	m, _ := conf.(map[string]any)
	list, ok := m["hooks"].([]any)
	if !ok {
		return invalid(`Missing "hooks".`)
	}
	bucketURI := "/buckets/" + bucketID
	for _, raw := range list {
		hook, _ := raw.(map[string]any)
		if _, ok := hook["template"]; !ok {
			return invalid(`Missing "template".`)
		}
		recipients, _ := hook["recipients"].([]any)
		if len(recipients) == 0 {
			return invalid("Empty list of recipients.")
		}
		var bad, otherBucket []string
		for _, r := range recipients {
			s, _ := r.(string)
			switch {
			case groupRegexp.MatchString(s):
				if !strings.HasPrefix(s, bucketURI+"/groups/") {
					otherBucket = append(otherBucket, s)
				}
			case !isAddress(s):
				bad = append(bad, fmt.Sprint(r))
			}
		}
		if sender, ok := hook["sender"]; ok {
			// (kinto-emailer takes any sender; one with a line break
			// would add headers to the message.)
			if s, _ := sender.(string); !isAddress(s) {
				return invalid("Invalid sender " + fmt.Sprint(sender))
			}
		}
		if len(bad) > 0 {
			return invalid("Invalid recipients " + strings.Join(bad, ", "))
		}
		if len(otherBucket) > 0 {
			return invalid("Invalid bucket for groups " + strings.Join(otherBucket, ", "))
		}
	}
	return nil
}

// build renders the hooks that select the event, with their recipients:
// the addresses, and the members of the groups named (after rendering)
// whose ids, without their prefix, are addresses. A template that does
// not render (a variable missing) is logged and skipped, where Kinto
// fails the write.
func (p *plugin) build(ctx context.Context, tx storage.Tx, hooks []map[string]any, vars map[string]any) ([]any, error) {
	lookup := func(name string) (any, bool) { v, ok := vars[name]; return v, ok }
	var out []any
	for _, hook := range hooks {
		if !notify.Matches(hook, vars) {
			continue
		}
		tmpl, _ := hook["template"].(string)
		subjectTmpl, ok := hook["subject"].(string)
		if !ok {
			subjectTmpl = "New message"
		}
		body, err := notify.Format(tmpl, lookup)
		if err == nil {
			var subject string
			if subject, err = notify.Format(subjectTmpl, lookup); err == nil {
				var recipients []string
				if recipients, err = p.recipients(ctx, tx, hook, lookup); err == nil && len(recipients) > 0 {
					sender, _ := hook["sender"].(string)
					out = append(out, Message{Subject: subject, Sender: sender, Body: body, Recipients: recipients})
				}
			}
		}
		if err != nil {
			if kerr.KindOf(err) != kerr.Other || ctx.Err() != nil {
				return nil, err // a storage failure
			}
			p.log.Warn("kinto_emailer: a hook does not render; no e-mail", "template", tmpl, "err", err)
		}
	}
	return out, nil
}

func (p *plugin) recipients(ctx context.Context, tx storage.Tx, hook map[string]any, lookup func(string) (any, bool)) ([]string, error) {
	list, _ := hook["recipients"].([]any)
	var emails []string
	for _, r := range list {
		s, _ := r.(string)
		if !groupRegexp.MatchString(s) {
			if isAddress(s) {
				emails = append(emails, s)
			}
			continue
		}
		uri, err := notify.Format(s, lookup)
		if err != nil {
			return nil, err
		}
		bucketURI, gid, ok := strings.Cut(uri, "/groups/")
		// Only groups of the event's bucket, once rendered too.
		if bid, _ := lookup("bucket_id"); !ok || !groupRegexp.MatchString(uri) || bucketURI != "/buckets/"+fmt.Sprint(bid) {
			continue
		}
		group, err := tx.Get(ctx, storage.Scope{Parent: bucketURI, Resource: "group"}, gid)
		if kerr.Is(err, kerr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		members, _ := group.Data["members"].([]any)
		for _, m := range members {
			id, _ := m.(string)
			if _, rest, ok := strings.Cut(id, ":"); ok {
				id = rest
			}
			if isAddress(id) {
				emails = append(emails, id)
			}
		}
	}
	return emails, nil
}

// send delivers a message, to the SMTP server or into the debug folder.
func (m *mailer) send(msg Message) error {
	sender := msg.Sender
	if m.debugDir != "" {
		if sender == "" {
			sender = "nobody" // pyramid_mailer's debug mailer
		}
		if err := os.MkdirAll(m.debugDir, 0o755); err != nil {
			return err
		}
		name := filepath.Join(m.debugDir, time.Now().Format("20060102150405")+"_"+randomPart()+".eml")
		return os.WriteFile(name, compose(msg, sender), 0o644)
	}
	if sender == "" {
		sender = m.sender
	}
	if sender == "" {
		return fmt.Errorf("no sender: set mail.default_sender, or the hook's sender")
	}
	addr := net.JoinHostPort(m.host, strconv.Itoa(m.port))
	conn, err := net.DialTimeout("tcp", addr, m.timeout)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(m.timeout))
	tlsConfig := &tls.Config{ServerName: m.host, RootCAs: m.roots}
	if m.ssl {
		conn = tls.Client(conn, tlsConfig)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if m.starttls {
		if err := c.StartTLS(tlsConfig); err != nil {
			return err
		}
	}
	if m.username != "" || m.password != "" {
		if err := c.Auth(smtp.PlainAuth("", m.username, m.password, m.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(address(sender)); err != nil {
		return err
	}
	for _, r := range msg.Recipients {
		if err := c.Rcpt(address(r)); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(compose(msg, sender)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// address is the bare address of "Name <addr>".
func address(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return s[i+1 : len(s)-1]
	}
	return s
}

// compose writes the message as pyramid_mailer does: Subject, From, To,
// a text/plain UTF-8 body (quoted-printable).
func compose(msg Message, sender string) []byte {
	var b strings.Builder
	header := func(name, value string) {
		b.WriteString(name + ": " + value + "\r\n")
	}
	header("Subject", mime.QEncoding.Encode("utf-8", msg.Subject))
	header("From", sender)
	header("To", strings.Join(msg.Recipients, ", "))
	header("Date", time.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+randomPart()+randomPart()+"@kintogo>")
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(msg.Body))
	qp.Close()
	return []byte(b.String())
}

func randomPart() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
