// Package attachment is kinto-attachment (kinto_attachment, 9.x): files
// attached to records. POST .../records/{id}/attachment (multipart: the
// file in `attachment`, optional `data` and `permissions` JSON fields)
// stores the file and writes its metadata in the record's `attachment`
// field, creating the record when needed; DELETE removes both, leaving
// `attachment: null`. Deleting a record, its collection or its bucket
// deletes its files (unless keep_old_files).
//
// An upload is atomic: the file is received into a temporary file, placed
// under its final name (never over another file), and only then is the
// record written, in one unit of work with the link between the record
// and its file. A failed write removes the placed file; a crash between
// the two leaves a file no record points to, never a record pointing to
// no file. Files a commit no longer needs are listed in the same unit
// ("doomed" links) and deleted once it committed.
package attachment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// Plugin is kinto_attachment.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto_attachment" }

// Version is the kinto-attachment version whose API kintogo serves.
const Version = "9.0.1"

// FilesPrefix is where kintogo serves the files when attachment.base_url
// is not set.
const FilesPrefix = "/attachments/"

const field = "attachment" // the record field and the multipart field

type plugin struct {
	h     *httpapi.Server
	st    *settings
	files Files
	clean sync.Mutex
}

type ownWriteKey struct{}

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	st, err := readSettings(h.Settings())
	if err != nil {
		return err
	}
	files, err := openLocal(st.basePath)
	if err != nil {
		return err
	}
	p := &plugin{h: h, st: st, files: files}
	endpoint := "/v1/buckets/{bid}/collections/{cid}/records/{id}/attachment"
	h.Handle(endpoint, httpapi.Endpoint{Name: "attachment", Expose: httpapi.BaseExpose, Methods: map[string]httpapi.Handler{
		"POST": p.post, "DELETE": p.delete,
	}})
	h.BodyLimit(func(r *http.Request) (int64, time.Duration, bool) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/attachment") {
			// A file of maxUpload bytes arriving at 1 MB/s at least.
			return st.maxUpload, 30*time.Second + time.Duration(st.maxUpload>>20)*time.Second, true
		}
		return 0, 0, false
	})
	capability := func(base string) map[string]any {
		return map[string]any{"version": Version, "description": "Add file attachments to records",
			"url": "https://github.com/Kinto/kinto-attachment/", "base_url": base}
	}
	switch {
	case st.extraBaseURL != "" || st.baseURL != "":
		base := st.extraBaseURL
		if base == "" {
			base = st.baseURL
		}
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		h.Capability("attachments", capability(base))
	default:
		h.Capability("attachments", httpapi.CapabilityFunc(func(r *http.Request) any {
			return capability(h.Origin(r) + FilesPrefix)
		}))
		// The content type by extension, kinto-attachment's overrides
		// first.
		contentType := func(name string) string {
			if ct := st.mimetypes[extension(name)]; ct != "" {
				return ct
			}
			if ct := mime.TypeByExtension(extension(name)); ct != "" {
				return ct
			}
			return "application/octet-stream"
		}
		h.HandleTree(FilesPrefix, httpapi.TreeNames{Home: "attachments", Files: "attachment_file", Redirect: "attachments"},
			h.StaticFiles(FilesPrefix, files.FS, httpapi.StaticOptions{ETag: true, ContentType: contentType,
				CacheControl: func(name string) string {
					if strings.HasPrefix(name, BundlesDir+"/") {
						// Rebuilt after publications: caches ask again
						// within the hour (with their ETag).
						return "public, max-age=3600"
					}
					return "public, max-age=86400"
				}}))
	}
	h.Heartbeat("attachments", p.ping)
	h.Engine().Hook(resource.Hooks{
		InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{p.onChange},
	})
	if !h.Settings().Bool("readonly") {
		if err := p.backfill(context.Background()); err != nil {
			return fmt.Errorf("kinto_attachment: recording which records name which files: %w", err)
		}
	}
	go p.deleteDoomed(context.Background())
	if st.bundles && !h.Settings().Bool("readonly") {
		b := newBundler(p, st.bundleMax)
		h.Engine().Feed().SubscribeAsync(b.seen)
		h.Background(b.run)
	}
	return nil
}

