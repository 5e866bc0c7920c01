package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"time"
)

// newID returns a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74
// random bits, so ids sort roughly by creation time. The random bits come
// from math/rand/v2's runtime source, which is seeded from the operating
// system and safe for concurrent use; ids need to be unique, not secret.
func newID() string { return NewIDAt(time.Now()) }

// NewIDAt is NewID for a clock reading the caller already has.
func NewIDAt(now time.Time) string {
	var u [16]byte
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint64(u[0:8], ms<<16|uint64(rand.Uint32()&0x0fff)|0x7000)
	binary.BigEndian.PutUint64(u[8:16], rand.Uint64()&0x3fffffffffffffff|0x8000000000000000)
	return formatUUID(&u)
}

// NewID returns a new UUIDv7 string, the kind of id herald gives events that
// arrive without one.
func NewID() string { return newID() }

// ChildID returns the deterministic id of the index-th event published by
// subscription sub while handling the event parentID: a UUIDv8 made from the
// SHA-256 of the three. A handler that runs again for the same event
// publishes the same ids, so the store keeps each response once.
func ChildID(parentID, sub string, index int) string {
	h := sha256.New()
	h.Write([]byte(parentID))
	h.Write([]byte{0})
	h.Write([]byte(sub))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	var sum [32]byte
	h.Sum(sum[:0])
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return formatUUID(&u)
}

func formatUUID(u *[16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}
