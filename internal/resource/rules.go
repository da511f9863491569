package resource

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/permission"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/schema"
	"kintogo/internal/storage"
)

// Precondition is a parsed If-Match or If-None-Match.
type Precondition struct {
	Set       bool
	Any       bool  // "*"
	Timestamp int64 // the quoted timestamp otherwise
}

// Preconditions are a request's If-Match and If-None-Match.
type Preconditions struct {
	IfMatch, IfNoneMatch Precondition
}

// existingDetails is the details of a 412 on an existing object.
func existingDetails(o *storage.Object) map[string]any {
	return map[string]any{"existing": o.Body()}
}

// preconditionFailed is the 412 of a request compared with existing (nil
// when missing) whose timestamp, or else ts, is the answer's ETag.
func preconditionFailed(existing *storage.Object, ts int64) error {
	e := &kerr.Error{Kind: kerr.PreconditionFailed, Timestamp: ts}
	if existing != nil {
		e.Details = existingDetails(existing)
		e.Timestamp = existing.LastModified
	}
	return e
}

// notModified is the 304 of a read whose If-None-Match matched ts.
func notModified(ts int64) error {
	return &kerr.Error{Kind: kerr.NotModified, Timestamp: ts}
}

// CheckPreconditions applies If-Match / If-None-Match to a write on an
// object (existing: nil when missing). A failure carries the timestamp of
// the object it was compared with, or when it is missing its list's.
func CheckPreconditions(ctx context.Context, tx storage.Tx, p model.Path, pre Preconditions, existing *storage.Object) error {
	if !objectPreconditionsFail(pre, existing) {
		return nil
	}
	if existing != nil {
		return preconditionFailed(existing, 0)
	}
	ts, err := tx.Timestamp(ctx, p.Scope())
	if err != nil {
		return err
	}
	if ts == 0 {
		// A list never written to: Kinto's timestamp is the clock's.
		ts = time.Now().UnixMilli()
	}
	return preconditionFailed(nil, ts)
}

func objectPreconditionsFail(pre Preconditions, existing *storage.Object) bool {
	if existing != nil && pre.IfNoneMatch.Any {
		return true
	}
	if pre.IfMatch.Set {
		return existing == nil || (!pre.IfMatch.Any && pre.IfMatch.Timestamp != existing.LastModified)
	}
	return false
}

// ReadPreconditions applies the headers to a read of something whose
// timestamp is ts: a matching If-None-Match is a 304, If-None-Match: * (it
// exists) or a different If-Match a 412.
func ReadPreconditions(pre Preconditions, ts int64, existing *storage.Object) error {
	if pre.IfNoneMatch.Set && !pre.IfNoneMatch.Any && pre.IfNoneMatch.Timestamp == ts {
		return notModified(ts)
	}
	if pre.IfNoneMatch.Any || (pre.IfMatch.Set && !pre.IfMatch.Any && pre.IfMatch.Timestamp != ts) {
		return preconditionFailed(existing, ts)
	}
	return nil
}

// checkParent answers 404 (errno 111) when the collection of a records
// path does not exist, and returns it. Other kinds have no such check
// (Kinto lets callers allowed by settings work under a missing bucket).
func checkParent(ctx context.Context, tx storage.Tx, p model.Path) (*storage.Object, error) {
	if p.Kind != model.Record {
		return nil, nil
	}
	parent := p.ParentPath()
	coll, err := tx.Get(ctx, parent.Scope(), parent.ID)
	if kerr.Is(err, kerr.NotFound) {
		return nil, kerr.ParentNotFound("collection", p.CollectionID)
	}
	return coll, err
}

// VisiblePermissions returns an object's ACL when one of the principals is
// one of its writers, and {} otherwise (inherited rights do not count).
func VisiblePermissions(ctx context.Context, tx storage.Tx, uri string, principals []string) (map[string][]string, error) {
	perms, err := tx.Permissions(ctx, uri)
	if err != nil {
		return nil, err
	}
	return visible(perms, principals), nil
}

