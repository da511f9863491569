// Package autographtest is a small Autograph-compatible signing server for
// tests: POST /sign/data with Hawk authentication (SHA-256, payload hash
// checked, timestamps within a minute, nonces used once), answering
// content signatures as Autograph does. It signs with a P-384 key (or, in
// Fixed mode, answers one constant signature, for recordings whose answers
// must not vary) and serves its x5u chain at /x5u/chain.pem.
package autographtest

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"kintogo/internal/contentsig"
)

// Server is the test Autograph.
type Server struct {
	// Credentials are the Hawk ids and their keys.
	Credentials map[string]string
	// Key signs, and Chain (PEM, leaf first) is served at /x5u/chain.pem;
	// X5U is the URL put in signatures.
	Key   *ecdsa.PrivateKey
	Chain []byte
	X5U   string
	// Fixed, when not "", is the signature of every answer.
	Fixed string
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time
	// Requests counts the signing requests answered, by Hawk id.
	Requests map[string]int
}

var hawkParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/x5u/chain.pem":
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(s.Chain)
	case r.Method == http.MethodGet && r.URL.Path == "/__heartbeat__":
		w.Write([]byte(`{"status": true}`))
	case r.Method == http.MethodPost && r.URL.Path == "/sign/data":
		s.sign(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) sign(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	id, err := s.authenticate(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var inputs []struct {
		Input string `json:"input"`
		KeyID string `json:"keyid"`
	}
	if err := json.Unmarshal(body, &inputs); err != nil || len(inputs) == 0 {
		http.Error(w, "expected a list of signing requests", http.StatusBadRequest)
		return
	}
	var out []map[string]any
	for i, in := range inputs {
		payload, err := base64.StdEncoding.DecodeString(in.Input)
		if err != nil {
			http.Error(w, "input is not base64", http.StatusBadRequest)
			return
		}
		sig := s.Fixed
		if sig == "" {
			if sig, err = contentsig.SignRaw(s.Key, payload); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		keyID := in.KeyID
		if keyID == "" {
			keyID = "remote-settings"
		}
		out = append(out, map[string]any{
			"ref": fmt.Sprintf("ref-%d", i), "type": "contentsignature", "mode": "p384ecdsa",
			"signer_id": keyID, "public_key": "", "signature": sig, "x5u": s.X5U,
		})
	}
	s.mu.Lock()
	if s.Requests == nil {
		s.Requests = map[string]int{}
	}
	s.Requests[id]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// authenticate checks a Hawk header as Autograph does, and returns its id.
func (s *Server) authenticate(r *http.Request, body []byte) (string, error) {
	h := r.Header.Get("Authorization")
	if len(h) < 5 || h[:5] != "Hawk " {
		return "", fmt.Errorf("no Hawk authorization")
	}
	params := map[string]string{}
	for _, m := range hawkParam.FindAllStringSubmatch(h[5:], -1) {
		params[m[1]] = m[2]
	}
	key, ok := s.Credentials[params["id"]]
	if !ok {
		return "", fmt.Errorf("unknown Hawk id")
	}
	ts, err := strconv.ParseInt(params["ts"], 10, 64)
	if err != nil || s.now().Sub(time.Unix(ts, 0)).Abs() > time.Minute {
		return "", fmt.Errorf("stale Hawk timestamp")
	}
	if params["hash"] != contentsig.HawkPayloadHash(r.Header.Get("Content-Type"), body) {
		return "", fmt.Errorf("the payload hash does not match")
	}
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	want := contentsig.HawkMAC(key, params["ts"], params["nonce"], r.Method, u, params["hash"])
	if !hmac.Equal([]byte(want), []byte(params["mac"])) {
		return "", fmt.Errorf("bad Hawk MAC")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]time.Time{}
	}
	if _, seen := s.nonces[params["nonce"]]; seen {
		return "", fmt.Errorf("replayed Hawk nonce")
	}
	s.nonces[params["nonce"]] = s.now()
	for n, at := range s.nonces {
		if s.now().Sub(at) > 2*time.Minute {
			delete(s.nonces, n)
		}
	}
	return params["id"], nil
}
