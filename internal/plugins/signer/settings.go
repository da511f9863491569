package signer

import (
	"crypto/x509"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/model"
)

// Location is a bucket, or a collection of it.
type Location struct {
	Bucket     string
	Collection string // "" in a per-bucket resource
}

func (l Location) bucketPath() model.Path { return model.Path{Kind: model.Bucket, ID: l.Bucket} }

func (l Location) collectionPath() model.Path {
	return model.Path{Kind: model.Collection, BucketID: l.Bucket, ID: l.Collection}
}

func (l Location) recordsPath() model.Path {
	return model.Path{Kind: model.Record, BucketID: l.Bucket, CollectionID: l.Collection}
}

func (l Location) uri() string {
	if l.Collection == "" {
		return "/buckets/" + l.Bucket
	}
	return "/buckets/" + l.Bucket + "/collections/" + l.Collection
}

// capability is the location as the signer capability shows it.
func (l Location) capability() map[string]any {
	out := map[string]any{"bucket": l.Bucket, "collection": nil}
	if l.Collection != "" {
		out["collection"] = l.Collection
	}
	return out
}

// Resource is one line of signer.resources: edits in Source are copied
// to Preview (when there is one) on review requests and to Destination
// on approval, each copy signed. A per-bucket resource applies to every
// collection of its source bucket, of the same name in the others.
type Resource struct {
	Source, Preview, Destination Location
	HasPreview                   bool
	// settings are the settings given for this very collection of a
	// per-bucket resource (signer.{bid}.{cid}.NAME), which made it a
	// resource of its own.
	settings map[string]string
}

// forCollection returns a per-bucket resource as it applies to one
// collection of its source bucket.
func (r *Resource) forCollection(cid string) *Resource {
	c := *r
	c.Source.Collection, c.Destination.Collection = cid, cid
	if c.HasPreview {
		c.Preview.Collection = cid
	}
	return &c
}

func (r *Resource) perBucket() bool { return r.Source.Collection == "" }

// key is the resource's key in signer.resources: its source URI.
func (r *Resource) key() string { return r.Source.uri() }

// parseResources reads signer.resources as the reference does: one
// resource per line, `source -> [preview ->] destination` (or separated
// by `;`), all bucket URIs or all collection URIs, none repeated.
func parseResources(raw string) ([]*Resource, error) {
	var out []*Resource
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		malformed := func(why string) error {
			return fmt.Errorf("Malformed resource: %s (in %q). See kinto-remote-settings README.", why, line)
		}
		if !strings.Contains(line, "->") && !strings.Contains(line, ";") {
			return nil, malformed("not separated with '->'")
		}
		parts := strings.Fields(strings.NewReplacer(";", " ", "->", " ").Replace(line))
		if len(parts) != 2 && len(parts) != 3 {
			return nil, malformed("should be a pair or a triplet")
		}
		locs := make([]Location, len(parts))
		for i, p := range parts {
			l, err := parseLocation(p)
			if err != nil {
				return nil, malformed(err.Error())
			}
			locs[i] = l
		}
		r := &Resource{Source: locs[0], Destination: locs[len(locs)-1]}
		if len(locs) == 3 {
			r.Preview, r.HasPreview = locs[1], true
		}
		perBucket := 0
		for _, l := range locs {
			if l.Collection == "" {
				perBucket++
			}
		}
		if perBucket != 0 && perBucket != len(locs) {
			return nil, malformed("cannot mix bucket and collection URIs")
		}
		distinct := map[Location]bool{}
		for _, l := range locs {
			distinct[l] = true
		}
		if len(distinct) != len(locs) {
			return nil, malformed("cannot have same value for source,  preview or destination")
		}
		if seen[r.key()] {
			return nil, malformed("cannot repeat resource")
		}
		seen[r.key()] = true
		out = append(out, r)
	}
	sources, previews, destinations := map[Location]bool{}, map[Location]bool{}, map[Location]bool{}
	for _, r := range out {
		if destinations[r.Destination] {
			return nil, fmt.Errorf("Resources setting has repeated destination URI")
		}
		destinations[r.Destination] = true
		if r.HasPreview {
			if previews[r.Preview] {
				return nil, fmt.Errorf("Resources setting has repeated preview URI")
			}
			previews[r.Preview] = true
		}
		sources[r.Source] = true
	}
	for l := range sources {
		if previews[l] || destinations[l] {
			return nil, fmt.Errorf("cannot repeat URIs across resources")
		}
	}
	for l := range destinations {
		if previews[l] {
			return nil, fmt.Errorf("cannot repeat URIs across resources")
		}
	}
	return out, nil
}