// visible is what principals may see of an ACL: all of it for its
// writers, nothing for others.
func visible(perms map[string][]string, principals []string) map[string][]string {
	for _, w := range perms["write"] {
		if slices.Contains(principals, w) {
			return perms
		}
	}
	return map[string][]string{}
}

// InvalidID is the 400 of an id its kind does not accept.
var InvalidID = kerr.InvalidParam("path", nil, "Invalid object id")

// authorizeObject checks perm on an object, then its id (Kinto validates
// ids after authorization). A caller refused on a missing object gets a 404
// instead when it may read the parent.
func (e *Engine) authorizeObject(ctx context.Context, tx storage.Tx, c *Caller, p model.Path, perm string) error {
	ok, err := e.authz.Allowed(ctx, tx, p, perm, c.Principals())
	if err != nil {
		return err
	}
	if ok {
		if !p.Kind.ValidID(p.ID) {
			return InvalidID
		}
		return nil
	}
	if _, err := tx.Get(ctx, p.Scope(), p.ID); kerr.Is(err, kerr.NotFound) {
		if can, err := e.authz.CanReadParent(ctx, tx, p, c.Principals()); err != nil || can {
			return err
		}
	}
	return c.Denied()
}

// ListAccess is the check of every read of a list: the caller's right to
// it (the scope of what it may see), then, for records, their collection
// (returned).
func (e *Engine) ListAccess(ctx context.Context, tx storage.Tx, c *Caller, p model.Path) (permission.ListScope, *storage.Object, error) {
	if err := c.Load(ctx, tx); err != nil {
		return permission.ListScope{}, nil, err
	}
	scope, ok, err := e.authz.ForList(ctx, tx, p, "read", c.Principals())
	if err != nil {
		return scope, nil, err
	}
	if !ok {
		return scope, nil, c.Denied()
	}
	coll, err := checkParent(ctx, tx, p)
	return scope, coll, err
}

// ScopeIDs is the ids restriction of a list scope: nil for all.
func ScopeIDs(s permission.ListScope) []string {
	if s.All {
		return nil
	}
	return s.IDs
}

// prepare starts every write: the caller's group principals, the locks
// the hooks take first, then the parent collection of a records path,
// which must exist before any authorization (Kinto checks it while
// building the route context).
func (u *Unit) prepare(ctx context.Context, c *Caller, p model.Path) error {
	if err := c.Load(ctx, u.Tx); err != nil {
		return err
	}
	if err := u.beforeWrite(ctx, p); err != nil {
		return err
	}
	_, err := checkParent(ctx, u.Tx, p)
	return err
}

// MaxFutureDrift is how far ahead of the server's clock a client-supplied
// timestamp may be: as _since and _before are (internal/query).
const MaxFutureDrift = 24 * time.Hour

// maxSuppliedTimestamp bounds the timestamps clients may give (to keep a
// replica's: Kinto's last_modified in a body or ?last_modified= of a
// DELETE). Beyond it, the scope's timestamp would leave the range clients
// may poll with, and near the int64 limit it could not increase any more.
func (e *Engine) maxSuppliedTimestamp() int64 {
	return e.NowMS() + MaxFutureDrift.Milliseconds()
}

// suppliedTimestamp extracts a client-supplied last_modified from data (an
// integer, else ignored) and removes id and last_modified from it.
func (e *Engine) suppliedTimestamp(data map[string]any) (int64, error) {
	var ts int64
	raw, present := data[query.ModifiedField]
	if n, ok := raw.(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			ts = v
		} else if err != nil && query.Compare(n, int64(math.MaxInt64)) > 0 {
			ts = math.MaxInt64 // beyond int64: refused below
		}
	}
	delete(data, query.ModifiedField)
	delete(data, query.IDField)
	if present && ts > e.maxSuppliedTimestamp() {
		return 0, kerr.InvalidParam("body", kerr.Name("data."+query.ModifiedField), fmt.Sprintf("%s is too far in the future", pyfmt.Str(raw)))
	}
	return ts, nil
}

