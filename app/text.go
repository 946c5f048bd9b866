package app

import (
	"strings"
	"unicode/utf8"
)

// ClipText makes untrusted text safe to store: invalid UTF-8 (which
// Postgres refuses) becomes U+FFFD, and the result is cut to at most
// maxBytes on a character boundary. Cutting bytes blindly could split a
// character and turn an accepted value into a database error.
func ClipText(s string, maxBytes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxBytes {
		return s
	}
	n := maxBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
