package attachment

import (
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// extensionGroups are kinto-attachment's named groups of file extensions
// (attachment.extensions = "images+pdf", "default", "any").
var extensionGroups = func() map[string][]string {
	g := map[string][]string{
		"documents":   strings.Fields("pdf rtf odf ods gnumeric abw doc docx xls xlsx"),
		"text":        {"txt"},
		"images":      strings.Fields("jpg jpe jpeg png gif svg bmp tiff"),
		"audio":       strings.Fields("wav mp3 aac ogg oga flac"),
		"video":       strings.Fields("mpeg 3gp avi divx dvr flv mp4 wmv"),
		"data":        strings.Fields("csv ini json plist xml yaml yml"),
		"scripts":     strings.Fields("js php pl py rb sh"),
		"archives":    strings.Fields("gz bz2 zip tar tgz txz 7z"),
		"executables": strings.Fields("so exe dll"),
		"any":         nil,
	}
	for _, d := range []string{"documents", "text", "images", "data"} {
		g["default"] = append(g["default"], g[d]...)
	}
	return g
}()

// defaultMimetypes are kinto-attachment's overrides of the uploaded
// content type, by extension.
var defaultMimetypes = map[string]string{".pem": "application/x-pem-file", ".geojson": "application/geojson"}

// resolveExtensions parses an extensions setting into a set; empty means
// any extension.
func resolveExtensions(s string) map[string]bool {
	out := map[string]bool{}
	for _, group := range strings.Split(s, "+") {
		if exts, ok := extensionGroups[group]; ok {
			for _, e := range exts {
				out[e] = true
			}
			continue
		}
		for _, e := range strings.Fields(group) {
			out[strings.ToLower(e)] = true
		}
	}
	return out
}

// extension is the file name's extension with its dot (".pdf"), as
// Python's os.path.splitext finds it: a leading dot is part of the name.
func extension(name string) string {
	base := strings.TrimLeft(name, ".")
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		return base[i:]
	}
	return ""
}

func extensionAllowed(name string, allowed map[string]bool) bool {
	return len(allowed) == 0 || allowed[strings.ToLower(strings.TrimPrefix(extension(name), "."))]
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// secureFilename is werkzeug's secure_filename, as kinto-attachment uses
// it: ASCII letters, digits, "_", "." and "-" only, no path, no leading
// or trailing dots.
func secureFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	var ascii strings.Builder
	for _, r := range norm.NFKD.String(name) {
		if r < 128 {
			ascii.WriteRune(r)
		}
	}
	name = strings.Join(strings.Fields(strings.ReplaceAll(ascii.String(), "/", " ")), "_")
	return strings.Trim(unsafeChars.ReplaceAllString(name, ""), "._")
}

// storedName is the name a file is stored under: the secured name, or a
// random one with its extension, then the filename pattern
// ({datetime}, {rid}, {filename}).
func storedName(filename string, o options, recordID string, now time.Time) string {
	name := secureFilename(filename)
	if *o.randomize {
		name = uuid.NewString() + strings.ToLower(extension(name))
	}
	if o.filenamePattern != nil && *o.filenamePattern != "" {
		name = strings.NewReplacer("{datetime}", now.Format("20060102150405"), "{rid}", recordID, "{filename}", name).Replace(*o.filenamePattern)
		name = strings.Trim(unsafeChars.ReplaceAllString(name, ""), "._")
	}
	if name == "" {
		name = uuid.NewString()
	}
	return name
}

// folderOf expands the folder pattern for a record ({bucket_id},
// {collection_id}, {id}); ids are safe path segments (Kinto's id rules).
func folderOf(pattern, bid, cid, rid string) string {
	f := strings.NewReplacer("{bucket_id}", bid, "{collection_id}", cid, "{id}", rid).Replace(pattern)
	var parts []string
	for _, p := range strings.Split(f, "/") {
		if p = strings.Trim(unsafeChars.ReplaceAllString(p, ""), "."); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}
