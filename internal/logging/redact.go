package logging

import (
	"log"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"

	"bulwark/internal/privacy"
)

// addressPattern matches IPv4 and bracketed or bare IPv6 addresses, with a
// port, as error texts of the net and crypto/tls packages write them.
var addressPattern = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-z]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}\b`)

// RedactAddresses replaces every IP address in s, with its port, by
// "ADDRESS". Use it on error texts that may name a client, so that no log
// line holds one, even at debug level.
func RedactAddresses(s string) string {
	return addressPattern.ReplaceAllString(s, "ADDRESS")
}

// HTTPErrorLog returns a logger for the ErrorLog of an http.Server: it
// writes each message of net/http, such as a TLS handshake error, which
// names the client, to l at debug level under msg, with the addresses
// redacted.
func HTTPErrorLog(l *slog.Logger, msg string) *log.Logger {
	return log.New(httpErrorWriter{l, msg}, "", 0)
}

type httpErrorWriter struct {
	log *slog.Logger
	msg string
}

func (w httpErrorWriter) Write(p []byte) (int, error) {
	w.log.Debug(w.msg, "error", RedactAddresses(strings.TrimSpace(string(p))))
	return len(p), nil
}

// ClientNetwork returns the network of a client address for a log line:
// its /24 for IPv4 and its /56 for IPv6, the truncation of the query log's
// default, never the address itself.
func ClientNetwork(addr netip.Addr) slog.Value {
	addr = addr.Unmap()
	bits := privacy.DefaultIPv6Prefix
	if addr.Is4() {
		bits = privacy.DefaultIPv4Prefix
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return slog.StringValue("")
	}
	return slog.StringValue(p.String())
}
