package feed

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// readBufferBytes is the largest read buffer. The buffer is no larger than
// a maximum-length line needs, which keeps Parse cheap for short inputs.
const readBufferBytes = 64 << 10

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// lineReader splits a feed into lines. It drops LF and CRLF line endings and
// a UTF-8 byte order mark at the start of the input.
type lineReader struct {
	r   *bufio.Reader
	max int
	// line is the number of the last line returned, 1-based.
	line int
	// err is the first read error other than io.EOF.
	err  error
	long []byte
	done bool
}

func newLineReader(r io.Reader, maxLineBytes int) *lineReader {
	size := min(readBufferBytes, maxLineBytes+2)
	return &lineReader{r: bufio.NewReaderSize(r, size), max: maxLineBytes}
}

// next returns the next line, valid until the following call. tooLong reports
// a line over the maximum length: text then holds only its start.
func (lr *lineReader) next() (text []byte, tooLong bool, ok bool) {
	if lr.done {
		return nil, false, false
	}
	text, err := lr.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		text, tooLong, err = lr.readLong(text)
	}
	if err != nil {
		lr.done = true
		if err != io.EOF {
			lr.err = err
		}
		if len(text) == 0 {
			return nil, false, false
		}
	}
	lr.line++
	text = bytes.TrimSuffix(text, []byte{'\n'})
	text = bytes.TrimSuffix(text, []byte{'\r'})
	if lr.line == 1 {
		text = bytes.TrimPrefix(text, utf8BOM)
	}
	if len(text) > lr.max {
		tooLong = true
	}
	return text, tooLong, true
}

// readLong reads the rest of a line that does not fit the read buffer. It
// keeps at most the maximum line length plus a CRLF ending and reports
// whether it had to discard bytes.
func (lr *lineReader) readLong(first []byte) (text []byte, discarded bool, err error) {
	limit := lr.max + 2
	lr.long = append(lr.long[:0], first[:min(len(first), limit)]...)
	discarded = len(first) > limit
	for {
		chunk, err := lr.r.ReadSlice('\n')
		room := limit - len(lr.long)
		if len(chunk) > room {
			discarded = true
			chunk = chunk[:max(room, 0)]
		}
		lr.long = append(lr.long, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return lr.long, discarded, err
		}
	}
}