// suppliedDeletion reads the last_modified a client gives the tombstone of
// a DELETE (raw, "" when absent).
func (e *Engine) suppliedDeletion(raw string) (int64, error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(raw, `"`), 10, 64)
	if err != nil || n < 0 {
		return 0, kerr.InvalidParam("querystring", kerr.Name(query.ModifiedField), fmt.Sprintf("%q is not a number", raw))
	}
	if n > e.maxSuppliedTimestamp() {
		return 0, kerr.InvalidParam("querystring", kerr.Name(query.ModifiedField), fmt.Sprintf("%q is too far in the future", raw))
	}
	return n, nil
}

// CheckSize refuses an object whose stored form would be larger than
// MaxObjectBytes: whatever the write (PATCH merging into what exists,
// JSON-Patch copies, the defaults of a batch), nothing stored outgrows
// what one request could send.
func (e *Engine) CheckSize(data map[string]any) error {
	if e.cfg.MaxObjectBytes <= 0 {
		return nil
	}
	var n byteCounter
	enc := json.NewEncoder(&n)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return kerr.Wrap(kerr.Invalid, "Object cannot be stored.", err)
	}
	if int64(n) > e.cfg.MaxObjectBytes {
		return tooLarge(e.cfg.MaxObjectBytes)
	}
	return nil
}

func tooLarge(limit int64) error {
	return &kerr.Error{Kind: kerr.TooLarge, Message: fmt.Sprintf("Resulting object is larger than %d bytes.", limit)}
}

// byteCounter is an io.Writer that only counts.
type byteCounter int64

func (b *byteCounter) Write(p []byte) (int, error) {
	*b += byteCounter(len(p))
	return len(p), nil
}

// storeObject validates data (the kind's rules, its size, then the JSON
// schemas that govern it) and stores it as the object at p, which replaces
// existing (nil for a new object). A client-supplied last_modified is kept
// on creation, and on update only when newer than the existing one.
func (e *Engine) storeObject(ctx context.Context, tx storage.Tx, p model.Path, existing *storage.Object, data map[string]any) (*storage.Object, error) {
	supplied, err := e.suppliedTimestamp(data)
	if err != nil {
		return nil, err
	}
	if existing != nil && supplied <= existing.LastModified {
		supplied = 0
	}
	if err := ValidateData(p.Kind, data); err != nil {
		return nil, err
	}
	if err := e.CheckSize(data); err != nil {
		return nil, err
	}
	if err := e.validateAgainstSchemas(ctx, tx, p, withID(data, p.ID)); err != nil {
		return nil, err
	}
	delete(data, query.IDField)
	return tx.Put(ctx, p.Scope(), &storage.Object{ID: p.ID, Data: data, LastModified: supplied})
}

// withID puts the object's id in its data, for validation against schemas
// that declare it; callers remove it again before storing.
func withID(data map[string]any, id string) map[string]any {
	data[query.IDField] = id
	return data
}

