package attachment

import (
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"kintogo/internal/config"
)

// settings are the plugin's, read once: kinto-attachment 9's
// `attachment.*` settings, with their per bucket and per collection
// overrides (`attachment.resources.{bid}[.{cid}].{name}`).
type settings struct {
	basePath     string
	baseURL      string // "": kintogo serves the files itself, under FilesPrefix
	extraBaseURL string // the capability's base_url, when set
	folder       string // a pattern of {bucket_id}, {collection_id}, {id}
	extensions   map[string]bool
	mimetypes    map[string]string // extension (".txt") -> mimetype
	maxUpload    int64             // kintogo's bound of an upload request
	bundles      bool              // build the bundles (bundles.go)
	bundleMax    int64             // the attachments' bytes of a zip bundle, at most
	global       options
	resources    map[string]options // bucket or collection URI -> overrides
}

// options are the settings a bucket or collection may override; nil
// fields are not overridden.
type options struct {
	randomize, keepOldFiles *bool
	filenamePattern         *string
	maxSizeBytes            *int64 // 0: no limit
}

// DefaultMaxUploadBytes bounds an upload request when
// attachment.max_upload_bytes is not set (kinto-attachment has no bound).
const DefaultMaxUploadBytes = 256 << 20

func readSettings(s *config.Settings) (*settings, error) {
	get := func(name string) (string, bool) {
		v, ok := s.Lookup("attachment." + name)
		return strings.TrimSpace(v), ok && strings.TrimSpace(v) != ""
	}
	st := &settings{resources: map[string]options{}, mimetypes: map[string]string{}}
	st.basePath, _ = get("base_path")
	if st.basePath == "" {
		// Beside the SQLite database, else in the working directory.
		st.basePath = "attachments"
		if s.StorageBackend() == config.SQLite {
			st.basePath = filepath.Join(filepath.Dir(s.String("storage_url")), "attachments")
		}
	}
	st.baseURL, _ = get("base_url")
	st.extraBaseURL, _ = get("extra.base_url")
	st.folder, _ = get("folder")
	ext, ok := get("extensions")
	if !ok {
		ext = "default"
	}
	st.extensions = resolveExtensions(ext)
	for ext, mt := range defaultMimetypes {
		st.mimetypes[ext] = mt
	}
	if conf, ok := get("mimetypes"); ok {
		for _, pair := range strings.Split(conf, ";") {
			ext, mt, ok := strings.Cut(strings.TrimSpace(pair), ":")
			if !ok || ext == "" || mt == "" {
				return nil, fmt.Errorf("attachment.mimetypes: %q is not .ext:type", pair)
			}
			st.mimetypes[strings.TrimSpace(ext)] = strings.TrimSpace(mt)
		}
	}
	st.maxUpload = DefaultMaxUploadBytes
	if v, ok := get("max_upload_bytes"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("attachment.max_upload_bytes: %q is not a positive integer", v)
		}
		st.maxUpload = n
	}
	st.bundles = true
	if v, ok := get("bundles"); ok {
		b, err := config.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("attachment.bundles: %w", err)
		}
		st.bundles = b
	}
	st.bundleMax = DefaultBundleMaxSize
	if v, ok := get("bundle_max_size_bytes"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("attachment.bundle_max_size_bytes: %q is not a size in bytes", v)
		}
		st.bundleMax = n
	}
	// Kinto's defaults: randomized names, old files deleted, no limit.
	yes, no := true, false
	st.global = options{randomize: &yes, keepOldFiles: &no}
	for _, name := range s.Names() {
		rest, ok := strings.CutPrefix(name, "attachment.")
		if !ok {
			continue
		}
		value, _ := s.Lookup(name)
		value = strings.TrimSpace(value)
		if res, ok := strings.CutPrefix(rest, "resources."); ok {
			parts := strings.Split(res, ".")
			var uri, opt string
			switch len(parts) {
			case 3:
				uri, opt = "/buckets/"+parts[0]+"/collections/"+parts[1], parts[2]
			case 2:
				uri, opt = "/buckets/"+parts[0], parts[1]
			default:
				return nil, fmt.Errorf("configuration rule malformed: `%s`", "kinto."+name)
			}
			o := st.resources[uri]
			if err := o.set(opt, value, name); err != nil {
				return nil, err
			}
			st.resources[uri] = o
			continue
		}
		switch rest {
		case "randomize", "keep_old_files", "filename_pattern", "max_size_bytes":
			if err := st.global.set(rest, value, name); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

func (o *options) set(name, value, setting string) error {
	switch name {
	case "randomize", "keep_old_files":
		b, err := config.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %w", setting, err)
		}
		if name == "randomize" {
			o.randomize = &b
		} else {
			o.keepOldFiles = &b
		}
	case "filename_pattern":
		o.filenamePattern = &value
	case "max_size_bytes":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: %q is not a size in bytes", setting, value)
		}
		o.maxSizeBytes = &n
	default:
		return fmt.Errorf("`%s` is not a supported setting name. Read `kinto.%s`", name, setting)
	}
	return nil
}

// effective is what applies to a collection: its overrides, else its
// bucket's, else the global settings.
func (st *settings) effective(bid, cid string) options {
	o := st.global
	for _, uri := range []string{"/buckets/" + bid, "/buckets/" + bid + "/collections/" + cid} {
		r, ok := st.resources[uri]
		if !ok {
			continue
		}
		if r.randomize != nil {
			o.randomize = r.randomize
		}
		if r.keepOldFiles != nil {
			o.keepOldFiles = r.keepOldFiles
		}
		if r.filenamePattern != nil {
			o.filenamePattern = r.filenamePattern
		}
		if r.maxSizeBytes != nil {
			o.maxSizeBytes = r.maxSizeBytes
		}
	}
	return o
}

// keepOld reports whether replaced and deleted files of a collection are
// kept.
func (st *settings) keepOld(bid, cid string) bool {
	return *st.effective(bid, cid).keepOldFiles
}

// nameOf is the stored file a location designates (location's
// inverse); ok is false for a location elsewhere.
func (st *settings) nameOf(location string) (string, bool) {
	name := location
	if st.baseURL != "" {
		var ok bool
		if name, ok = strings.CutPrefix(location, st.location("")); !ok {
			return "", false
		}
	}
	if name == "" || !fs.ValidPath(name) || strings.HasPrefix(name, ".") || strings.Contains(name, "/.") {
		return "", false
	}
	return name, true
}

// location is a stored file's URL: resolved against base_url as
// kinto-attachment's urljoin does, relative to the capability's base_url
// when none is set.
func (st *settings) location(name string) string {
	if st.baseURL == "" {
		return name
	}
	base, err := url.Parse(st.baseURL)
	if err != nil {
		return st.baseURL + name
	}
	return base.ResolveReference(&url.URL{Path: name}).String()
}
