package herald

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
