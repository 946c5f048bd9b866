package localpg

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// configuredPort is the port an existing cluster in Dir was set up with,
// else DefaultPort.
func (c Config) configuredPort() int {
	b, err := os.ReadFile(filepath.Join(relocate(absOr(c.Dir)), confFile))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "port = "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return DefaultPort
}

// freePort is DefaultPort when nothing listens there, else the first
// free port above it: a second checkout, or a cluster left running by an
// earlier session, must not stop this one from starting.
func freePort() int {
	for p := DefaultPort; p < DefaultPort+100; p++ {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			_ = ln.Close()
			return p
		}
	}
	return DefaultPort
}