// parseLocation reads `/buckets/b`, `/buckets/b/collections/c` or `b/c`.
func parseLocation(s string) (Location, error) {
	parts := strings.Split(s, "/")
	var l Location
	switch {
	case len(parts) == 2:
		l = Location{Bucket: parts[0], Collection: parts[1]}
	case len(parts) == 3 && parts[0] == "" && parts[1] == "buckets":
		l = Location{Bucket: parts[2]}
	case len(parts) == 5 && parts[0] == "" && parts[1] == "buckets" && parts[3] == "collections":
		l = Location{Bucket: parts[2], Collection: parts[4]}
	default:
		return l, fmt.Errorf("should be a bucket or collection URI")
	}
	if !model.Bucket.ValidID(l.Bucket) || (l.Collection != "" && !model.Collection.ValidID(l.Collection)) {
		return l, fmt.Errorf("bucket or collection id is invalid")
	}
	return l, nil
}

// settings are the signer's settings, read once.
type settings struct {
	s         *config.Settings
	resources []*Resource          // signer.resources, then the collections given settings of their own
	byKey     map[string]*Resource // by source URI
	// globs are the settings whose bucket or collection is a regular
	// expression (signer.{bid-re}.{cid-re}.to_review_enabled), in order.
	globs []globSetting

	toReviewEnabled      bool
	editorsGroup         string // with {collection_id}
	reviewersGroup       string
	allowFloats          bool
	autoCreate           bool
	autoCreatePrincipals []string
	hardDelete           bool
	// destinationWriters may write previews and destinations directly
	// (signer.destination_writers); nobody else but the signer may.
	destinationWriters []string
}

type globSetting struct {
	bucket, collection *regexp.Regexp
	value              string
}

// globbedSetting is the one setting patterns may give, as in the
// reference.
const globbedSetting = "to_review_enabled"

// lookup is the reference's get_first_matching_setting: the first of
// prefix+name that is set, in the environment (KINTO_SIGNER_…) or the
// settings.
func (st *settings) lookup(name string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if v, ok := st.s.LookupEnv(p + name); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

var defaults = map[string]string{
	"allow_floats":                               "false",
	"auto_create_resources":                      "false",
	"auto_create_resources_principals":           "system.Authenticated",
	"resources":                                  "/buckets/main-workspace -> /buckets/main-preview -> /buckets/main",
	"to_review_enabled":                          "false",
	"hard_delete_destination_on_source_deletion": "false",
	"editors_group":                              "{collection_id}-editors",
	"reviewers_group":                            "{collection_id}-reviewers",
}

func (st *settings) global(name string) string {
	if v, ok := st.lookup(name, []string{"signer."}); ok {
		return v
	}
	return defaults[name]
}

func readSettings(s *config.Settings) (*settings, error) {
	st := &settings{s: s, byKey: map[string]*Resource{}}
	var err error
	if st.resources, err = parseResources(st.global("resources")); err != nil {
		return nil, err
	}
	for _, r := range st.resources {
		st.byKey[r.key()] = r
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"to_review_enabled", &st.toReviewEnabled},
		{"allow_floats", &st.allowFloats},
		{"auto_create_resources", &st.autoCreate},
		{"hard_delete_destination_on_source_deletion", &st.hardDelete},
	} {
		*b.dst = config.AsBool(st.global(b.name))
	}
	st.editorsGroup, st.reviewersGroup = st.global("editors_group"), st.global("reviewers_group")
	st.autoCreatePrincipals = strings.Fields(st.global("auto_create_resources_principals"))
	st.destinationWriters = strings.Fields(st.global("destination_writers"))

	// Collections of per-bucket resources with settings of their own
	// become resources of their own (signer.{bid}.{cid}.NAME), and
	// settings with patterns apply to the collections they match.
	names := s.Names()
	sort.Strings(names)
	perBucket := append([]*Resource(nil), st.resources...)
	for _, r := range perBucket {
		if !r.perBucket() {
			continue
		}
		prefix := "signer." + r.Source.Bucket + "."
		for _, name := range names {
			rest, ok := strings.CutPrefix(name, prefix)
			if !ok {
				continue
			}
			cid, setting, ok := strings.Cut(rest, ".")
			if !ok || cid == "autograph" || cid == "ecdsa" || setting == "" {
				continue
			}
			value, _ := s.LookupEnv(name)
			if strings.Contains(cid, "(") {
				continue
			}
			key := "/buckets/" + r.Source.Bucket + "/collections/" + cid
			specific, ok := st.byKey[key]
			if !ok {
				specific = r.forCollection(cid)
				specific.settings = map[string]string{}
				st.byKey[key] = specific
				st.resources = append(st.resources, specific)
			}
			if specific.settings != nil {
				specific.settings[setting] = strings.TrimSpace(value)
			}
		}
	}
	for _, name := range names {
		tokens := strings.Split(name, ".")
		if len(tokens) != 4 || tokens[0] != "signer" || tokens[3] != globbedSetting || !strings.Contains(name, "(") {
			continue
		}
		b, err1 := regexp.Compile("^(?:" + tokens[1] + ")$")
		c, err2 := regexp.Compile("^(?:" + tokens[2] + ")$")
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: not a regular expression", name)
		}
		value, _ := s.LookupEnv(name)
		st.globs = append(st.globs, globSetting{bucket: b, collection: c, value: strings.TrimSpace(value)})
	}
	return st, nil
}

