package dnstap

import (
	"encoding/binary"
	"net/netip"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Type is the type of a dnstap Message: which end of which exchange it
// records, from the point of view of the server writing it.
type Type uint64

// Message types of dnstap.proto that a recursive resolver writes.
const (
	ResolverQuery    Type = 3
	ResolverResponse Type = 4
	ClientQuery      Type = 5
	ClientResponse   Type = 6
)

// Family is the SocketFamily of dnstap.proto.
type Family uint64

// Socket families.
const (
	INET  Family = 1
	INET6 Family = 2
)

// Protocol is the SocketProtocol of dnstap.proto.
type Protocol uint64

// Socket protocols. Values 5 and 6 are DNSCrypt, which Bulwark does not
// serve.
const (
	UDP Protocol = 1
	TCP Protocol = 2
	DOT Protocol = 3
	DOH Protocol = 4
	DOQ Protocol = 7
)

// Field numbers of the Dnstap message in dnstap.proto.
const (
	dnstapIdentity protowire.Number = 1
	dnstapVersion  protowire.Number = 2
	dnstapMessage  protowire.Number = 14
	dnstapType     protowire.Number = 15

	// dnstapTypeMessage is the only value of Dnstap.Type: the payload is
	// a Message.
	dnstapTypeMessage = 1
)

// Field numbers of the Message message in dnstap.proto.
const (
	msgType             protowire.Number = 1
	msgSocketFamily     protowire.Number = 2
	msgSocketProtocol   protowire.Number = 3
	msgQueryAddress     protowire.Number = 4
	msgResponseAddress  protowire.Number = 5
	msgQueryPort        protowire.Number = 6
	msgResponsePort     protowire.Number = 7
	msgQueryTimeSec     protowire.Number = 8
	msgQueryTimeNsec    protowire.Number = 9
	msgQueryMessage     protowire.Number = 10
	msgQueryZone        protowire.Number = 11
	msgResponseTimeSec  protowire.Number = 12
	msgResponseTimeNsec protowire.Number = 13
	msgResponseMessage  protowire.Number = 14
)

// Message is one dnstap Message. Zero and invalid fields are left out of
// the encoding.
type Message struct {
	Type     Type
	Family   Family
	Protocol Protocol
	// QueryAddress is the initiator of the exchange: the client for client
	// messages, already anonymised.
	QueryAddress netip.Addr
	// ResponseAddress and ResponsePort are the responder: the
	// authoritative server for resolver messages.
	ResponseAddress netip.Addr
	ResponsePort    uint16
	QueryTime       time.Time
	ResponseTime    time.Time
	// QueryZone is the zone the query was sent to, as a wire-format name.
	QueryZone []byte
	// QueryMessage and ResponseMessage are wire-format DNS messages.
	QueryMessage    []byte
	ResponseMessage []byte
}

// AppendFrame appends to b a Frame Streams data frame that carries a Dnstap
// payload with identity, version and m, and returns the extended buffer.
func AppendFrame(b []byte, identity, version []byte, m *Message) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // the frame length, set below
	if len(identity) > 0 {
		b = protowire.AppendTag(b, dnstapIdentity, protowire.BytesType)
		b = protowire.AppendBytes(b, identity)
	}
	if len(version) > 0 {
		b = protowire.AppendTag(b, dnstapVersion, protowire.BytesType)
		b = protowire.AppendBytes(b, version)
	}
	b = protowire.AppendTag(b, dnstapType, protowire.VarintType)
	b = protowire.AppendVarint(b, dnstapTypeMessage)

	// The nested Message goes after its tag and length, which are known
	// only once it is written: write it, then move it up.
	b = protowire.AppendTag(b, dnstapMessage, protowire.BytesType)
	body := len(b)
	b = appendMessage(b, m)
	n := len(b) - body
	prefix := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, prefix)...)
	copy(b[body+prefix:], b[body:body+n])
	protowire.AppendVarint(b[body:body], uint64(n))

	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendMessage(b []byte, m *Message) []byte {
	b = appendVarint(b, msgType, uint64(m.Type))
	b = appendVarint(b, msgSocketFamily, uint64(m.Family))
	b = appendVarint(b, msgSocketProtocol, uint64(m.Protocol))
	b = appendAddr(b, msgQueryAddress, m.QueryAddress)
	b = appendAddr(b, msgResponseAddress, m.ResponseAddress)
	b = appendVarint(b, msgResponsePort, uint64(m.ResponsePort))
	b = appendTime(b, msgQueryTimeSec, msgQueryTimeNsec, m.QueryTime)
	b = appendBytes(b, msgQueryMessage, m.QueryMessage)
	b = appendBytes(b, msgQueryZone, m.QueryZone)
	b = appendTime(b, msgResponseTimeSec, msgResponseTimeNsec, m.ResponseTime)
	return appendBytes(b, msgResponseMessage, m.ResponseMessage)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendAddr writes a 4-byte IPv4 or 16-byte IPv6 address, as the socket
// family fields of dnstap.proto require.
func appendAddr(b []byte, num protowire.Number, a netip.Addr) []byte {
	if !a.IsValid() {
		return b
	}
	return appendBytes(b, num, a.Unmap().AsSlice())
}

// appendTime writes t as seconds since the Unix epoch and the nanoseconds
// of the second, the two fields dnstap.proto uses for a time.
func appendTime(b []byte, sec, nsec protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = protowire.AppendTag(b, sec, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	b = protowire.AppendTag(b, nsec, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, uint32(t.Nanosecond()))
}

// FamilyOf returns the socket family of a, counting an IPv4-mapped IPv6
// address as IPv4.
func FamilyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return INET
	}
	return INET6
}