// Links: the file a record names, one scope per record (outside the tree
// of buckets, so that deleting a bucket leaves them for this plugin to
// find); references: the records naming a file, one scope per file and
// record (a file is deleted only once no record names it: the signer's
// copies in previews and destinations name their source's files); and the
// files to delete once their unit committed, one scope each.
const (
	linksRoot  = "__attachments__"
	refsRoot   = "__attachment_refs__"
	doomedRoot = "__doomed_attachments__"
	linkKind   = "attachment"
	linkID     = "link"
)

func linkScope(recordURI string) storage.Scope {
	return storage.Scope{Parent: linksRoot + recordURI, Resource: linkKind}
}

// refParent is the scope of the reference of a record to a file.
func refParent(name, recordURI string) string { return refsRoot + "/" + name + "/" + recordURI }

// doomedScope holds one file to delete, in a scope of its own, so that
// forgetting it once deleted touches nothing else.
func doomedScope(collURI string) storage.Scope {
	return storage.Scope{Parent: doomedRoot + collURI + "/" + uuid.NewString(), Resource: linkKind}
}

func recordPath(r *http.Request) model.Path {
	return model.Path{Kind: model.Record, BucketID: r.PathValue("bid"), CollectionID: r.PathValue("cid"), ID: r.PathValue("id")}
}

// authorize is kinto-attachment's rule, before the body is read: write on
// the record when it exists, else the right to create it.
func (p *plugin) authorize(ctx context.Context, c *httpapi.Call, rp model.Path) error {
	return p.h.View(ctx, func(tx storage.Tx) error {
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return err
		}
		authz := p.h.Engine().Authorizer()
		var allowed bool
		_, err := tx.Get(ctx, rp.Scope(), rp.ID)
		switch {
		case err == nil:
			allowed, err = authz.Allowed(ctx, tx, rp, "write", c.Principals())
		case kerr.Is(err, kerr.NotFound):
			allowed, err = authz.CanCreate(ctx, tx, rp, c.Principals())
		}
		if err != nil {
			return err
		}
		if !allowed {
			return c.Denied()
		}
		return nil
	})
}

func invalidPosted(message string) error {
	return &kerr.Error{Kind: kerr.Invalid, Errno: 108, Message: message}
}

// upload is a received multipart body.
type upload struct {
	tmp, filename, mimetype, hash string
	size                          int64
	data                          map[string]any
	perms                         map[string][]string
	hasPerms                      bool
	// fieldErr is the first error of the other fields, which Kinto
	// reports once the file was checked.
	fieldErr error
}

