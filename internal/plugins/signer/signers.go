package signer

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"kintogo/internal/contentsig"
)

// signers are the signers of the resources, by resource key (a resource
// of a collection of its own, or of a bucket), as the reference's
// registry.signers.
type signers struct {
	byKey map[string]contentsig.Signer
	list  []contentsig.Signer
	// chains are the certificate chains kintogo serves, by file name
	// under ChainsPrefix.
	chains map[string]*chain
}

// ChainsPrefix is where kintogo serves the certificate chains of its
// local signers: their x5u.
const ChainsPrefix = "/v1/__signer__/chains/"

// chain is a served certificate chain.
type chain struct {
	pem   []byte
	certs []*x509.Certificate
	url   string
}

// serveChain reads a chain, checks that its leaf is the key's, and names
// its URL: x5u when set, else under ChainsPrefix on http_host.
func (s *signers) serveChain(st *settings, path string, key *ecdsa.PrivateKey, x5u string) (*chain, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := contentsig.ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	if pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the chain's first certificate is not the private key's")
	}
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:8]) + ".pem"
	if x5u == "" {
		host := st.s.String("http_host")
		if host == "" {
			return nil, errors.New("kintogo serves the chain under " + ChainsPrefix + ": set kinto.http_host (its public host) or signer.ecdsa.x5u (its URL)")
		}
		scheme := st.s.String("http_scheme")
		if scheme == "" {
			scheme = "http"
		}
		x5u = scheme + "://" + host + ChainsPrefix + name
	}
	ch := &chain{pem: data, certs: certs, url: x5u}
	s.chains[name] = ch
	return ch, nil
}

func (s *signers) of(r *Resource) contentsig.Signer {
	if sg, ok := s.byKey[r.Source.uri()]; ok {
		return sg
	}
	return s.byKey["/buckets/"+r.Source.Bucket]
}

// Backends, by the dotted names signer.signer_backend takes.
const (
	backendLocal     = "kinto_remote_settings.signer.backends.local_ecdsa"
	backendAutograph = "kinto_remote_settings.signer.backends.autograph"
)

var backendAliases = map[string]string{
	backendLocal:                      backendLocal,
	"kinto_signer.signer.local_ecdsa": backendLocal,
	backendAutograph:                  backendAutograph,
	"kinto_signer.signer.autograph":   backendAutograph,
}

// loadSigners builds the signer of every resource from its settings
// (signer_backend, ecdsa.private_key, autograph.*, looked up from the
// collection's own to the server's).
func loadSigners(st *settings) (*signers, error) {
	out := &signers{byKey: map[string]contentsig.Signer{}, chains: map[string]*chain{}}
	keys := map[string]*contentsig.ECDSA{} // one load per key file
	for _, r := range st.resources {
		get := func(name string) string { v, _ := st.setting(r, name); return v }
		backend := get("signer_backend")
		if backend == "" {
			backend = backendLocal
		}
		kind, ok := backendAliases[backend]
		if !ok {
			return nil, fmt.Errorf("signer.signer_backend: unknown backend %q (kintogo provides %s and %s)", backend, backendLocal, backendAutograph)
		}
		var sg contentsig.Signer
		switch kind {
		case backendLocal:
			path := get("ecdsa.private_key")
			if path == "" {
				if get("ecdsa.public_key") != "" {
					return nil, errors.New("signer.ecdsa.public_key alone cannot sign: kintogo needs signer.ecdsa.private_key")
				}
				return nil, errors.New("Please specify either kinto.signer.ecdsa.private_key or kinto.signer.ecdsa.public_key in the settings.")
			}
			chainPath := get("ecdsa.certificate_chain")
			id := path + "\x00" + chainPath + "\x00" + get("ecdsa.x5u")
			local, ok := keys[id]
			if !ok {
				key, err := contentsig.LoadPrivateKey(path)
				if err != nil {
					return nil, fmt.Errorf("signer.ecdsa.private_key: %w", err)
				}
				local = &contentsig.ECDSA{Key: key, X5U: get("ecdsa.x5u")}
				if chainPath != "" {
					ch, err := out.serveChain(st, chainPath, key, local.X5U)
					if err != nil {
						return nil, fmt.Errorf("signer.ecdsa.certificate_chain: %w", err)
					}
					local.X5U = ch.url
				}
				keys[id] = local
				out.list = append(out.list, local)
			}
			sg = local
		case backendAutograph:
			a, err := contentsig.NewAutograph(contentsig.AutographConfig{
				ServerURL:  get("autograph.server_url"),
				HawkID:     get("autograph.hawk_id"),
				HawkSecret: get("autograph.hawk_secret"),
				KeyIDs:     strings.Fields(get("autograph.key_ids")),
			})
			if err != nil {
				return nil, fmt.Errorf("signer.autograph: %w", err)
			}
			sg = a
			out.list = append(out.list, a)
		}
		out.byKey[r.key()] = sg
	}
	return out, nil
}
