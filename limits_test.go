package herald

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// clipText keeps MaxErrorText bytes of a long text, cut at a character
// boundary when the text is UTF-8, and keeps the bytes of text that is
// not.
func TestClipText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		keep int // at least this many bytes kept before "… (", at most MaxErrorText
	}{
		{"short", "disk on fire", -1},
		{"exactly the limit", strings.Repeat("x", MaxErrorText), -1},
		{"ASCII", strings.Repeat("x", 3*MaxErrorText), MaxErrorText},
		{"two-byte characters cut in two", "x" + strings.Repeat("é", MaxErrorText), MaxErrorText - 1},
		{"not UTF-8", strings.Repeat("\x80", 2*MaxErrorText), MaxErrorText - (utf8.UTFMax - 1)},
		{"a start byte then continuation bytes", "x" + strings.Repeat("\xbf", 2*MaxErrorText), MaxErrorText - (utf8.UTFMax - 1)},
	} {
		got := clipText(tc.in)
		if tc.keep < 0 {
			if got != tc.in {
				t.Errorf("%s: clipped to %q", tc.name, got)
			}
			continue
		}
		head, tail, ok := strings.Cut(got, "… (")
		if !ok || len(head) < tc.keep || len(head) > MaxErrorText || !strings.HasPrefix(tc.in, head) || !strings.HasSuffix(tail, " more bytes)") {
			t.Errorf("%s: kept %d bytes (%q…), want %d to %d and the count of the rest", tc.name, len(head), got[max(0, len(got)-30):], tc.keep, MaxErrorText)
		}
		if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
			t.Errorf("%s: cut inside a character", tc.name)
		}
	}
}