// receive streams the multipart body: the file part to a temporary file,
// the data and permissions fields (bounded by max_body_bytes) decoded.
func (p *plugin) receive(r *http.Request, limit int64) (*upload, error) {
	ct := r.Header.Get("Content-Type")
	if !strings.Contains(ct, "multipart/form-data") {
		return nil, kerr.InvalidParam("body", nil, "Content-Type should be multipart/form-data")
	}
	_, params, _ := mime.ParseMediaType(ct)
	if params["boundary"] == "" {
		return nil, &kerr.Error{Kind: kerr.Invalid, Message: "Invalid boundary in multipart form: ''"}
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	up := &upload{}
	fail := func(err error) (*upload, error) {
		if up.tmp != "" {
			p.files.Discard(up.tmp)
		}
		return nil, err
	}
	fieldLimit := p.h.Settings().Int("max_body_bytes")
	seenFile := false
	seenField := map[string]bool{}
	var unknown []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(bodyError(err))
		}
		name := part.FormName()
		switch {
		case name == field:
			if seenFile {
				return fail(invalidPosted("body: only one 'attachment' field"))
			}
			seenFile = true
			up.filename = part.FileName()
			up.mimetype = part.Header.Get("Content-Type")
			if up.mimetype == "" {
				up.mimetype = "application/octet-stream"
			}
			in := &reading{r: part}
			up.tmp, up.size, up.hash, err = p.files.Receive(in, limit)
			switch {
			case errors.Is(err, ErrTooLarge):
				return fail(kerr.E(kerr.TooLarge, ""))
			case in.err != nil:
				return fail(bodyError(in.err)) // the client's fault
			case err != nil:
				return fail(storeError(err)) // the store's
			}
		case name == "data" || name == "permissions":
			// Each field once: a body repeating them would have each
			// one read and decoded.
			if seenField[name] {
				return fail(invalidPosted(fmt.Sprintf("body: only one '%s' field", name)))
			}
			seenField[name] = true
			if part.FileName() != "" {
				up.fail(invalidPosted(fmt.Sprintf("body: '%s' field should be passed as form data, not files", name)))
				part.Close()
				continue
			}
			raw, err := io.ReadAll(io.LimitReader(part, fieldLimit+1))
			if err != nil {
				return fail(bodyError(err))
			}
			if int64(len(raw)) > fieldLimit {
				return fail(kerr.E(kerr.TooLarge, ""))
			}
			if name == "data" {
				if err := json.Unmarshal(raw, &up.data); err != nil || up.data == nil {
					up.fail(invalidPosted(fmt.Sprintf("body: data is not valid JSON (%s)", jsonProblem(err))))
				}
			} else {
				if err := json.Unmarshal(raw, &up.perms); err != nil {
					up.fail(invalidPosted(fmt.Sprintf("body: permissions is not valid JSON (%s)", jsonProblem(err))))
				}
				up.hasPerms = true
			}
		default:
			unknown = append(unknown, name)
		}
		part.Close()
	}
	if !seenFile {
		return fail(invalidPosted("Attachment missing."))
	}
	for _, name := range unknown {
		up.fail(invalidPosted(fmt.Sprintf("body: '%s' not in ('data', 'permissions')", name)))
	}
	return up, nil
}

// storeError is the answer to a failure of the file store: a name the
// file system refuses is the client's (400), a full disk a 503 as for
// the database, anything else a 503 too (the store is unavailable).
func storeError(err error) error {
	switch {
	case errors.Is(err, syscall.ENAMETOOLONG):
		return kerr.InvalidParam("body", nil, "File name is too long.")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return kerr.Wrap(kerr.Unavailable, "No space left to store the file.", err)
	}
	return kerr.Wrap(kerr.Unavailable, "", err)
}

func (up *upload) fail(err error) {
	if up.fieldErr == nil {
		up.fieldErr = err
	}
}

// bodyError is the answer to a body that could not be read: too large
// (max_upload_bytes), or not multipart as it said.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return kerr.E(kerr.TooLarge, "")
	}
	return &kerr.Error{Kind: kerr.Invalid, Message: "Invalid multipart body: " + err.Error()}
}

// reading is a reader that remembers its error, so that a failed copy
// tells the client's body from the store's disk.
type reading struct {
	r   io.Reader
	err error
}

func (rd *reading) Read(p []byte) (int, error) {
	n, err := rd.r.Read(p)
	if err != nil && err != io.EOF {
		rd.err = err
	}
	return n, err
}

func jsonProblem(err error) string {
	if err == nil {
		return "not an object"
	}
	return err.Error()
}

