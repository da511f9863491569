// Package kerr defines the errors that kintogo's layers return to each other.
//
// An error carries a Kind, never an HTTP status: storage, permission and
// resource code say what went wrong, and only the API renderer decides how
// that looks on the wire (status, Kinto errno, message). This keeps HTTP out
// of every package below internal/httpapi.
package kerr

import (
	"errors"
	"fmt"
)

// Kind classifies an error.
type Kind int

// The kinds of error. The renderer in internal/httpapi maps each one to Kinto's
// status and errno (see ../shared/reference/kinto-protocol.md §8).
const (
	Other                Kind = iota // unexpected failure: 500, errno 999
	Invalid                          // bad input: 400, errno 107
	NotFound                         // object missing: 404, errno 110
	MissingResource                  // missing parent or unknown URL: 404, errno 111
	VersionNotAvailable              // unknown /vN prefix: 404, errno 116
	Unauthenticated                  // permission denied to an anonymous caller: 401, errno 104
	Forbidden                        // permission denied to an authenticated caller: 403, errno 121
	MethodNotAllowed                 // 405, errno 115
	NotAcceptable                    // 406, errno 107
	PreconditionFailed               // 412, errno 114
	UnsupportedMediaType             // 415, errno 107
	Conflict                         // integrity violation, retry: 409, errno 122
	Unavailable                      // backend failure: 503, errno 201
	TooLarge                         // request body too large: 413, errno 113
	Gone                             // the end of service passed: 410, errno 202
	NotModified                      // the client's copy is current (If-None-Match): 304
)

// Detail is one entry of a validation error's details list, as Kinto
// (colander) reports it: where the bad value was, its name and what is wrong.
// A nil Name is rendered as JSON null.
type Detail struct {
	Location    string  `json:"location"`
	Name        *string `json:"name"`
	Description string  `json:"description"`
	// Errno is a detail's own errno, where Kinto gives one (an OpenID
	// login's invalid state: 105); 0 for none.
	Errno int `json:"errno,omitempty"`
}

// Error is a kintogo error.
type Error struct {
	Kind    Kind
	Message string // human-readable text; for Invalid errors derived from Details when empty
	// Details is rendered as the error's "details" member: []Detail for
	// validation errors, a map for 404 ({"id", "resource_name"}) and 412
	// ({"existing"}), nil for none.
	Details any
	Err     error // underlying cause, never shown to clients
	// Errno and Title replace the kind's errno and "error" text for the few
	// answers where Kinto departs from them (then Message is omitted unless
	// set). Zero values keep the kind's.
	Errno int
	Title string
	// Timestamp is, for a PreconditionFailed or NotModified error, the
	// timestamp of what the precondition was compared with (the object's,
	// or its list's): the answer carries it as ETag.
	Timestamp int64
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		if ds, ok := e.Details.([]Detail); ok && len(ds) > 0 {
			msg = ds[0].Description
		}
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", msg, e.Err)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err: Other for errors that are not *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// Is reports whether err is a kintogo error of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// E builds an error of kind k with a message.
func E(k Kind, message string) *Error { return &Error{Kind: k, Message: message} }

// Wrap builds an error of kind k around a cause.
func Wrap(k Kind, message string, cause error) *Error {
	return &Error{Kind: k, Message: message, Err: cause}
}

// Name returns a pointer to s, for Detail.Name.
func Name(s string) *string { return &s }

// InvalidParam builds a 400 validation error with one detail.
// name may be nil (rendered as null).
func InvalidParam(location string, name *string, description string) *Error {
	return &Error{Kind: Invalid, Details: []Detail{{Location: location, Name: name, Description: description}}}
}

// ObjectNotFound is the 404 (errno 110) for a missing object of a kind.
func ObjectNotFound(resourceName, id string) *Error {
	return &Error{Kind: NotFound, Details: map[string]string{"id": id, "resource_name": resourceName}}
}

// ParentNotFound is the 404 (errno 111) for a missing parent object.
func ParentNotFound(resourceName, id string) *Error {
	return &Error{Kind: MissingResource, Details: map[string]string{"id": id, "resource_name": resourceName}}
}
