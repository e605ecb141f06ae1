package dnstap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ContentType is the Frame Streams content type of dnstap payloads.
const ContentType = "protobuf:dnstap.Dnstap"

// Frame Streams control frame types and field types. A control frame is
// sent as a zero length (the escape), the length of the control frame, a
// 32-bit type and fields of a 32-bit type, a 32-bit length and a value,
// every number big-endian.
const (
	controlAccept = 0x01
	controlStart  = 0x02
	controlStop   = 0x03
	controlReady  = 0x04
	controlFinish = 0x05

	fieldContentType = 0x01

	// maxControlLength is the largest control frame that Frame Streams
	// readers and writers accept, in bytes.
	maxControlLength = 512
)

// ErrControl reports a control frame that breaks the Frame Streams
// protocol.
var ErrControl = errors.New("invalid Frame Streams control frame")

// appendControl appends a control frame of type typ with one content type
// field per entry of contentTypes.
func appendControl(b []byte, typ uint32, contentTypes ...string) []byte {
	length := 4
	for _, ct := range contentTypes {
		length += 8 + len(ct)
	}
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(length))
	b = binary.BigEndian.AppendUint32(b, typ)
	for _, ct := range contentTypes {
		b = binary.BigEndian.AppendUint32(b, fieldContentType)
		b = binary.BigEndian.AppendUint32(b, uint32(len(ct)))
		b = append(b, ct...)
	}
	return b
}

// readControl reads one control frame from r and returns its type and
// content types. A data frame in its place is an error.
func readControl(r io.Reader) (uint32, []string, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	if escape := binary.BigEndian.Uint32(head[:4]); escape != 0 {
		return 0, nil, fmt.Errorf("%w: data frame of %d bytes where a control frame was expected", ErrControl, escape)
	}
	length := binary.BigEndian.Uint32(head[4:])
	if length < 4 || length > maxControlLength {
		return 0, nil, fmt.Errorf("%w: length %d, want 4 to %d", ErrControl, length, maxControlLength)
	}
	frame := make([]byte, length)
	if _, err := io.ReadFull(r, frame); err != nil {
		return 0, nil, err
	}
	return parseControl(frame)
}

// parseControl parses the body of a control frame: its type and fields.
// Fields of unknown types are skipped, as Frame Streams requires.
func parseControl(frame []byte) (uint32, []string, error) {
	if len(frame) < 4 {
		return 0, nil, fmt.Errorf("%w: %d bytes, too short for a type", ErrControl, len(frame))
	}
	typ := binary.BigEndian.Uint32(frame)
	var contentTypes []string
	for rest := frame[4:]; len(rest) > 0; {
		if len(rest) < 8 {
			return 0, nil, fmt.Errorf("%w: truncated field header", ErrControl)
		}
		field, n := binary.BigEndian.Uint32(rest), binary.BigEndian.Uint32(rest[4:])
		rest = rest[8:]
		if uint64(n) > uint64(len(rest)) {
			return 0, nil, fmt.Errorf("%w: field of %d bytes in %d", ErrControl, n, len(rest))
		}
		if field == fieldContentType {
			contentTypes = append(contentTypes, string(rest[:n]))
		}
		rest = rest[n:]
	}
	return typ, contentTypes, nil
}

// expectControl reads a control frame and checks that it has type want.
func expectControl(r io.Reader, want uint32) ([]string, error) {
	typ, contentTypes, err := readControl(r)
	if err != nil {
		return nil, err
	}
	if typ != want {
		return nil, fmt.Errorf("%w: type %d, want %d", ErrControl, typ, want)
	}
	return contentTypes, nil
}

// handshake opens a bidirectional Frame Streams session as the writer:
// READY with ContentType, an ACCEPT from the reader that lists it, then
// START. Data frames may follow.
func handshake(rw io.ReadWriter) error {
	if _, err := rw.Write(appendControl(nil, controlReady, ContentType)); err != nil {
		return fmt.Errorf("send READY: %w", err)
	}
	accepted, err := expectControl(rw, controlAccept)
	if err != nil {
		return fmt.Errorf("read ACCEPT: %w", err)
	}
	if !slices.Contains(accepted, ContentType) {
		return fmt.Errorf("collector accepts content types %q, not %q", accepted, ContentType)
	}
	if _, err := rw.Write(appendControl(nil, controlStart, ContentType)); err != nil {
		return fmt.Errorf("send START: %w", err)
	}
	return nil
}