// post is POST .../attachment.
func (p *plugin) post(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	rp := recordPath(r)
	if err := p.authorize(ctx, c, rp); err != nil {
		return err
	}
	o := p.st.effective(rp.BucketID, rp.CollectionID)
	// An upload holds its connection as long as its client sends: it
	// counts against the node's budget of held requests.
	release, err := p.h.Hold()
	if err != nil {
		return err
	}
	defer release()
	// The whole file is received (within kintogo's bound), so that the
	// 400 beyond max_size_bytes says its size, as Kinto's does.
	up, err := p.receive(r, p.st.maxUpload)
	if err != nil {
		return err
	}
	placed := ""
	defer func() {
		if up.tmp != "" {
			p.files.Discard(up.tmp)
		}
	}()
	if up.filename == "" {
		return kerr.InvalidParam("body", nil, "Filename is required.")
	}
	if o.maxSizeBytes != nil && *o.maxSizeBytes > 0 && up.size > *o.maxSizeBytes {
		return kerr.InvalidParam("body", nil, fmt.Sprintf("File size (%d bytes) exceeds the limit (%d bytes).", up.size, *o.maxSizeBytes))
	}
	if !extensionAllowed(up.filename, p.st.extensions) {
		return kerr.InvalidParam("body", nil, "File extension is not allowed.")
	}
	if up.fieldErr != nil {
		return up.fieldErr
	}
	if mt, ok := p.st.mimetypes[extension(up.filename)]; ok {
		up.mimetype = mt
	}
	name := storedName(up.filename, o, rp.ID, p.h.Now())
	if folder := folderOf(p.st.folder, rp.BucketID, rp.CollectionID, rp.ID); folder != "" {
		name = folder + "/" + name
	}
	if p.st.bundles && strings.HasPrefix(name, BundlesDir+"/") {
		// The bundles' folder is the server's: a file there could pass
		// for a bundle (a bucket named "bundles" under folder {bucket_id}).
		return kerr.InvalidParam("body", nil, "Files cannot be stored under "+BundlesDir+"/, the folder of the bundles (see attachment.folder).")
	}
	if placed, err = p.files.Place(up.tmp, name); err != nil {
		return storeError(err)
	}
	up.tmp = ""
	meta := map[string]any{
		"filename": up.filename, "location": p.st.location(placed), "hash": up.hash,
		"mimetype": up.mimetype, "size": up.size,
	}
	data := map[string]any{}
	for k, v := range up.data {
		data[k] = v
	}
	data[field] = meta
	written, err := p.writeRecord(ctx, c, r, rp, data, up.perms, up.hasPerms)
	if err != nil {
		p.files.Delete(placed)
		return err
	}
	p.deleteDoomed(ctx)
	w.Header().Set("Location", p.h.Origin(r)+"/v1"+rp.URI())
	// The record's new timestamp, as Kinto's answer carries it.
	httpapi.SetTimestamp(w, written.Object.LastModified)
	status := http.StatusOK
	if written.Created {
		status = http.StatusCreated
	}
	p.h.WriteJSON(w, status, meta)
	return nil
}

// delete is DELETE .../attachment.
func (p *plugin) delete(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	rp := recordPath(r)
	if err := p.authorize(ctx, c, rp); err != nil {
		return err
	}
	written, err := p.writeRecord(ctx, c, r, rp, map[string]any{field: nil}, nil, false)
	if err != nil {
		return err
	}
	p.deleteDoomed(ctx)
	httpapi.SetTimestamp(w, written.Object.LastModified)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeRecord writes the record's fields (a PATCH, or a PUT when it does
// not exist) in one unit of work; its link follows (onChange), and the
// file it named before is doomed once no record names it, or forgotten
// with keep_old_files.
func (p *plugin) writeRecord(ctx context.Context, c *httpapi.Call, r *http.Request, rp model.Path, data map[string]any,
	perms map[string][]string, hasPerms bool) (resource.Written, error) {
	e := p.h.Engine()
	return resource.Write(ctx, e, func(u *resource.Unit) (resource.Written, error) {
		ctx := resource.WithUnit(context.WithValue(ctx, ownWriteKey{}, true), u)
		// Uploads to one record take turns (on PostgreSQL they run in
		// parallel): each reads the link the previous one left, and
		// dooms its file, so that none is lost track of.
		if err := u.Tx.LockScope(ctx, linkScope(rp.URI())); err != nil {
			return resource.Written{}, err
		}
		// The record's link and references follow its metadata
		// (onChange).
		req := resource.WriteRequest{Request: p.h.Request(r, c, rp), Body: &resource.Body{Data: data, Perms: perms, HasPerms: hasPerms}}
		_, err := u.Tx.Get(ctx, rp.Scope(), rp.ID)
		if kerr.Is(err, kerr.NotFound) {
			return e.Put(ctx, req)
		}
		if err != nil {
			return resource.Written{}, err
		}
		patched, err := e.Patch(ctx, req)
		return patched.Written, err
	})
}

// backfillScope marks, once done, that every record's link and reference
// were recorded (data written before they were kept for every record).
var backfillScope = storage.Scope{Parent: refsRoot, Resource: "backfill"}

// backfill records the link and reference of every record naming a file,
// once: databases written before references were kept (when only
// uploads had links, and a file was deleted with the record that
// replaced it, even if the signer's copies named it).
func (p *plugin) backfill(ctx context.Context) error {
	return p.h.Engine().Store().Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Get(ctx, backfillScope, "done"); err == nil || !kerr.Is(err, kerr.NotFound) {
			return err
		}
		scopes, err := tx.Timestamps(ctx, model.Record.Name, []string{"/buckets/"})
		if err != nil {
			return err
		}
		for parent := range scopes {
			recs, err := tx.List(ctx, storage.Scope{Parent: parent, Resource: model.Record.Name}, storage.ListOptions{})
			if err != nil {
				return err
			}
			for _, r := range recs {
				name := p.fileOf(r)
				if name == "" {
					continue
				}
				uri := parent + "/records/" + r.ID
				if _, err := tx.Put(ctx, linkScope(uri), &storage.Object{ID: linkID, Data: map[string]any{"location": name}}); err != nil {
					return err
				}
				if _, err := tx.Put(ctx, storage.Scope{Parent: refParent(name, uri), Resource: linkKind}, &storage.Object{ID: linkID}); err != nil {
					return err
				}
			}
		}
		_, err = tx.Put(ctx, backfillScope, &storage.Object{ID: "done"})
		return err
	})
}

