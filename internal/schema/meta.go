package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// metaFS holds raw meta-schemas (see metaschemas/README.md): messages
// quote values of the schema an error comes from, which may be a
// meta-schema, and follow the key order of meta-schemas, which Python
// iterates in document order.
//
//go:embed metaschemas
var metaFS embed.FS

// A doc is a raw JSON document; order, when known, gives the position of
// every key of every object, by JSON pointer.
type doc struct {
	value any
	order map[string]map[string]int
}

var metaDocs = sync.OnceValue(func() map[string]*doc {
	docs := map[string]*doc{}
	err := fs.WalkDir(metaFS, "metaschemas/json-schema.org", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := metaFS.ReadFile(path)
		if err != nil {
			return err
		}
		parsed, err := parseOrdered(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		docs[strings.TrimPrefix(path, "metaschemas/")] = parsed
		return nil
	})
	if err != nil {
		panic(err) // embedded files: a build defect
	}
	return docs
})

// metaDoc returns the raw document of a json-schema.org URL.
func metaDoc(u string) *doc {
	u, _, _ = strings.Cut(u, "#")
	rest, ok := strings.CutPrefix(u, "http://json-schema.org/")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://json-schema.org/"); !ok {
			return nil
		}
	}
	if rest == "schema" {
		rest = "draft/2020-12/schema"
	}
	return metaDocs()["json-schema.org/"+rest]
}

// parseOrdered decodes JSON (numbers as json.Number) and records the key
// order of its objects.
func parseOrdered(data []byte) (*doc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	d := &doc{order: map[string]map[string]int{}}
	v, err := d.parse(dec, "")
	if err != nil {
		return nil, err
	}
	d.value = v
	return d, nil
}

func (d *doc) parse(dec *json.Decoder, ptr string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		keys := map[string]int{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			keys[k] = len(keys)
			if m[k], err = d.parse(dec, ptr+"/"+escapeToken(k)); err != nil {
				return nil, err
			}
		}
		d.order[ptr] = keys
		_, err := dec.Token()
		return m, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			v, err := d.parse(dec, ptr+"/"+strconv.Itoa(len(list)))
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return tok, nil
}

// A loc is a schema location: a document URL and the tokens of a JSON
// pointer in it, as the library's Location and SchemaURL spell them
// ("url#/properties/a%20b", tokens path-escaped, then ~-escaped).
type loc struct {
	doc  string
	toks []string
}

func parseLoc(s string) loc {
	u, frag, _ := strings.Cut(s, "#")
	l := loc{doc: u}
	if frag == "" {
		return l
	}
	for _, t := range strings.Split(frag, "/")[1:] {
		if un, err := url.PathUnescape(t); err == nil {
			t = un
		}
		l.toks = append(l.toks, unescapeToken(t))
	}
	return l
}

func escapeToken(t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
}

func unescapeToken(t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
}

// pointer is the JSON pointer of l in its document.
func (l loc) pointer() string {
	var sb strings.Builder
	for _, t := range l.toks {
		sb.WriteByte('/')
		sb.WriteString(escapeToken(t))
	}
	return sb.String()
}

// key identifies l (its document and pointer).
func (l loc) key() string { return l.doc + "#" + l.pointer() }

// last is the last token of l, "" at a document's root.
func (l loc) last() string {
	if len(l.toks) == 0 {
		return ""
	}
	return l.toks[len(l.toks)-1]
}

// under reports whether l is base or inside it, and the tokens from base.
func (l loc) under(base loc) ([]string, bool) {
	if l.doc != base.doc || len(l.toks) < len(base.toks) {
		return nil, false
	}
	for i, t := range base.toks {
		if l.toks[i] != t {
			return nil, false
		}
	}
	return l.toks[len(base.toks):], true
}

// child is l followed by toks.
func (l loc) child(toks ...string) loc {
	all := make([]string, 0, len(l.toks)+len(toks))
	return loc{doc: l.doc, toks: append(append(all, l.toks...), toks...)}
}

// at returns the value at path in v, nil when there is none.
func at(v any, path []string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// kintoMeta is the Draft 7 meta-schema Kinto checks stored schemas with,
// compiled once: formats are not asserted but `regex` (Python's format
// checker has no `uri`/`uri-reference` checker without optional packages
// Kinto does not install), and the document's $id is dropped so that its
// references stay inside it, not in the library's own copy.
var kintoMeta = sync.OnceValue(func() *metaSchema {
	const u = "https://kintogo.invalid/kinto-draft-07.json"
	data, err := metaFS.ReadFile("metaschemas/kinto/draft-07.json")
	if err != nil {
		panic(err)
	}
	d, err := parseOrdered(data)
	if err != nil {
		panic(err)
	}
	value := map[string]any{}
	for k, v := range d.value.(map[string]any) {
		if k != "$id" {
			value[k] = v
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoader{})
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(u, value); err != nil {
		panic(err)
	}
	root, err := c.Compile(u)
	if err != nil {
		panic(err)
	}
	g := newGraph(root)
	for _, s := range g.all {
		if s.Format != nil && s.Format.Name != "regex" {
			s.Format = nil
		}
	}
	return &metaSchema{root: root, graph: g, doc: &doc{value: value, order: d.order}, url: u}
})

type metaSchema struct {
	root  *jsonschema.Schema
	graph *graph
	doc   *doc
	url   string
}

// kintoCheck is Kinto's check_schema: the first error of the Draft 7
// meta-schema, as the last element of its path followed by its message.
func kintoCheck(schema any) string {
	m := kintoMeta()
	err := m.root.Validate(schema)
	if err == nil {
		return ""
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	r := newRenderer(schema, m.graph, map[string]*doc{m.url: m.doc})
	return r.first(ve).checkMessage()
}