// CopyData returns a shallow copy of an object's data.
func CopyData(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// schemaFields are the fields of each kind that hold a JSON schema, checked
// against the meta-schema on every write whatever the validation setting.
var schemaFields = map[*model.Kind][]string{
	model.Bucket:     {"collection:schema", "group:schema", "record:schema"},
	model.Collection: {"schema"},
}

// ValidateData applies the per-kind rules on data (kinto-protocol.md §3.4).
func ValidateData(k *model.Kind, data map[string]any) error {
	for _, field := range schemaFields[k] {
		if v, ok := data[field]; ok {
			if msg := schema.Check(v); msg != "" {
				return kerr.InvalidParam("body", kerr.Name("data."+field), msg)
			}
		}
	}
	switch k {
	case model.Collection:
		if v, ok := data["cache_expires"]; ok {
			n, isNum := v.(json.Number)
			if _, err := strconv.ParseInt(string(n), 10, 64); !isNum || err != nil {
				return kerr.InvalidParam("body", kerr.Name("data.cache_expires"), fmt.Sprintf("%q is not a number", pyfmt.Str(v)))
			}
		}
	case model.Group:
		raw, ok := data["members"]
		if !ok {
			data["members"] = []any{}
			return nil
		}
		list, ok := raw.([]any)
		if !ok {
			return kerr.InvalidParam("body", kerr.Name("data.members"), fmt.Sprintf("%q is not iterable", pyfmt.Str(raw)))
		}
		for i, m := range list {
			member, ok := m.(string)
			if !ok {
				return kerr.InvalidParam("body", kerr.Name(fmt.Sprintf("data.members.%d", i)), fmt.Sprintf("%s is not a string: {'': ''}", pyfmt.Str(m)))
			}
			if member == "system.Everyone" || strings.HasPrefix(member, "/buckets/") {
				return kerr.InvalidParam("body", kerr.Name("data.members"), fmt.Sprintf("'%s' is not a valid user ID.", member))
			}
		}
	}
	return nil
}

// validateAgainstSchemas validates the data of a write against the JSON
// schemas that govern it, when SchemaValidation is on: a record against its
// collection's `schema` then its bucket's `record:schema`, a collection or
// group against the bucket's `collection:schema` or `group:schema`. A
// record that passes its collection's schema records the schema's version
// in its `schema` field.
func (e *Engine) validateAgainstSchemas(ctx context.Context, tx storage.Tx, p model.Path, data map[string]any) error {
	if !e.cfg.SchemaValidation || p.Kind == model.Bucket {
		return nil
	}
	bucket, err := tx.Get(ctx, storage.Scope{Resource: model.Bucket.Name}, p.BucketID)
	if kerr.Is(err, kerr.NotFound) {
		return kerr.ParentNotFound("bucket", p.BucketID)
	}
	if err != nil {
		return err
	}
	if p.Kind == model.Record {
		delete(data, "schema")
		coll, err := tx.Get(ctx, p.ParentPath().Scope(), p.CollectionID)
		if err != nil {
			return err
		}
		if sch, ok := coll.Data["schema"]; ok {
			if err := validateWith(sch, data); err != nil {
				return err
			}
			if m, ok := sch.(map[string]any); ok && len(m) > 0 {
				data["schema"] = json.Number(strconv.FormatInt(coll.LastModified, 10))
			}
		}
	}
	if sch, ok := bucket.Data[p.Kind.Name+":schema"]; ok {
		return validateWith(sch, data)
	}
	return nil
}

// validateWith validates data against a stored schema the way Kinto does:
// server fields (last_modified, schema, and id unless the schema declares
// it) are neither validated nor required.
func validateWith(sch any, data map[string]any) error {
	m, ok := sch.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	declaresID := false
	if props, ok := m["properties"].(map[string]any); ok {
		_, declaresID = props["id"]
	}
	instance := CopyData(data)
	delete(instance, "schema")
	delete(instance, query.ModifiedField)
	if !declaresID {
		delete(instance, query.IDField)
	}
	cleaned := CopyData(m)
	if req, ok := m["required"].([]any); ok {
		kept := []any{}
		for _, r := range req {
			if r == "schema" || r == query.ModifiedField || (r == query.IDField && !declaresID) {
				continue
			}
			kept = append(kept, r)
		}
		cleaned["required"] = kept
	}
	if f, ok := schema.Validate(cleaned, instance); !ok {
		return kerr.InvalidParam("body", kerr.Name(f.Field), f.Message)
	}
	return nil
}

func members(o *storage.Object) []string {
	if o == nil || o.Deleted {
		return nil
	}
	list, _ := o.Data["members"].([]any)
	out := make([]string, 0, len(list))
	for _, m := range list {
		if s, ok := m.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// afterWrite keeps what depends on an object current: the timestamps of a
// new parent's child scopes (so that a new collection's records list has a
// stable ETag and shows in the changes monitor at once), and the group
// principals of a group's members.
func afterWrite(ctx context.Context, tx storage.Tx, p model.Path, old, obj *storage.Object) error {
	if old == nil {
		for _, child := range p.Kind.Children() {
			if _, err := tx.InitTimestamp(ctx, p.ChildScope(child)); err != nil {
				return err
			}
		}
	}
	if p.Kind != model.Group {
		return nil
	}
	before, after := members(old), members(obj)
	in := func(list []string, m string) bool {
		for _, x := range list {
			if x == m {
				return true
			}
		}
		return false
	}
	for _, m := range before {
		if !in(after, m) {
			if err := tx.RemoveUserPrincipal(ctx, m, p.URI()); err != nil {
				return err
			}
		}
	}
	for _, m := range after {
		if !in(before, m) {
			if err := tx.AddUserPrincipal(ctx, m, p.URI()); err != nil {
				return err
			}
		}
	}
	return nil
}

// cascade removes what depended on a deleted object: its children (without
// tombstones), ACEs, and the principal of a group everywhere
// (kinto-protocol.md §3.7; removing a group's grants from other objects is
// kintogo's, so that whoever re-creates the group inherits nothing).
func cascade(ctx context.Context, tx storage.Tx, p model.Path) error {
	uri := p.URI()
	switch p.Kind {
	case model.Bucket:
		groups, err := tx.List(ctx, p.ChildScope(model.Group), storage.ListOptions{})
		if err != nil {
			return err
		}
		for _, g := range groups {
			if err := tx.RemovePrincipal(ctx, uri+"/groups/"+g.ID); err != nil {
				return err
			}
		}
		if err := tx.PurgeTree(ctx, uri); err != nil {
			return err
		}
		return tx.DeletePermissions(ctx, uri, uri+"/*")
	case model.Collection:
		if err := tx.PurgeTree(ctx, uri); err != nil {
			return err
		}
		return tx.DeletePermissions(ctx, uri, uri+"/*")
	case model.Group:
		if err := tx.RemovePrincipal(ctx, uri); err != nil {
			return err
		}
	}
	return tx.DeletePermissions(ctx, uri)
}

// withWriter adds the caller to the write permission unless
// ExplicitPermissions is off. It never modifies perms, which may be the
// storage's own.
func (e *Engine) withWriter(perms map[string][]string, c *Caller) map[string][]string {
	if perms == nil {
		perms = map[string][]string{}
	}
	if !e.cfg.ExplicitPermissions || slices.Contains(perms["write"], c.Writer()) {
		return perms
	}
	out := maps.Clone(perms)
	out["write"] = append(slices.Clip(perms["write"]), c.Writer())
	return out
}

// storePermissions stores an object's ACL with the writer added, and
// returns what the caller may see of it.
func (e *Engine) storePermissions(ctx context.Context, tx storage.Tx, c *Caller, uri string, perms map[string][]string) (map[string][]string, error) {
	if err := tx.SetPermissions(ctx, uri, e.withWriter(perms, c)); err != nil {
		return nil, err
	}
	return VisiblePermissions(ctx, tx, uri, c.Principals())
}

// storeNewPermissions is storePermissions for an object just created: its
// ACL is exactly what is stored (deleting an object deletes its ACL, see
// afterDelete), so it is not read back.
func (e *Engine) storeNewPermissions(ctx context.Context, tx storage.Tx, c *Caller, uri string, perms map[string][]string) (map[string][]string, error) {
	acl := e.withWriter(perms, c)
	if err := tx.SetPermissions(ctx, uri, acl); err != nil {
		return nil, err
	}
	stored := map[string][]string{}
	for perm, principals := range acl {
		if len(principals) > 0 {
			p := slices.Clone(principals)
			slices.Sort(p)
			stored[perm] = slices.Compact(p)
		}
	}
	return visible(stored, c.Principals()), nil
}

// replacePermissions gives perms to every permission of the kind, clearing
// those not listed (PUT with permissions, merge-patch, JSON-Patch).
func replacePermissions(k *model.Kind, perms map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, name := range k.Perms {
		out[name] = append([]string{}, perms[name]...)
	}
	return out
}