// pick returns the resource that applies to a source collection, nil when
// none: the collection's own, else its bucket's.
func (st *settings) pick(bid, cid string) *Resource {
	if r, ok := st.byKey["/buckets/"+bid+"/collections/"+cid]; ok {
		return r
	}
	if r, ok := st.byKey["/buckets/"+bid]; ok {
		return r.forCollection(cid)
	}
	return nil
}

// reserved reports whether the object at p is the signer's own: a preview
// or destination collection (any collection of a per-bucket resource's
// preview or destination bucket), its records, or such a bucket itself
// (unless it is also a source bucket). What is published changes only
// through the workflow.
func (st *settings) reserved(p model.Path) bool {
	if p.Kind == model.Group || p.Kind == model.Account {
		return false
	}
	bid, cid := p.In()
	for _, r := range st.resources {
		for _, l := range []Location{r.Preview, r.Destination} {
			if l.Bucket != bid || l == r.Source || l.Bucket == "" {
				continue
			}
			if cid == "" {
				// A bucket: reserved only when all of it is published.
				if l.Collection == "" && st.byKey["/buckets/"+bid] == nil {
					return true
				}
				continue
			}
			if l.Collection == "" || l.Collection == cid {
				return true
			}
		}
	}
	return false
}

// setting returns a setting of a resource applied to a collection: the
// collection's own (signer.{bid}.{cid}.NAME, or a matching pattern), its
// bucket's (signer.{bid}.NAME), else the server's (signer.NAME).
func (st *settings) setting(r *Resource, name string) (string, bool) {
	bid, cid := r.Source.Bucket, r.Source.Collection
	if v, ok := r.settings[name]; ok {
		return v, true
	}
	if cid != "" {
		// The collection's own, under its current and deprecated names.
		if v, ok := st.lookup(name, []string{"signer." + bid + "." + cid + ".", "signer." + bid + "_" + cid + "."}); ok {
			return v, true
		}
		if name == globbedSetting {
			if v, ok := st.globbed(bid, cid); ok {
				return v, true
			}
		}
	}
	return st.lookup(name, []string{"signer." + bid + ".", "signer."})
}

// explicitTarget tells whether a collection is the preview or destination
// of a resource of collections.
func (st *settings) explicitTarget(l Location) bool {
	for _, r := range st.resources {
		if !r.perBucket() && (r.Destination == l || r.HasPreview && r.Preview == l) {
			return true
		}
	}
	return false
}

// globbedBucket tells whether a pattern setting may name collections of
// the bucket; globbed returns the value of the first that names this
// collection.
func (st *settings) globbedBucket(bid string) bool {
	for _, g := range st.globs {
		if g.bucket.MatchString(bid) {
			return true
		}
	}
	return false
}

func (st *settings) globbed(bid, cid string) (string, bool) {
	for _, g := range st.globs {
		if g.bucket.MatchString(bid) && g.collection.MatchString(cid) {
			return g.value, true
		}
	}
	return "", false
}

// reviewEnabled tells whether a resource's collection needs a review.
func (st *settings) reviewEnabled(r *Resource) bool {
	if v, ok := st.setting(r, "to_review_enabled"); ok {
		return config.AsBool(v)
	}
	return st.toReviewEnabled
}

// groups returns the editors and reviewers groups of a source collection.
func (st *settings) groups(r *Resource) (editors, reviewers string) {
	cid := r.Source.Collection
	return strings.ReplaceAll(st.editorsGroup, "{collection_id}", cid), strings.ReplaceAll(st.reviewersGroup, "{collection_id}", cid)
}

// expiresSoon tells how many days a certificate has left, and whether
// that is within the alert threshold: signer.heartbeat_certificate_
// percentage_remaining_validity (5) of its lifetime, bounded by
// _min_remaining_days (10) and _max_remaining_days (30).
func (st *settings) expiresSoon(cert *x509.Certificate, now time.Time) (int, bool) {
	num := func(name string, def float64) float64 {
		if v, ok := st.lookup(name, []string{"signer."}); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
		return def
	}
	left := int(cert.NotAfter.Sub(now).Hours() / 24)
	lifespan := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24
	minimum := lifespan * num("heartbeat_certificate_percentage_remaining_validity", 5) / 100
	minimum = math.Min(num("heartbeat_certificate_max_remaining_days", 30), math.Max(num("heartbeat_certificate_min_remaining_days", 10), minimum))
	return left, float64(left) <= math.Floor(minimum)
}
