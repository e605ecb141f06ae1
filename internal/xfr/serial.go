package xfr

// SerialLess reports whether serial a is older than serial b in the
// sequence space arithmetic of RFC 1982 section 3.2. Two serials that are
// 2^31 apart are not ordered, so SerialLess is false both ways.
func SerialLess(a, b uint32) bool {
	d := b - a
	return d != 0 && d < 1<<31
}
