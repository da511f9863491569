package events

import "testing"

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A change wakes and invalidates only what depends on the scopes it
// touched: its collection, or everything in its bucket, or everything.
func TestHubScopes(t *testing.T) {
	var h Hub
	c1, c2, other := Scope{"b", "c1"}, Scope{"b", "c2"}, Scope{"o", "c1"}
	v1, v2, vo := h.Version(c1), h.Version(c2), h.Version(other)
	w1, w2, wo := h.Wait(c1), h.Wait(c2), h.Wait(other)

	h.Touch(c1)
	if !closed(w1) || closed(w2) || closed(wo) {
		t.Fatalf("a collection's change woke %v %v %v", closed(w1), closed(w2), closed(wo))
	}
	if h.Version(c1) == v1 || h.Version(c2) != v2 || h.Version(other) != vo {
		t.Fatal("a collection's change moved another scope's version")
	}

	w1, v1, v2 = h.Wait(c1), h.Version(c1), h.Version(c2)
	h.Touch(Scope{Bucket: "b"})
	if !closed(w1) || !closed(w2) || closed(wo) {
		t.Fatal("a bucket's change must wake its collections, and only them")
	}
	if h.Version(c1) == v1 || h.Version(c2) == v2 || h.Version(other) != vo {
		t.Fatal("a bucket's change must move its collections' versions")
	}

	w1, v1 = h.Wait(c1), h.Version(c1)
	fresh := h.Wait(Scope{"new", "x"})
	h.TouchAll()
	if !closed(w1) || !closed(wo) || !closed(fresh) || h.Version(c1) == v1 || h.Version(other) == vo {
		t.Fatal("a change of everything must wake and move every scope")
	}
	// A scope first seen after a change of everything has that version.
	if h.Version(Scope{"later", "y"}) != h.Version(c1) {
		t.Error("an untouched scope must carry the last change of everything")
	}
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		want Scope
		all  bool
	}{
		{Event{ResourceName: "record", BucketID: "b", CollectionID: "c"}, Scope{"b", "c"}, false},
		{Event{ResourceName: "collection", BucketID: "b", CollectionID: "c"}, Scope{"b", "c"}, false},
		{Event{ResourceName: "bucket", BucketID: "b"}, Scope{Bucket: "b"}, false},
		{Event{ResourceName: "group", BucketID: "b"}, Scope{}, true},
		{Event{Everything: true}, Scope{}, true},
	} {
		if s, all := Of(tc.ev); s != tc.want || all != tc.all {
			t.Errorf("Of(%+v) = %v %v", tc.ev, s, all)
		}
	}
}
