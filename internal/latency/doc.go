// Package latency measures write-to-event latency: the time from a write's
// intended send time to the arrival, at a subscriber, of the first change
// event that covers it.
//
// An event of a table's key at version V covers every write of that key
// with a version <= V: the write it reports, and the earlier ones it
// coalesced or that a later write (or a delete) superseded. The Matcher pairs
// acknowledged writes with the events that cover them, whichever of the
// acknowledgement and the event comes first, and records each write's
// latency in HdrHistograms (microseconds, 3 significant digits, clamped to
// [1µs, MaxLatency]). Summarize turns a histogram into Percentiles, in
// milliseconds.
//
// wail bench, its versus comparison and wail demo measure with it.
package latency
