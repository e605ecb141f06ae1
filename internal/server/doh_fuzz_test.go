package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzReadDoHQuery checks that any GET parameter or POST body gives a
// message of at least a header, or a 4xx status with a message.
func FuzzReadDoHQuery(f *testing.F) {
	f.Add(true, "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB", []byte(nil), "")
	f.Add(false, "", []byte("\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"), "application/dns-message")
	f.Add(false, "", []byte("x"), "application/dns-message; charset=\"")
	f.Add(true, "====", []byte(nil), "")
	f.Fuzz(func(t *testing.T, get bool, param string, body []byte, contentType string) {
		var r *http.Request
		if get {
			r = httptest.NewRequest(http.MethodGet, "/dns-query?dns="+url.QueryEscape(param), nil)
		} else {
			r = httptest.NewRequest(http.MethodPost, "/dns-query", bytes.NewReader(body))
			r.Header.Set("Content-Type", contentType)
		}
		pkt, status, msg := readDoHQuery(r)
		if status == http.StatusOK {
			if len(pkt) < 12 || len(pkt) > 65535 {
				t.Fatalf("accepted a message of %d bytes", len(pkt))
			}
			return
		}
		if status < 400 || status > 499 || msg == "" {
			t.Fatalf("status %d with message %q, want a 4xx status with a message", status, msg)
		}
	})
}
