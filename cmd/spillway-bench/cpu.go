package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuUse is where the CPU went during one measured window, in
// core-seconds: every Postgres process on the machine together, and the
// Spillway server. The capacity rows divide the work done by them, so a
// figure reads "acknowledged requests per second per Postgres core".
type cpuUse struct {
	WallS     float64 `json:"wall_s"`
	PostgresS float64 `json:"postgres_cpu_s"`
	ServerS   float64 `json:"server_cpu_s"`
}

// cpuMark is the counters at a window's start.
type cpuMark struct {
	at               time.Time
	postgres, server float64
	pid              int
}

// markCPU starts a window for the server process pid.
func markCPU(pid int) cpuMark {
	return cpuMark{at: time.Now(), postgres: postgresCPU(), server: processCPU(pid), pid: pid}
}

// since ends the window.
func (m cpuMark) since() cpuUse {
	return cpuUse{WallS: time.Since(m.at).Seconds(), PostgresS: postgresCPU() - m.postgres, ServerS: processCPU(m.pid) - m.server}
}

// perPostgresCore is count events over the window per core-second of
// Postgres's CPU; zero when nothing was measured.
func (u cpuUse) perPostgresCore(count float64) float64 {
	if u.PostgresS <= 0 {
		return 0
	}
	return count / u.PostgresS
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux this runs on (it is fixed by the kernel's ABI, not by HZ).
const clockTicks = 100

// processCPU is the user + system CPU seconds process pid has used, from
// /proc/<pid>/stat; zero when it cannot be read.
func processCPU(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: the fields
	// start after the last ')'. utime and stime are fields 14 and 15,
	// the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// postgresCPU is the CPU seconds every process named postgres has used.
// Backends that exit within a window take theirs with them; the pools
// measured keep their connections open, so the loss is small (autovacuum
// workers, mostly).
func postgresCPU() float64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total float64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		total += processCPU(pid)
	}
	return total
}

// capacityRows are the README's capacity figures: work per core-second
// of Postgres and of the server, for capture, sync and the drain. They
// have no goal; they say what one Postgres core carries on this machine.
func capacityRows(s *spillwayResults) []row {
	var rows []row
	add := func(figure string, done int64, u *cpuUse) {
		if u == nil || u.WallS <= 0 {
			return
		}
		rows = append(rows,
			row{Figure: figure + " per Postgres core", Unit: "/core-s", Spillway: f64(u.perPostgresCore(float64(done))),
				Note: fmt.Sprintf("Postgres used %.2f cores, the server %.2f, over %.1f s", u.PostgresS/u.WallS, u.ServerS/u.WallS, u.WallS)})
	}
	answered := func(f loadFigures) int64 { return f.ByStatus[f.Status] }
	add("capture 202s", answered(s.Capture.Load), s.Capture.Load.CPU)
	add("sync 201s", answered(s.Sync), s.Sync.CPU)
	add("sync 201s, default pool", answered(s.SyncDefaults), s.SyncDefaults.CPU)
	add("drained jobs", s.Drain.Unlimited.Jobs, s.Drain.Unlimited.CPU)
	return rows
}
