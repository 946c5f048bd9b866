// Package loadgen is a small HTTP load generator for Spillway: `spillway
// load` and the benchmark (cmd/spillway-bench) drive it. It runs a fixed number
// of workers, each sending one request at a time (closed loop) or, with a
// target rate, sending on a shared schedule (open loop), for a bounded time
// and optionally a bounded number of requests.
//
// Latencies go into log-linear histograms (at most 1% relative error, fixed
// memory) rather than a slice of samples, so a ten-minute run costs the same
// memory as a one-second one. RunWithTicks also reports per-interval
// snapshots, which is what a failover measurement needs: how many requests
// failed, and for how long, while a dependency was down.
package loadgen