// fileOf is the name, in the store, of the file a record's metadata names
// ("" when none).
func (p *plugin) fileOf(o *storage.Object) string {
	if o == nil || o.Deleted {
		return ""
	}
	meta, _ := o.Data[field].(map[string]any)
	loc, _ := meta["location"].(string)
	return strings.TrimPrefix(loc, p.st.location(""))
}

// link records that the record names the file name ("": none) instead
// of oldName, which is released.
func (p *plugin) link(ctx context.Context, u *resource.Unit, recordURI, oldName, name, bid, cid string) error {
	tx := u.Tx
	if oldName == name {
		return nil
	}
	if name != "" {
		if _, err := tx.Put(ctx, linkScope(recordURI), &storage.Object{ID: linkID, Data: map[string]any{"location": name}}); err != nil {
			return err
		}
		if _, err := tx.Put(ctx, storage.Scope{Parent: refParent(name, recordURI), Resource: linkKind}, &storage.Object{ID: linkID}); err != nil {
			return err
		}
	} else if err := tx.PurgeTree(ctx, linkScope(recordURI).Parent); err != nil {
		return err
	}
	if oldName == "" {
		return nil
	}
	return p.release(ctx, u, oldName, recordURI, bid, cid)
}

// release forgets that the record names the file, and dooms the file when
// no record names it any more (unless the collection keeps old files): it
// is deleted once the unit committed.
func (p *plugin) release(ctx context.Context, u *resource.Unit, name, recordURI, bid, cid string) error {
	tx := u.Tx
	if err := tx.PurgeTree(ctx, refParent(name, recordURI)); err != nil {
		return err
	}
	others, err := tx.Timestamps(ctx, linkKind, []string{refsRoot + "/" + name + "/"})
	if err != nil || len(others) > 0 || p.st.keepOld(bid, cid) {
		return err
	}
	if _, err = tx.Put(ctx, doomedScope("/buckets/"+bid+"/collections/"+cid), &storage.Object{ID: linkID, Data: map[string]any{"location": name}}); err != nil {
		return err
	}
	if u.Once("attachments: delete the doomed files") {
		u.OnCommit(func() { p.deleteDoomed(context.Background()) })
	}
	return nil
}

