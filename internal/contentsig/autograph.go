package contentsig

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AutographConfig is how to reach an Autograph server (the reference's
// signer.autograph.* settings).
type AutographConfig struct {
	ServerURL  string
	HawkID     string
	HawkSecret string
	KeyIDs     []string // default: remote-settings
	Client     *http.Client
}

// Autograph signs with an Autograph server's /sign/data endpoint, one
// signature per key id, as the reference's autograph backend.
type Autograph struct {
	cfg    AutographConfig
	client *http.Client
	url    string
}

// NewAutograph checks the configuration and returns the signer.
func NewAutograph(cfg AutographConfig) (*Autograph, error) {
	u, err := url.Parse(cfg.ServerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server_url %q is not an http(s) URL", cfg.ServerURL)
	}
	if cfg.HawkID == "" || cfg.HawkSecret == "" {
		return nil, errors.New("hawk_id and hawk_secret are needed")
	}
	if len(cfg.KeyIDs) == 0 {
		cfg.KeyIDs = []string{"remote-settings"}
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Autograph{cfg: cfg, client: client, url: u.ResolveReference(&url.URL{Path: "/sign/data"}).String()}, nil
}

// signatureFields are what a signature must carry, and extraFields what
// it may (both kept, as the reference keeps them).
var (
	signatureFields = []string{"signature", "x5u"}
	extraFields     = []string{"mode", "public_key", "type", "signer_id", "ref"}
)

// Sign asks Autograph for a signature of payload with each key id.
func (a *Autograph) Sign(ctx context.Context, payload []byte) ([]Signature, error) {
	var out []Signature
	for _, keyID := range a.cfg.KeyIDs {
		body, _ := json.Marshal([]map[string]string{{"input": base64.StdEncoding.EncodeToString(payload), "keyid": keyID}})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		auth, err := HawkHeader(a.cfg.HawkID, a.cfg.HawkSecret, req.Method, req.URL, "application/json", body, time.Now())
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", auth)
		resp, err := a.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("autograph: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("autograph: %w", err)
		}
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("autograph: %s: %.200s", resp.Status, raw)
		}
		var bundles []map[string]any
		if err := json.Unmarshal(raw, &bundles); err != nil || len(bundles) == 0 {
			return nil, fmt.Errorf("autograph: unexpected answer %.200q", raw)
		}
		sig := Signature{}
		for _, f := range signatureFields {
			v, ok := bundles[0][f]
			if !ok {
				return nil, fmt.Errorf("autograph: the answer has no %q", f)
			}
			sig[f] = v
		}
		for _, f := range extraFields {
			if v, ok := bundles[0][f]; ok {
				sig[f] = v
			}
		}
		out = append(out, sig)
	}
	return out, nil
}

// HawkHeader returns the Authorization header of a Hawk request (Hawk
// 1.1, SHA-256, with the payload hash, as requests-hawk sends it to
// Autograph). No Hawk library is served to kintogo's builds; the scheme
// is the few lines below.
func HawkHeader(id, key, method string, u *url.URL, contentType string, payload []byte, now time.Time) (string, error) {
	nonce := make([]byte, 6)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	n := base64.RawURLEncoding.EncodeToString(nonce)
	hash := HawkPayloadHash(contentType, payload)
	mac := HawkMAC(key, ts, n, method, u, hash)
	return fmt.Sprintf(`Hawk id="%s", ts="%s", nonce="%s", hash="%s", mac="%s"`, id, ts, n, hash, mac), nil
}

// HawkPayloadHash is the hash of a request body in Hawk.
func HawkPayloadHash(contentType string, payload []byte) string {
	ct, _, _ := strings.Cut(contentType, ";")
	h := sha256.New()
	fmt.Fprintf(h, "hawk.1.payload\n%s\n", strings.ToLower(strings.TrimSpace(ct)))
	h.Write(payload)
	h.Write([]byte("\n"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// HawkMAC is the MAC of a Hawk request header.
func HawkMAC(key, ts, nonce, method string, u *url.URL, hash string) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	if h, p, err := net.SplitHostPort(u.Host); err == nil {
		host, port = h, p
	}
	normalized := strings.Join([]string{"hawk.1.header", ts, nonce, strings.ToUpper(method), u.RequestURI(),
		strings.ToLower(host), port, hash, ""}, "\n") + "\n"
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(normalized))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
