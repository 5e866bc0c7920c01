//go:build race

package main

// raceEnabled: the test binary runs with the race detector, which slows
// its own clients many times over.
const raceEnabled = true