// onChange keeps the links of records, collections and buckets that are
// deleted, and refuses changes of attachment metadata by anyone but this
// plugin.
func (p *plugin) onChange(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	// A plugin's own copies (the signer publishing a record) carry the
	// metadata as it is.
	if ch.Action == "update" && ch.Path.Kind == model.Record && ctx.Value(ownWriteKey{}) == nil && !ch.Caller.Plugin && ch.Old != nil && ch.Object != nil {
		before, after := ch.Old.Data[field], ch.Object.Data[field]
		if before != nil && after != nil {
			b, _ := json.Marshal(before)
			a, _ := json.Marshal(after)
			if string(a) != string(b) {
				return &kerr.Error{Kind: kerr.Invalid, Errno: 999, Message: "Attachment metadata cannot be modified."}
			}
		}
	}
	switch ch.Path.Kind {
	case model.Record:
		// Whoever wrote it (an upload, the signer's copy, a deletion),
		// the record's link follows the file its metadata names.
		return p.link(ctx, u, ch.Path.URI(), p.fileOf(ch.Old), p.fileOf(ch.Object), ch.Bucket(), ch.Collection())
	case model.Collection, model.Bucket:
		if ch.Action != "delete" {
			return nil
		}
		prefix := linksRoot + ch.Path.URI() + "/"
		stamps, err := u.Tx.Timestamps(ctx, linkKind, []string{prefix})
		if err != nil {
			return err
		}
		for parent := range stamps {
			uri := strings.TrimPrefix(parent, linksRoot)
			rest := strings.TrimPrefix(uri, "/buckets/")
			bid, rest, _ := strings.Cut(rest, "/collections/")
			cid, _, _ := strings.Cut(rest, "/records/")
			link, err := u.Tx.Get(ctx, linkScope(uri), linkID)
			if kerr.Is(err, kerr.NotFound) {
				continue
			}
			if err != nil {
				return err
			}
			name, _ := link.Data["location"].(string)
			if err := p.link(ctx, u, uri, name, "", bid, cid); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteDoomed deletes the doomed files, then forgets them. Only committed
// dooms are read (a read-only transaction): a file doomed by a
// transaction that may still roll back (its group's commit, a crash) is
// still named by its record. Deleting a file twice is harmless: what a
// crash interrupted is done again by the next pass.
func (p *plugin) deleteDoomed(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	p.clean.Lock()
	defer p.clean.Unlock()
	var parents, locations []string
	err := p.h.Engine().Store().View(ctx, func(tx storage.Tx) error {
		parents, locations = nil, nil
		stamps, err := tx.Timestamps(ctx, linkKind, []string{doomedRoot + "/"})
		if err != nil {
			return err
		}
		for parent := range stamps {
			d, err := tx.Get(ctx, storage.Scope{Parent: parent, Resource: linkKind}, linkID)
			if kerr.Is(err, kerr.NotFound) {
				continue
			}
			if err != nil {
				return err
			}
			loc, _ := d.Data["location"].(string)
			parents, locations = append(parents, parent), append(locations, loc)
		}
		return nil
	})
	if err != nil {
		p.h.Logger().Error("attachments: listing the files to delete", "err", err)
		return
	}
	var done []string
	for i, loc := range locations {
		if err := p.files.Delete(loc); err != nil {
			p.h.Logger().Error("attachments: deleting a file", "location", loc, "err", err)
			continue
		}
		done = append(done, parents[i])
	}
	if len(done) == 0 {
		return
	}
	err = p.h.Engine().Store().Update(ctx, func(tx storage.Tx) error {
		for _, parent := range done {
			if err := tx.PurgeTree(ctx, parent); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.h.Logger().Error("attachments: forgetting deleted files", "err", err)
	}
}

// ping is the heartbeat's check: a file can be written and deleted.
func (p *plugin) ping(ctx context.Context) bool {
	if p.h.Settings().Bool("readonly") {
		return true
	}
	tmp, _, _, err := p.files.Receive(strings.NewReader(`{"test": "write"}`), 64)
	if err != nil {
		p.h.Logger().Error("attachments heartbeat", "err", err)
		return false
	}
	p.files.Discard(tmp)
	return true
}
