package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckLoopback returns an error unless rawURL is http(s) to a loopback host
// (127.0.0.0/8, ::1 or localhost). A load generator pointed at the wrong
// address is a denial-of-service tool, so callers that take a URL from a
// user refuse anything else.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: want http:// or https://", rawURL)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("url %q: host %q is not loopback (127.0.0.0/8, ::1, localhost); refusing to send load elsewhere", rawURL, host)
}
