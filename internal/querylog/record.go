package querylog

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// line is one query log line. Client is empty in omit mode, Rcode when no
// response was sent.
type line struct {
	Time            string  `json:"time"`
	Flavour         string  `json:"flavour"`
	Transport       string  `json:"transport"`
	Client          string  `json:"client,omitempty"`
	QName           string  `json:"qname"`
	QType           string  `json:"qtype"`
	Rcode           string  `json:"rcode,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Cached          bool    `json:"cached"`
	List            string  `json:"list,omitempty"`
	Category        string  `json:"category,omitempty"`
	Action          string  `json:"action,omitempty"`
}

var errNoQuestion = errors.New("query has no question")

// question returns the lower-case qname and the qtype of a query in wire
// format, without unpacking the rest of it.
func question(msg []byte) (string, uint16, error) {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg[4:]) == 0 {
		return "", 0, errNoQuestion
	}
	name, off, err := dns.UnpackDomainName(msg, 12)
	if err != nil {
		return "", 0, err
	}
	if off+2 > len(msg) {
		return "", 0, errNoQuestion
	}
	return strings.ToLower(name), binary.BigEndian.Uint16(msg[off:]), nil
}

// outcome is the part of a response that the query log records.
type outcome struct {
	rcode                  string
	list, category, action string
}

// responseOutcome returns the rcode of a response. A response that does
// not unpack gives the rcode of its header.
func responseOutcome(msg []byte) outcome {
	if len(msg) < 12 {
		return outcome{rcode: "FORMERR"}
	}
	m := new(dns.Msg)
	if err := m.Unpack(msg); err != nil {
		return outcome{rcode: rcodeName(int(msg[3] & 0x0f))}
	}
	return outcome{rcode: rcodeName(m.Rcode)}
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}

func qtypeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// timeText formats t in UTC with microseconds, as the lines write it.
func timeText(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
