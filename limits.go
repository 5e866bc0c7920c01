package herald

import (
	"fmt"
	"unicode/utf8"

	"github.com/heraldhq/herald/api"
)

// DefaultOutcomeLimit caps SubscriptionState.Outcomes when the query sets
// no Limit, on every store.
const DefaultOutcomeLimit = 1000

// OutcomeLimit returns how many outcomes a query with the given Limit may
// return: limit, or DefaultOutcomeLimit when it is 0 (or negative).
func OutcomeLimit(limit int) int {
	if limit > 0 {
		return limit
	}
	return DefaultOutcomeLimit
}

// MaxOutcomeHistory is the most failed attempts an Outcome's History keeps
// (16): the last ones. A dead letter keeps more (MaxDeadLetterHistory).
const MaxOutcomeHistory = api.MaxOutcomeHistory

// OutcomeHistory returns what an Outcome's History keeps of errs, a failed
// attempts' history oldest first: its last MaxOutcomeHistory entries, nil
// when it is empty. The result shares errs' array with no room to grow,
// so appending to either never changes the other.
func OutcomeHistory(errs []AttemptError) []AttemptError {
	n := len(errs)
	if n == 0 {
		return nil
	}
	return errs[max(0, n-MaxOutcomeHistory):n:n]
}

// MaxDeadLetterHistory is the most failed attempts a DeadLetter's Errors
// keep (100): the first and the last 99, so that an event redriven again
// and again keeps a dead letter a store can hold; DeadLetter.Attempts
// still counts every attempt.
const MaxDeadLetterHistory = api.MaxDeadLetterHistory

// DeadLetterHistory returns what a DeadLetter's Errors keep of errs, a
// failed attempts' history oldest first: all of it up to
// MaxDeadLetterHistory entries, else its first entry and its last
// MaxDeadLetterHistory-1 in a new slice.
func DeadLetterHistory(errs []AttemptError) []AttemptError {
	n := len(errs)
	if n <= MaxDeadLetterHistory {
		return errs
	}
	out := make([]AttemptError, 0, MaxDeadLetterHistory)
	out = append(out, errs[0])
	return append(out, errs[n-(MaxDeadLetterHistory-1):]...)
}

// MaxErrorText is the most bytes of a handler's error text that herald
// records in an attempt's history, an outcome's LastError and the log: a
// longer text keeps its first MaxErrorText bytes (cut at a character
// boundary) and says how many it dropped. A history of MaxOutcomeHistory
// attempts so stays within a store's message limits however large the
// errors a handler returns.
const MaxErrorText = 4096

// errorText is err's text as herald records it: at most MaxErrorText
// bytes of it (see clipText).
func errorText(err error) string { return clipText(err.Error()) }

// clipText returns s, or its first MaxErrorText bytes (cut at a character
// boundary) followed by how many bytes were dropped.
func clipText(s string) string {
	if len(s) <= MaxErrorText {
		return s
	}
	// Back to the start of the character cut in two, if any: at most
	// utf8.UTFMax-1 bytes, so text that is not UTF-8 keeps its bytes.
	cut := MaxErrorText
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}
