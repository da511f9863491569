package signer

import (
	"errors"
	"fmt"
	"strings"

	"kintogo/internal/contentsig"
)

// signers are the signers of the resources, by resource key (a resource
// of a collection of its own, or of a bucket), as the reference's
// registry.signers.
type signers struct {
	byKey map[string]contentsig.Signer
	list  []contentsig.Signer
}

func (s *signers) of(r *Resource) contentsig.Signer {
	if sg, ok := s.byKey[r.Source.uri()]; ok {
		return sg
	}
	return s.byKey["/buckets/"+r.Source.Bucket]
}

func (s *signers) all() []contentsig.Signer { return s.list }

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
	out := &signers{byKey: map[string]contentsig.Signer{}}
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
			x5u := get("ecdsa.x5u")
			id := path + "\x00" + x5u
			local, ok := keys[id]
			if !ok {
				key, err := contentsig.LoadPrivateKey(path)
				if err != nil {
					return nil, fmt.Errorf("signer.ecdsa.private_key: %w", err)
				}
				local = &contentsig.ECDSA{Key: key, X5U: x5u}
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
