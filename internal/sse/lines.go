package sse

import (
	"bytes"
	"errors"
	"io"
)

// MaxLineSize is the longest line, in bytes, a Reader accepts. Longer lines
// make Next fail with ErrLineTooLong.
const MaxLineSize = 8 << 20

// ErrLineTooLong reports a line longer than MaxLineSize.
var ErrLineTooLong = errors.New("sse: line too long")

const (
	// initialBufferSize fits a typical chunk (a few hundred bytes) and
	// grows, doubling, for longer lines: a held stream costs its buffer
	// for its whole life, and the source below is buffered already.
	initialBufferSize = 1 << 10
	// burstBufferSize is what the buffer grows to, at once, when a read
	// fills it: the source then holds more (a burst of events), and reading
	// it in 1 KiB pieces would end a relay's burst, and its write, at each
	// piece. It holds a 4 KiB socket read with room to spare. A slow
	// stream's reads never fill the buffer, so it keeps the small one.
	burstBufferSize = 8 << 10
	maxEmptyReads   = 100
)

// lineReader splits a stream into lines ended by "\n", "\r\n" or "\r".
// Unlike bufio.Scanner it remembers how much of a partial line it has
// already searched, so very long lines cost linear time, and it never waits
// for the byte after a "\r" before returning the line the "\r" ends.
type lineReader struct {
	r       io.Reader
	buf     []byte
	start   int  // buf[start:end] is read but not yet returned
	end     int  //
	scanned int  // bytes of buf[start:end] known to hold no line ending
	skipLF  bool // the last line ended with "\r": a leading "\n" belongs to it
	filled  bool // the last read filled the space it was given
	err     error
}

// line returns the next line without its ending. The slice is only valid
// until the next call. At end of input a final unterminated line is
// returned before io.EOF.
func (l *lineReader) line() ([]byte, error) {
	for {
		if l.skipLF && l.start < l.end {
			if l.buf[l.start] == '\n' {
				l.start++
			}
			l.skipLF = false
		}
		if !l.skipLF {
			if line, ok := l.cut(); ok {
				return line, nil
			}
		}
		if l.err != nil {
			return l.rest()
		}
		l.fill()
	}
}

// holdsEvent reports whether the unread input holds a whole event Next
// would return: a block with a data line, ended by an empty line. Blocks
// without one (a comment, a lone "event:") are passed over as Next passes
// over them, so an event followed only by a comment is not taken for a
// burst: a relay holding its flush would keep that event until the
// upstream's next write.
func (l *lineReader) holdsEvent() bool {
	b := l.buf[l.start:l.end]
	if l.skipLF && len(b) > 0 && b[0] == '\n' {
		b = b[1:]
	}
	data := false
	for {
		i := indexLineEnd(b)
		if i < 0 {
			return false
		}
		line := b[:i]
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
		switch {
		case len(line) == 0:
			if data {
				return true
			}
		case isData(line):
			data = true
		}
	}
}

// isData reports whether a non-empty line is a "data" field.
func isData(line []byte) bool {
	name, _, _ := bytes.Cut(line, []byte(":"))
	return string(name) == "data"
}

// cut returns the next complete line in the buffer, if there is one.
func (l *lineReader) cut() ([]byte, bool) {
	from := l.start + l.scanned
	i := indexLineEnd(l.buf[from:l.end])
	if i < 0 {
		l.scanned = l.end - l.start
		return nil, false
	}
	i += from
	line := l.buf[l.start:i]
	l.skipLF = l.buf[i] == '\r'
	l.start, l.scanned = i+1, 0
	return line, true
}

// rest returns the unterminated last line at end of input, then the error.
func (l *lineReader) rest() ([]byte, error) {
	if l.err != io.EOF || l.start == l.end {
		return nil, l.err
	}
	line := l.buf[l.start:l.end]
	l.start, l.scanned = l.end, 0
	return line, nil
}

// fill reads more input, compacting or growing the buffer as needed.
func (l *lineReader) fill() {
	if l.start > 0 {
		copy(l.buf, l.buf[l.start:l.end])
		l.end -= l.start
		l.start = 0
	}
	if l.end == len(l.buf) || (l.filled && len(l.buf) < burstBufferSize) {
		if len(l.buf) >= MaxLineSize {
			l.err = ErrLineTooLong
			return
		}
		size := max(2*len(l.buf), initialBufferSize)
		if l.filled {
			size = max(size, burstBufferSize)
		}
		grown := make([]byte, min(size, MaxLineSize))
		copy(grown, l.buf[:l.end])
		l.buf = grown
	}
	for range maxEmptyReads {
		n, err := l.r.Read(l.buf[l.end:])
		l.filled = n == len(l.buf)-l.end
		l.end += n
		if err != nil {
			l.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	l.err = io.ErrNoProgress
}

// indexLineEnd returns the index of the first "\r" or "\n" in b, or -1.
func indexLineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	if lf >= 0 {
		b = b[:lf]
	}
	if cr := bytes.IndexByte(b, '\r'); cr >= 0 {
		return cr
	}
	return lf
}
