package app

import (
	"encoding/json"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/storage/postgres"
)

// announcement is what a node announces of a commit to the others: when it
// committed (Unix microseconds, by its clock) and its events; without
// events when they are too many to announce (anything may have changed).
type announcement struct {
	Committed int64           `json:"committed"`
	Events    *[]events.Event `json:"events,omitempty"`
}

// encodeAnnouncement is the payload announcing evs, committed at at.
func encodeAnnouncement(evs []events.Event, at time.Time) string {
	if evs == nil {
		evs = []events.Event{}
	}
	a := announcement{Committed: at.UnixMicro(), Events: &evs}
	payload, _ := json.Marshal(a)
	if len(payload) > postgres.MaxPayload {
		a.Events = nil
		payload, _ = json.Marshal(a)
	}
	return string(payload)
}

// decodeAnnouncement reads a payload: the events (nil when unknown) and
// the commit's time (zero when unknown). Payloads of earlier versions are
// the events' array alone.
func decodeAnnouncement(payload string) ([]events.Event, time.Time) {
	if payload == "" {
		return nil, time.Time{}
	}
	if payload[0] == '[' {
		var evs []events.Event
		if json.Unmarshal([]byte(payload), &evs) != nil {
			return nil, time.Time{}
		}
		return evs, time.Time{}
	}
	var a announcement
	if json.Unmarshal([]byte(payload), &a) != nil {
		return nil, time.Time{}
	}
	var at time.Time
	if a.Committed > 0 {
		at = time.UnixMicro(a.Committed)
	}
	if a.Events == nil {
		return nil, at
	}
	return *a.Events, at
}
