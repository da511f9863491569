package signer

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"kintogo/internal/contentsig"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// ResignOptions say which signatures Resign makes again.
type ResignOptions struct {
	All    bool          // every one
	Within time.Duration // those whose chain expires within it
	Now    time.Time
	// Fetch reads the certificates of an x5u (a chain kintogo does not
	// serve itself).
	Fetch func(ctx context.Context, url string) ([]*x509.Certificate, error)
}

// Resign signs again the previews and destinations of h's
// signer.resources whose signature was made with another certificate
// chain than their signer's current one, or with one expiring within
// opts.Within, and reports each; it returns how many it signed. Records
// and their timestamps do not change.
func Resign(ctx context.Context, h *httpapi.Server, opts ResignOptions, report func(uri, why string)) (int, error) {
	st, err := readSettings(h.Settings())
	if err != nil {
		return 0, err
	}
	sg, err := loadSigners(st)
	if err != nil {
		return 0, err
	}
	p := &plugin{h: h, st: st, signers: sg, log: h.Logger(), self: resource.PluginCaller(UserID)}
	type target struct {
		r   *Resource
		loc Location
	}
	var targets []target
	err = h.Engine().Store().View(ctx, func(tx storage.Tx) error {
		targets = nil
		for _, r := range st.resources {
			if !r.perBucket() {
				if r.HasPreview {
					targets = append(targets, target{r, r.Preview})
				}
				targets = append(targets, target{r, r.Destination})
				continue
			}
			// The signed collections of a per-bucket resource are in its
			// preview and destination buckets (their sources may be gone).
			buckets := []string{r.Destination.Bucket}
			if r.HasPreview {
				buckets = []string{r.Preview.Bucket, r.Destination.Bucket}
			}
			for _, b := range buckets {
				colls, err := tx.List(ctx, model.Path{Kind: model.Collection, BucketID: b}.Scope(), storage.ListOptions{})
				if err != nil {
					return err
				}
				for _, c := range colls {
					rc := r.forCollection(c.ID)
					if _, own := st.byKey[rc.key()]; own || st.explicitTarget(Location{Bucket: b, Collection: c.ID}) {
						continue // a resource of its own has its turn
					}
					targets = append(targets, target{rc, Location{Bucket: b, Collection: c.ID}})
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range targets {
		why, err := p.resignReason(ctx, t.r, t.loc, opts)
		if err != nil {
			return n, fmt.Errorf("%s: %w", t.loc.uri(), err)
		}
		if why == "" {
			continue
		}
		_, err = resource.Write(ctx, h.Engine(), func(u *resource.Unit) (struct{}, error) {
			pub := &publisher{p: p, u: u, r: t.r, c: p.self, ctx: ctx}
			return struct{}{}, pub.refresh(t.loc, t.r.Source, "")
		})
		if err != nil {
			return n, fmt.Errorf("%s: %w", t.loc.uri(), err)
		}
		report(t.loc.uri(), why)
		n++
	}
	return n, nil
}

// resignReason says why a signed collection needs a new signature, ""
// when it does not (or has none: it was never signed).
func (p *plugin) resignReason(ctx context.Context, r *Resource, l Location, opts ResignOptions) (string, error) {
	var coll *storage.Object
	err := p.h.Engine().Store().View(ctx, func(tx storage.Tx) error {
		var err error
		coll, err = tx.Get(ctx, l.collectionPath().Scope(), l.Collection)
		return err
	})
	if kerr.Is(err, kerr.NotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sig, _ := coll.Data["signature"].(map[string]any)
	if sig == nil {
		return "", nil
	}
	if opts.All {
		return "all", nil
	}
	x5u, _ := sig["x5u"].(string)
	if local, ok := p.signer(r).(*contentsig.ECDSA); ok && local.X5U != x5u {
		return "signed with another certificate chain", nil
	}
	if x5u == "" {
		return "", nil
	}
	var certs []*x509.Certificate
	for _, ch := range p.signers.chains {
		if ch.url == x5u {
			certs = ch.certs
		}
	}
	if certs == nil {
		if opts.Fetch == nil {
			return "", nil
		}
		if certs, err = opts.Fetch(ctx, x5u); err != nil {
			return "", err
		}
	}
	if left := certs[0].NotAfter.Sub(opts.Now); left < opts.Within {
		return "its certificate expires on " + certs[0].NotAfter.UTC().Format(time.RFC3339), nil
	}
	return "", nil
}
