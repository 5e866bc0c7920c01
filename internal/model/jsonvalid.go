package model

import (
	"encoding/binary"
	"math/bits"
)

// maxJSONDepth is encoding/json's nesting limit, which ValidJSON keeps.
const maxJSONDepth = 10000

// ValidJSON reports whether b is exactly one valid JSON value, with the
// same answer as encoding/json.Valid (strings are not checked for valid
// UTF-8; nesting deeper than 10,000 is refused) but several times faster:
// every published event's data goes through it.
func ValidJSON(b []byte) bool {
	i, ok := jsonValue(b, jsonSpace(b, 0), 0)
	return ok && jsonSpace(b, i) == len(b)
}

func jsonSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func jsonValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return jsonString(b, i)
	case c == '{':
		if depth >= maxJSONDepth {
			return i, false
		}
		i = jsonSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			var ok bool
			if i, ok = jsonString(b, i); !ok {
				return i, false
			}
			if i = jsonSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i, ok = jsonValue(b, jsonSpace(b, i+1), depth+1); !ok {
				return i, false
			}
			if i = jsonSpace(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = jsonSpace(b, i+1)
			case '}':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return i, false
		}
		i = jsonSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = jsonValue(b, i, depth+1); !ok {
				return i, false
			}
			if i = jsonSpace(b, i); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = jsonSpace(b, i+1)
			case ']':
				return i + 1, true
			default:
				return i, false
			}
		}
	case c == 't':
		return jsonLiteral(b, i, "true")
	case c == 'f':
		return jsonLiteral(b, i, "false")
	case c == 'n':
		return jsonLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return jsonNumber(b, i)
	}
	return i, false
}

func jsonLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// Eight bytes at a time: lo and hi spread a byte over a word.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// specialBytes returns a word whose high bit is set in the lowest byte of
// w (little endian) that is a quote, a backslash or a control character,
// and possibly in later bytes (borrows only run upwards), so the lowest set
// bit finds the first such byte exactly; zero when there is none.
func specialBytes(w uint64) uint64 {
	quote := w ^ (swarLo * '"')
	backslash := w ^ (swarLo * '\\')
	special := (quote - swarLo) &^ quote
	special |= (backslash - swarLo) &^ backslash
	special |= (w - swarLo*0x20) &^ w
	return special & swarHi
}

func jsonString(b []byte, i int) (int, bool) {
	i++ // opening quote
	for i < len(b) {
		// Skip plain bytes 16 and then 8 at a time, landing on the first
		// byte that needs a look.
		for len(b)-i >= 16 {
			sp0 := specialBytes(binary.LittleEndian.Uint64(b[i:]))
			sp1 := specialBytes(binary.LittleEndian.Uint64(b[i+8:]))
			if sp0 != 0 {
				i += bits.TrailingZeros64(sp0) / 8
				goto look
			}
			if sp1 != 0 {
				i += 8 + bits.TrailingZeros64(sp1)/8
				goto look
			}
			i += 16
		}
		if len(b)-i >= 8 {
			if sp := specialBytes(binary.LittleEndian.Uint64(b[i:])); sp != 0 {
				i += bits.TrailingZeros64(sp) / 8
			} else {
				i += 8
				continue
			}
		}
	look:
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return i, false
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		default:
			i++
		}
	}
	return i, false
}

func jsonDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func jsonNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = jsonDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := jsonDigits(b, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := jsonDigits(b, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}
