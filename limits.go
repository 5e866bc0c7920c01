package herald

import "github.com/heraldhq/herald/api"

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
// (16): the last ones. A dead letter keeps them all.
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
