package redisrefresh

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeRecord decodes arbitrary stored values: no panic, no record
// with an error, and a decoded record encodes to a value that decodes to
// the same record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(`{"client_id":"app","sub":"alice","scope":"read","aud":["https://rs.example.test"],"claims":{"n":12345678901234567890},"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","exp_ns":4102444800000000000}`)
	f.Add(`{"client_id":"app","sub":"s","exp_ns":1}`)
	f.Add(`{"client_id":"app","exp_ns":4102444800000000000} {}`)
	f.Add(`{"client_id":"","exp_ns":4102444800000000000}`)
	f.Add(`not json`)
	f.Add(`F{"client_id":"app","sub":"alice","exp_ns":4102444800000000000,"fam":"b2RkLWZhbWlseS1pZA"}`)
	f.Add(`U{"client_id":"app","sub":"alice","exp_ns":4102444800000000000,"fam":"b2RkLWZhbWlseS1pZA"}`)
	f.Add(`F{"client_id":"app","exp_ns":4102444800000000000}`)
	f.Add(`{"client_id":"app","exp_ns":4102444800000000000,"fam":"x"}`)
	f.Add(`U`)
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, val string) {
		rec, err := decodeRecord(val, now)
		if err != nil {
			if rec != nil {
				t.Fatalf("record %+v with error %v", rec, err)
			}
			return
		}
		data, err := encodeRecord(*rec)
		if err != nil {
			t.Fatalf("encode a decoded record: %v", err)
		}
		again, err := decodeRecord(string(data), now)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		c1, _ := json.Marshal(rec.Claims)
		c2, _ := json.Marshal(again.Claims)
		if !bytes.Equal(c1, c2) {
			t.Fatalf("claims %s became %s", c1, c2)
		}
		rec.Claims, again.Claims = nil, nil
		if !reflect.DeepEqual(rec, again) {
			t.Fatalf("record %+v became %+v", rec, again)
		}
	})
}
